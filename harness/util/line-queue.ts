/**
 * Lines from a stream, read one at a time with a timeout: the shared
 * receiving end of the exec target protocol and of QEMU's qtest and QMP
 * sockets. Once the stream ends, every read after the buffered lines
 * reports why.
 */
export type Next = { line: string } | { eof: string } | { timeout: true };

export class LineQueue {
  private readonly queue: string[] = [];
  private head = 0;
  private waiter: ((n: Next) => void) | null = null;
  private partial = '';
  private exit: string | null = null;

  /** divert: takes lines that are not replies (asynchronous notices) out of the queue. */
  constructor(private readonly divert: (line: string) => boolean = () => false) {}

  get ended(): string | null {
    return this.exit;
  }

  /** Feeds raw text; complete lines go to the queue (or straight to a waiting reader). */
  feed(chunk: string): void {
    const text = this.partial + chunk;
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.push(text.slice(start, end));
      start = nl + 1;
    }
    this.partial = text.slice(start);
  }

  push(line: string): void {
    if (this.divert(line)) return;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w({ line });
    } else this.queue.push(line);
  }

  /** The stream ended: readers get the buffered lines, then `why`. */
  end(why: string): void {
    if (this.exit !== null) return;
    if (this.partial !== '') this.push(this.partial);
    this.partial = '';
    this.exit = why;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w({ eof: why });
    }
  }

  /** Drops buffered lines (after a kill: what is left is not trusted). */
  clear(): void {
    this.queue.length = 0;
    this.head = 0;
  }

  next(timeoutMs: number): Promise<Next> {
    if (this.head < this.queue.length) {
      const line = this.queue[this.head++];
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      return Promise.resolve({ line });
    }
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
}
