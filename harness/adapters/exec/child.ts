/** A target process speaking lines on stdin/stdout; stderr is kept (its tail) for crash findings. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { killGroup, track } from '../../util/children.ts';

export type Next = { line: string } | { eof: string } | { timeout: true };

const STDERR_TAIL = 16 * 1024;

export class ChildLines {
  private readonly proc: ChildProcess;
  private readonly queue: string[] = [];
  private waiter: ((n: Next) => void) | null = null;
  private exit: string | null = null;
  stderr = '';

  constructor(command: string) {
    this.proc = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    track(this.proc);
    this.proc.stdin!.on('error', () => {}); // EPIPE after a crash: the exit event reports it
    createInterface({ input: this.proc.stdout!, crlfDelay: Infinity }).on('line', (l) => {
      if (this.waiter !== null) {
        const w = this.waiter;
        this.waiter = null;
        w({ line: l });
      } else this.queue.push(l);
    });
    this.proc.stderr!.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString('utf8')).slice(-STDERR_TAIL);
    });
    this.proc.on('error', (e) => this.ended(`could not start: ${e.message}`));
    // 'close' waits for stdout to drain, so lines written before death are not lost.
    this.proc.on('close', (code, signal) => this.ended(signal !== null ? `killed by ${signal}` : `exited with status ${code}`));
  }

  private ended(why: string): void {
    if (this.exit !== null) return;
    this.exit = why;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w({ eof: why });
    }
  }

  get alive(): boolean {
    return this.exit === null;
  }

  send(lines: string): void {
    if (this.exit === null) this.proc.stdin!.write(lines.endsWith('\n') ? lines : lines + '\n');
  }

  next(timeoutMs: number): Promise<Next> {
    const q = this.queue.shift();
    if (q !== undefined) return Promise.resolve({ line: q });
    if (this.exit !== null) return Promise.resolve({ eof: this.exit });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve({ timeout: true });
      }, timeoutMs);
      this.waiter = (n) => {
        clearTimeout(timer);
        resolve(n);
      };
    });
  }

  /** Kills the process group; from now on the child counts as dead and its unread output is dropped. */
  kill(): void {
    killGroup(this.proc);
    this.queue.length = 0;
    this.ended('killed by isoroot');
  }

  /** Waits up to ms for the process to exit by itself, then kills its group. */
  async stop(ms: number): Promise<void> {
    if (this.exit === null) {
      this.proc.stdin!.end();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        this.proc.once('close', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.kill();
  }
}
