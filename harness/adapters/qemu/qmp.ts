/**
 * QMP, QEMU's JSON monitor protocol (docs/interop/qmp-spec): a greeting,
 * capability negotiation, then commands answered by "return" or "error"
 * objects carrying the command's id, with asynchronous events in between.
 */
import type { Socket } from 'node:net';
import { LineQueue } from '../../util/line-queue.ts';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
}

export class QmpError extends Error {
  override name = 'QmpError';
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`${command}: ${errorClass}: ${desc}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class QmpChannel {
  private readonly lines = new LineQueue();
  private nextId = 1;
  private readonly events: QmpEvent[] = [];

  constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (s: string) => this.lines.feed(s));
    sock.on('error', () => {});
    sock.on('close', () => this.lines.end('the QMP socket closed'));
  }

  private async message(timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    const n = await this.lines.next(timeoutMs);
    if (!('line' in n)) throw new QmpError(what, 'Disconnected', 'eof' in n ? n.eof : `no answer in ${timeoutMs} ms`);
    let v: unknown;
    try {
      v = JSON.parse(n.line);
    } catch {
      throw new QmpError(what, 'Protocol', `not JSON: ${n.line.slice(0, 120)}`);
    }
    if (!isObject(v)) throw new QmpError(what, 'Protocol', `not a JSON object: ${n.line.slice(0, 120)}`);
    return v;
  }

  /** Reads the greeting and leaves capability negotiation mode. */
  async handshake(timeoutMs: number): Promise<void> {
    const hello = await this.message(timeoutMs, 'greeting');
    if (!isObject(hello.QMP)) throw new QmpError('greeting', 'Protocol', 'expected {"QMP": …}');
    await this.execute('qmp_capabilities', undefined, timeoutMs);
  }

  /** Runs a command; resolves with its "return" value, throws QmpError on "error". Events seen meanwhile are kept. */
  async execute(command: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    this.sock.write(JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id }) + '\n');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await this.message(Math.max(1, deadline - Date.now()), command);
      if (typeof m.event === 'string') {
        this.events.push({ event: m.event, ...(isObject(m.data) ? { data: m.data } : {}) });
        continue;
      }
      if (m.id !== id) continue;
      if (isObject(m.error)) throw new QmpError(command, String(m.error.class ?? 'Error'), String(m.error.desc ?? ''));
      if (!('return' in m)) throw new QmpError(command, 'Protocol', 'an answer without "return" or "error"');
      return m.return;
    }
  }

  /** `human-monitor-command`: the text a monitor command prints (info mtree -f, info pci). */
  async hmp(commandLine: string, timeoutMs: number): Promise<string> {
    const r = await this.execute('human-monitor-command', { 'command-line': commandLine }, timeoutMs);
    if (typeof r !== 'string') throw new QmpError('human-monitor-command', 'Protocol', 'expected a string');
    return r;
  }

  /** Waits for an event that matches; events that do not match are kept. */
  async waitEvent(pred: (e: QmpEvent) => boolean, timeoutMs: number, what: string): Promise<QmpEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex(pred);
      if (i >= 0) return this.events.splice(i, 1)[0];
      const m = await this.message(Math.max(1, deadline - Date.now()), what);
      if (typeof m.event === 'string') this.events.push({ event: m.event, ...(isObject(m.data) ? { data: m.data } : {}) });
    }
  }

  /** Forgets events received so far. */
  dropEvents(): void {
    this.events.length = 0;
  }
}
