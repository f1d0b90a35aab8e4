/**
 * One guest: QEMU started in its own process group with a private folder
 * for the agent's socket and the console log, connected, and waited on
 * until the agent says it is ready. Killed with its group on every exit
 * path (util/children.ts); the folder goes with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Topology } from '../../topology/types.ts';
import { killGroup, track } from '../../util/children.ts';
import { AgentLink, AgentLost } from './agent-link.ts';
import type { GuestImage } from './image/image.ts';
import { guestArgs } from './machine.ts';

const TAIL = 16 * 1024;

export interface GuestOptions {
  qemu: string;
  image: GuestImage;
  /** Per agent reply. */
  timeoutMs: number;
  /** From QEMU's start to the agent's ready line. */
  bootMs: number;
}

export class GuestVm {
  stderr = '';
  exit: string | null = null;
  /** Milliseconds from QEMU's start to the agent's ready line. */
  bootMs = 0;

  private constructor(
    private readonly proc: ChildProcess,
    private readonly dir: string,
    readonly link: AgentLink,
    readonly release: string,
  ) {}

  /** The tail of the guest's console (the kernel's messages: a panic, a warning). */
  console(): string {
    const f = join(this.dir, 'console.log');
    if (!existsSync(f)) return '';
    const s = readFileSync(f, 'latin1');
    return s.length > TAIL ? s.slice(-TAIL) : s;
  }

  static async start(t: Topology, o: GuestOptions): Promise<GuestVm> {
    const dir = mkdtempSync(join(tmpdir(), 'isoroot-guest-'));
    const socket = join(dir, 'agent.sock');
    const started = Date.now();
    const proc = spawn(o.qemu, guestArgs(t, o.image, socket, join(dir, 'console.log')), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    track(proc);
    let stderr = '';
    let exit: string | null = null;
    const onOut = (d: Buffer): void => {
      stderr = (stderr + d.toString('latin1')).slice(-TAIL);
    };
    proc.stdout!.on('data', onOut);
    proc.stderr!.on('data', onOut);
    proc.once('exit', (code, sig) => {
      exit = sig !== null ? `QEMU was killed by ${sig}` : `QEMU exited with status ${code}`;
    });
    proc.once('error', (e) => {
      exit = `QEMU could not start: ${e.message}`;
    });
    const fail = (m: string): never => {
      killGroup(proc);
      const con = existsSync(join(dir, 'console.log')) ? readFileSync(join(dir, 'console.log'), 'latin1').slice(-4000) : '';
      rmSync(dir, { recursive: true, force: true });
      throw new AgentLost('crash', `${m}${stderr.trim() === '' ? '' : `\nQEMU: ${stderr.trim().split('\n').slice(-8).join('\n')}`}${con === '' ? '' : `\nconsole: ${con.trim().split('\n').slice(-12).join('\n')}`}`);
    };
    // QEMU makes the socket and waits for us before it runs the guest (server=on,wait=on).
    let sock: Socket | null = null;
    while (sock === null) {
      if (exit !== null) fail(`the guest did not start: ${exit}`);
      if (Date.now() - started > o.bootMs) fail(`QEMU did not open the agent socket within ${o.bootMs} ms`);
      if (existsSync(socket)) sock = await tryConnect(socket);
      if (sock === null) await new Promise((r) => setTimeout(r, 20));
    }
    const link = new AgentLink(sock, o.timeoutMs);
    let ready: string;
    try {
      ready = await link.ready(Math.max(1000, o.bootMs - (Date.now() - started)));
    } catch (e) {
      link.close();
      return fail(`the guest agent did not come up: ${(e as Error).message}${exit !== null ? ` (${exit})` : ''}`);
    }
    const vm = new GuestVm(proc, dir, link, ready.split(' ')[3] ?? '');
    vm.bootMs = Date.now() - started;
    proc.stdout!.off('data', onOut);
    proc.stderr!.off('data', onOut);
    proc.stdout!.on('data', (d: Buffer) => (vm.stderr = (vm.stderr + d.toString('latin1')).slice(-TAIL)));
    proc.stderr!.on('data', (d: Buffer) => (vm.stderr = (vm.stderr + d.toString('latin1')).slice(-TAIL)));
    vm.stderr = stderr;
    proc.once('exit', (code, sig) => (vm.exit = sig !== null ? `QEMU was killed by ${sig}` : `QEMU exited with status ${code}`));
    return vm;
  }

  async stop(): Promise<void> {
    this.link.close();
    killGroup(this.proc);
    if (this.exit === null) await new Promise<void>((r) => this.proc.once('exit', () => r()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function tryConnect(path: string): Promise<Socket | null> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => resolve(s));
    s.once('error', () => resolve(null));
  });
}
