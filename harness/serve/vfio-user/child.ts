/**
 * The reference vfio-user server in a child process, as suites and benches
 * run it next to a client: `isoroot serve vfio-user` (a served device's
 * DMA to memory mapped without a file waits for its client, which must be
 * another process), stopped with SIGTERM so that its record is complete.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'isoroot.mjs');
/** The example topology: two endpoints and an edu. */
export const DEVICES = join(import.meta.dirname, '..', '..', '..', 'corpora', 'vfio-user', 'devices.json');
export const DEVICE_IDS = ['ep0', 'ep1', 'edu0'];

export interface ServerProcess {
  pid: number;
  dir: string;
  sockets: string[];
  trace: string;
  output: () => string;
  stop(): Promise<number>;
}

export async function startServer(opts: { topology?: string; ids?: string[]; mutant?: string; pcap?: string } = {}): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-vfu-'));
  const trace = join(dir, 'server.jsonl');
  const args = [BIN, 'serve', 'vfio-user', '--topology', opts.topology ?? DEVICES, '--socket-dir', dir, '--trace', trace];
  if (opts.mutant !== undefined) args.push('--mutant', opts.mutant);
  if (opts.pcap !== undefined) args.push('--pcap', opts.pcap);
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  const sockets = (opts.ids ?? DEVICE_IDS).map((id) => join(dir, `${id}.sock`));
  const deadline = Date.now() + 15_000;
  while (!out.includes('serving until interrupted')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`isoroot serve did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!sockets.every((s) => existsSync(s))) throw new Error(`isoroot serve started without its sockets:\n${out}`);
  return {
    pid: child.pid!,
    dir,
    sockets,
    trace,
    output: () => out,
    stop: () =>
      new Promise<number>((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', (code) => {
          clearTimeout(kill);
          resolve(code ?? -1);
        });
        child.kill('SIGTERM');
      }),
  };
}
