/**
 * The reference vfio-user server in a child process, as suites and benches
 * run it next to a client: `isoroot serve vfio-user` (a served device's
 * DMA to memory mapped without a file waits for its client, which must be
 * another process), stopped with SIGTERM so that its record is complete.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killGroup, track } from '../../util/children.ts';

const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'isoroot.mjs');
/** The example topology: two endpoints and an edu. */
export const DEVICES = join(import.meta.dirname, '..', '..', '..', 'corpora', 'vfio-user', 'devices.json');
export const DEVICE_IDS = ['ep0', 'ep1', 'edu0'];

export interface ServerOptions {
  /** Topology file (default DEVICES). */
  topology?: string;
  /** Device ids whose sockets to expect (default DEVICE_IDS). */
  ids?: string[];
  mutant?: string;
  /** Record a capture, DIR/server.pcap. */
  pcap?: boolean;
}

export interface ServerProcess {
  pid: number;
  dir: string;
  trace: string;
  pcap: string;
  /** Socket path of each expected device, in order. */
  sockets: string[];
  /** DIR/<id>.sock */
  socket(id: string): string;
  /** What the server printed so far. */
  output(): string;
  /** Waits until the server has printed `text`. */
  waitFor(text: string, timeoutMs: number): Promise<void>;
  /** SIGTERM (the server closes, its trace complete), then SIGKILL if it lingers; its exit code (null: killed). */
  stop(): Promise<number | null>;
  /** Stops it if still running and removes the directory. */
  dispose(): Promise<void>;
}

export async function startServer(o: ServerOptions = {}): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-vfu-'));
  const trace = join(dir, 'server.jsonl');
  const pcap = join(dir, 'server.pcap');
  const args = [BIN, 'serve', 'vfio-user', '--topology', o.topology ?? DEVICES, '--socket-dir', dir, '--trace', trace];
  if (o.mutant !== undefined) args.push('--mutant', o.mutant);
  if (o.pcap === true) args.push('--pcap', pcap);
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  track(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString('utf8')));
  let code: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (c) => {
      code = c;
      resolve(c);
    }),
  );
  const waitFor = async (text: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!out.includes(text)) {
      if (code !== undefined) throw new Error(`isoroot serve exited (${code}) before printing "${text}":\n${out}`);
      if (Date.now() > deadline) throw new Error(`isoroot serve did not print "${text}" within ${timeoutMs} ms:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const stop = async (): Promise<number | null> => {
    if (code !== undefined) return code;
    child.kill('SIGTERM');
    const timer = setTimeout(() => killGroup(child), 10_000);
    const c = await exited;
    clearTimeout(timer);
    return c;
  };
  const socket = (id: string): string => join(dir, `${id}.sock`);
  const server: ServerProcess = {
    pid: child.pid!,
    dir,
    trace,
    pcap,
    sockets: (o.ids ?? DEVICE_IDS).map(socket),
    socket,
    output: () => out,
    waitFor,
    stop,
    dispose: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('serving until interrupted', 20_000);
  } catch (e) {
    await server.dispose();
    throw e;
  }
  return server;
}
