/**
 * vfio-user servers isoroot starts itself (`--server 'CMD {socket}'`): one
 * process per socket, in a process group of its own, killed on every exit
 * path. A server may serve one client and exit, or keep a device's state
 * across clients (the specification allows both, "Client Disconnection"):
 * isoroot starts it again whenever a session needs a fresh device, and
 * connects with retries until a deadline, since a server binds its socket
 * some time after it starts. A stale socket file is removed before each
 * start (servers such as libvfio-user's refuse to bind over one).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { InputError } from '../../util/errors.ts';
import { killGroup, track } from '../../util/children.ts';
import { FdSocket } from '../../protocol/vfio-user/fd-socket.ts';

/** What a server printed, kept for findings: the last 16 KiB. */
const KEEP = 16 * 1024;

export class ServerProcess {
  private proc: ChildProcess | null = null;
  private out = '';
  private exited: string | null = null;
  starts = 0;

  constructor(
    readonly command: string,
    readonly socket: string,
  ) {}

  get running(): boolean {
    return this.proc !== null && this.exited === null;
  }

  /** What the server printed on stdout and stderr, and how it ended. */
  get log(): string {
    return this.out + (this.exited === null ? '' : `\n(${this.exited})`);
  }

  /** Starts the server (again): the previous process is killed first. */
  start(): void {
    this.stop();
    rmSync(this.socket, { force: true });
    const cmd = this.command.replaceAll('{socket}', shellQuote(this.socket));
    const p = spawn('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    track(p);
    this.proc = p;
    this.exited = null;
    this.out = '';
    this.starts++;
    const keep = (b: Buffer): void => {
      this.out = (this.out + b.toString('utf8')).slice(-KEEP);
    };
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    p.once('exit', (code, signal) => {
      if (this.proc === p) this.exited = signal !== null ? `killed by ${signal}` : `exited with status ${code}`;
    });
  }

  stop(): void {
    if (this.proc !== null) killGroup(this.proc);
    this.proc = null;
  }

  /** Connects to its socket, retrying until the deadline (the server may still be starting). */
  async connect(deadlineMs: number): Promise<FdSocket> {
    const until = Date.now() + deadlineMs;
    let last = '';
    for (;;) {
      if (existsSync(this.socket)) {
        try {
          return await FdSocket.connect(this.socket);
        } catch (e) {
          last = (e as Error).message;
        }
      } else last = `no socket at ${this.socket} yet`;
      if (this.exited !== null && !existsSync(this.socket)) throw new ServerGone(`the server (${this.command}) ${this.exited} before it listened on ${this.socket}`, this.log);
      if (Date.now() >= until) throw new ServerGone(`no server listening on ${this.socket} within ${deadlineMs} ms: ${last}`, this.log);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A server that could not be reached: its command, and what it printed. */
export class ServerGone extends Error {
  override name = 'ServerGone';
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

const shellQuote = (s: string): string => (/^[A-Za-z0-9_./:@=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Checks a --server command: it must name where the socket goes. */
export function serverCommandProblem(cmd: string): string | null {
  if (cmd.trim() === '') return '--server needs a command, e.g. --server "./my-server {socket}"';
  if (!cmd.includes('{socket}')) return `--server "${cmd}": the command must contain {socket}, which isoroot replaces with each socket's path`;
  return null;
}

/** Connects to a socket nobody starts for isoroot: once, with a clear error when no server listens there. */
export async function connectExisting(socket: string): Promise<FdSocket> {
  try {
    return await FdSocket.connect(socket);
  } catch (e) {
    throw new InputError(
      `--target vfio-user:${socket}`,
      `a vfio-user server listening there (${(e as Error).message}); a server that serves one client and exits, or keeps its device's state across clients, needs --server 'CMD {socket}' so that isoroot can start it again`,
    );
  }
}
