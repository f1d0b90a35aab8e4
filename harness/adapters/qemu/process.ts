/**
 * One QEMU process: started in its own process group with a qtest socket
 * and a QMP socket, both UNIX sockets in a private temporary directory on
 * which isoroot listens and QEMU connects. The group is killed on every
 * exit path (close, error, SIGINT, SIGTERM, isoroot's own exit: see
 * util/children.ts), and the directory is removed with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killGroup, track } from '../../util/children.ts';
import { QmpChannel } from './qmp.ts';
import { QtestChannel } from './qtest.ts';

const STDERR_TAIL = 32 * 1024;

export interface Launch {
  /** The QEMU binary or a wrapper that runs it. */
  binary: string;
  /** Machine and device arguments; the sockets are added here. "{dir}" stands for the private directory. */
  args: readonly string[];
  /** Files written into the private directory first (a firmware image). */
  files?: Record<string, Uint8Array>;
  /** Time for QEMU to start and connect both sockets. */
  startupMs: number;
}

export class QemuStartError extends Error {
  override name = 'QemuStartError';
  constructor(
    message: string,
    readonly stderr: string,
    /** QEMU exited with an error status before it connected: it refused its command line (not a crash). */
    readonly refused = false,
  ) {
    super(stderr.trim() === '' ? message : `${message}\n${stderr.trim().split('\n').slice(-12).join('\n')}`);
  }
}

function listen(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(path, () => resolve(s));
  });
}

export class QemuProcess {
  /** The tail of what QEMU wrote on stdout and stderr. */
  stderr = '';
  /** Set once the process is gone: how it ended. */
  exit: string | null = null;
  private readonly closed: Promise<void>;

  private constructor(
    private readonly proc: ChildProcess,
    private readonly dir: string,
    readonly qtest: QtestChannel,
    readonly qmp: QmpChannel,
  ) {
    this.closed = new Promise((resolve) => proc.once('close', () => resolve()));
  }

  get alive(): boolean {
    return this.exit === null;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** A file in the process's private directory. */
  file(name: string): string {
    return join(this.dir, name);
  }

  static async start(l: Launch): Promise<QemuProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'isoroot-qemu-'));
    const qtestPath = join(dir, 'qtest.sock');
    const qmpPath = join(dir, 'qmp.sock');
    const servers: Server[] = [];
    let proc: ChildProcess | null = null;
    let stderr = '';
    let exit: string | null = null;
    const cleanup = (): void => {
      for (const s of servers) s.close();
      if (proc !== null) killGroup(proc);
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      for (const [name, bytes] of Object.entries(l.files ?? {})) writeFileSync(join(dir, name), bytes);
      servers.push(await listen(qtestPath), await listen(qmpPath));
      const accepted = servers.map((s) => new Promise<Socket>((resolve) => s.once('connection', resolve)));
      const args = [...l.args.map((a) => a.replaceAll('{dir}', dir)), '-qtest', `unix:${qtestPath}`, '-qtest-log', 'none', '-chardev', `socket,id=isoroot-qmp,path=${qmpPath}`, '-mon', 'chardev=isoroot-qmp,mode=control'];
      proc = spawn(l.binary, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      track(proc);
      const p = proc;
      const keep = (b: Buffer): void => {
        stderr = (stderr + b.toString('utf8')).slice(-STDERR_TAIL);
      };
      p.stdout!.on('data', keep);
      p.stderr!.on('data', keep);
      const died = new Promise<string>((resolve) => {
        p.once('error', (e) => resolve((exit = `could not start ${l.binary}: ${e.message}`)));
        p.once('close', (code, signal) => resolve((exit ??= signal !== null ? `killed by ${signal}` : `exited with status ${code}`)));
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`did not connect its sockets within ${l.startupMs} ms`), l.startupMs)));
      const sockets = await Promise.race([Promise.all(accepted), died, timeout]);
      clearTimeout(timer);
      if (!Array.isArray(sockets)) throw new QemuStartError(`QEMU (${l.binary}) ${sockets}`, stderr, /^exited with status [1-9]/.test(sockets));
      for (const s of servers) s.close();
      const q = new QemuProcess(p, dir, new QtestChannel(sockets[0]), new QmpChannel(sockets[1]));
      // Output and exit from now on belong to the instance.
      q.stderr = stderr;
      p.stdout!.off('data', keep);
      p.stderr!.off('data', keep);
      const keepQ = (b: Buffer): void => {
        q.stderr = (q.stderr + b.toString('utf8')).slice(-STDERR_TAIL);
      };
      p.stdout!.on('data', keepQ);
      p.stderr!.on('data', keepQ);
      void died.then((why) => (q.exit = why));
      if (exit !== null) q.exit = exit;
      await q.qmp.handshake(l.startupMs).catch(async (e: Error) => {
        // QEMU connects its sockets before it checks its devices: a refusal shows as an exit here.
        await Promise.race([q.closed, new Promise((r) => setTimeout(r, 2000))]);
        throw new QemuStartError(`QEMU (${l.binary}) did not complete the QMP handshake: ${e.message}`, q.stderr, /^exited with status [1-9]/.test(q.exit ?? ''));
      });
      return q;
    } catch (e) {
      cleanup();
      if (e instanceof QemuStartError) throw e;
      throw new QemuStartError(`QEMU (${l.binary}) could not be started: ${(e as Error).message}`, stderr);
    }
  }

  /** Kills the process group, waits for the process to go, removes the socket directory. */
  async kill(): Promise<void> {
    if (this.exit === null) killGroup(this.proc);
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 5000))]);
    this.exit ??= 'killed by isoroot';
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Asks QEMU to quit over QMP, then kills whatever is left. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.exit === null) {
      await this.qmp.execute('quit', undefined, timeoutMs).catch(() => {});
      await Promise.race([this.closed, new Promise((r) => setTimeout(r, timeoutMs))]);
    }
    await this.kill();
  }
}
