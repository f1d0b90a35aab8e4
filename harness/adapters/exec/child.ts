/** A target process speaking lines on stdin/stdout; stderr is kept (its tail) for crash findings. */
import { spawn, type ChildProcess } from 'node:child_process';
import { killGroup, track } from '../../util/children.ts';
import { LineQueue, type Next } from '../../util/line-queue.ts';

export type { Next };

const STDERR_TAIL = 16 * 1024;

export class ChildLines {
  private readonly proc: ChildProcess;
  private readonly lines = new LineQueue();
  stderr = '';

  constructor(command: string) {
    this.proc = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    track(this.proc);
    this.proc.stdin!.on('error', () => {}); // EPIPE after a crash: the exit event reports it
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (s: string) => this.lines.feed(s));
    this.proc.stderr!.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString('utf8')).slice(-STDERR_TAIL);
    });
    this.proc.on('error', (e) => this.lines.end(`could not start: ${e.message}`));
    // 'close' waits for stdout to drain, so lines written before death are not lost.
    this.proc.on('close', (code, signal) => this.lines.end(signal !== null ? `killed by ${signal}` : `exited with status ${code}`));
  }

  get alive(): boolean {
    return this.lines.ended === null;
  }

  send(lines: string): void {
    if (this.alive) this.proc.stdin!.write(lines.endsWith('\n') ? lines : lines + '\n');
  }

  next(timeoutMs: number): Promise<Next> {
    return this.lines.next(timeoutMs);
  }

  /** Kills the process group; from now on the child counts as dead and its unread output is dropped. */
  kill(): void {
    killGroup(this.proc);
    this.lines.clear();
    this.lines.end('killed by isoroot');
  }

  /** Waits up to ms for the process to exit by itself, then kills its group. */
  async stop(ms: number): Promise<void> {
    if (this.alive) {
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
