/**
 * The qtest protocol (QEMU's system/qtest.c): one command per line, one
 * reply per command ("OK [value]", "FAIL reason" or "ERR reason"), in
 * order; and, at any time, asynchronous "IRQ raise|lower N" lines for
 * intercepted interrupt lines. Commands are pipelined: a batch is written
 * at once and its replies are read afterwards.
 */
import type { Socket } from 'node:net';
import { LineQueue, type Next } from '../../util/line-queue.ts';

/** A level change of an intercepted interrupt line, in arrival order. */
export interface IrqEvent {
  line: number;
  level: 0 | 1;
  /** Replies that came before it: QEMU prints a notice while running a command, before that command's reply. */
  after: number;
}

/** hang: no reply in time; gone: the socket closed; protocol: a reply that is not what was asked. */
export type QtestTrouble = 'hang' | 'gone' | 'protocol';

export class QtestError extends Error {
  override name = 'QtestError';
  constructor(
    message: string,
    readonly trouble: QtestTrouble = 'protocol',
  ) {
    super(message);
  }
}

const IRQ = /^IRQ (raise|lower) (\d+)$/;
const VALUE = /^OK 0x([0-9a-fA-F]{1,16})$/;

export class QtestChannel {
  private readonly lines: LineQueue;
  /** Interrupt notices not yet taken. */
  private irqs: IrqEvent[] = [];
  /** Replies received, and commands sent: the notices of command k carry after = k. */
  private replies = 0;
  private commands = 0;

  constructor(private readonly sock: Socket) {
    this.lines = new LineQueue((l) => {
      const m = IRQ.exec(l);
      if (m === null) {
        this.replies++;
        return false;
      }
      this.irqs.push({ line: Number(m[2]), level: m[1] === 'raise' ? 1 : 0, after: this.replies });
      return true;
    });
    sock.setEncoding('utf8');
    sock.on('data', (s: string) => this.lines.feed(s));
    sock.on('error', () => {}); // the close event reports it
    sock.on('close', () => this.lines.end('the qtest socket closed'));
  }

  get open(): boolean {
    return this.lines.ended === null;
  }

  /** Commands sent so far: the next command's notices will carry this as `after`. */
  get sent(): number {
    return this.commands;
  }

  /** Sends commands (one per element) without waiting. */
  send(cmds: readonly string[]): void {
    if (cmds.length === 0 || !this.open) return;
    this.commands += cmds.length;
    this.sock.write(cmds.join('\n') + '\n');
  }

  /** The next reply line, or why there is none. */
  reply(timeoutMs: number): Promise<Next> {
    return this.lines.next(timeoutMs);
  }

  /** Takes the interrupt notices printed before reply `before` (all so far if absent). */
  takeIrqs(before = Infinity): IrqEvent[] {
    const n = this.irqs.findIndex((e) => e.after >= before);
    const out = n < 0 ? this.irqs : this.irqs.slice(0, n);
    this.irqs = n < 0 ? [] : this.irqs.slice(n);
    return out;
  }

  /** Commands pipelined, their replies awaited; throws QtestError unless every reply is OK. */
  async call(cmds: readonly string[], timeoutMs: number): Promise<string[]> {
    this.send(cmds);
    const out: string[] = [];
    for (const c of cmds) {
      const n = await this.reply(timeoutMs);
      if (!('line' in n)) throw new QtestError(`${c}: ${'eof' in n ? n.eof : `no reply in ${timeoutMs} ms`}`, 'eof' in n ? 'gone' : 'hang');
      if (!n.line.startsWith('OK')) throw new QtestError(`${c}: ${n.line}`);
      out.push(n.line);
    }
    return out;
  }

  /** One command's value ("OK 0x…"). */
  async value(cmd: string, timeoutMs: number): Promise<bigint> {
    return parseValue((await this.call([cmd], timeoutMs))[0]);
  }
}

/** The value of an "OK 0x…" reply; throws on anything else (the target protocol is validated at the edge). */
export function parseValue(reply: string): bigint {
  const m = VALUE.exec(reply);
  if (m === null) throw new QtestError(`expected "OK 0x<hex>", got "${reply.slice(0, 80)}"`);
  return BigInt('0x' + m[1]);
}

/** A reply to a command that returns nothing. */
export function expectOk(reply: string): void {
  if (reply !== 'OK') throw new QtestError(`expected "OK", got "${reply.slice(0, 80)}"`);
}

/** The bytes of an "OK 0x…" reply to `read ADDR SIZE`. */
export function parseBytes(reply: string, len: number): Uint8Array {
  const m = /^OK 0x([0-9a-fA-F]*)$/.exec(reply);
  if (m === null || m[1].length !== 2 * len) throw new QtestError(`expected "OK 0x" and ${len} bytes in hex, got "${reply.slice(0, 80)}"`);
  return Uint8Array.from(Buffer.from(m[1], 'hex'));
}

const SUFFIX: Record<number, string> = { 1: 'b', 2: 'w', 4: 'l', 8: 'q' };
const hx = (n: number | bigint): string => '0x' + n.toString(16);

/** qtest command builders: memory (CPU view) and port accesses. */
export const Q = {
  read: (addr: number, size: number): string => `read${SUFFIX[size]} ${hx(addr)}`,
  write: (addr: number, size: number, value: bigint): string => `write${SUFFIX[size]} ${hx(addr)} ${hx(value)}`,
  in: (port: number, size: number): string => `in${SUFFIX[size]} ${hx(port)}`,
  out: (port: number, size: number, value: bigint | number): string => `out${SUFFIX[size]} ${hx(port)} ${hx(value)}`,
  readBytes: (addr: number, len: number): string => `read ${hx(addr)} ${hx(len)}`,
  writeBytes: (addr: number, data: Uint8Array): string => `write ${hx(addr)} ${hx(data.length)} 0x${Buffer.from(data).toString('hex')}`,
  memset: (addr: number, len: number, byte: number): string => `memset ${hx(addr)} ${hx(len)} ${hx(byte)}`,
  /** Virtual time forward by `ns` (the qtest accelerator's only clock); the reply is "OK <now in ns>". */
  clockStep: (ns: number): string => `clock_step ${ns}`,
};
