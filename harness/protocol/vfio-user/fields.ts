/**
 * Little-endian fields of a vfio-user message: the reader every decoder checks with (a violation names the field, its byte offset and what was expected), and the writers of the encoders.
 */
import { ProtocolViolation, type Limits } from './messages.ts';
import { P } from './layout.ts';

export const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

export const bytesOf = (n: number): string => `${n} byte${n === 1 ? '' : 's'}`;

/** A message being decoded: the bytes, a label for violations, little-endian reads. */
export class Dec {
  readonly dv: DataView;
  constructor(
    public label: string,
    readonly b: Uint8Array,
  ) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  fail(field: string, offset: number, expected: string, got: string): never {
    throw new ProtocolViolation(this.label, field, offset, expected, got);
  }
  u16(o: number): number {
    return this.dv.getUint16(o, true);
  }
  u32(o: number): number {
    return this.dv.getUint32(o, true);
  }
  u64(o: number): bigint {
    return this.dv.getBigUint64(o, true);
  }
  /** A copy of n bytes at o (the result never aliases the input). */
  take(o: number, n: number): Uint8Array {
    return this.b.slice(o, o + n);
  }
  /** The payload is exactly n bytes ("Message size"). */
  exact(len: number, n: number, what: string): void {
    if (len !== n) this.fail('msg_size', 4, `${P + n} (header + ${what} of ${bytesOf(n)})`, `${P + len}`);
  }
  /** The payload holds at least the fixed part. */
  atLeast(len: number, n: number, what: string): void {
    if (len < n) this.fail('msg_size', 4, `at least ${P + n} (header + ${what} of ${bytesOf(n)})`, `${P + len}`);
  }
  zero32(field: string, o: number, why: string): void {
    const v = this.u32(o);
    if (v !== 0) this.fail(field, o, `0 (${why})`, hex(v));
  }
  zero64(field: string, o: number, why: string): void {
    const v = this.u64(o);
    if (v !== 0n) this.fail(field, o, `0 (${why})`, hex(v));
  }
  noFds(fds: readonly number[], offset = P): void {
    if (fds.length !== 0) this.fail('fds', offset, `none (${this.label} carries no file descriptors)`, `${fds.length}`);
  }
  /** argsz of a request: "the maximum size of the reply payload", at least its fixed part ("Message sizes"). */
  argszAtLeast(n: number, why: string): number {
    const argsz = this.u32(P);
    if (argsz < n) this.fail('argsz', P, `at least ${n} (${why})`, `${argsz}`);
    return argsz;
  }
  /** A data-transfer count against max_data_xfer_size ("Read and Write Operations"). */
  xfer(field: string, o: number, count: number | bigint, limits: Limits): void {
    if (BigInt(count) > BigInt(limits.maxDataXferSize)) this.fail(field, o, `at most ${limits.maxDataXferSize} (max_data_xfer_size)`, `${count}`);
  }
}

export const popcount = (v: number): number => {
  let n = 0;
  for (let x = v >>> 0; x !== 0; x &= x - 1) n++;
  return n;
};

export type Dir = { reply: boolean; fds: readonly number[]; limits: Limits };

export function u32s(...v: number[]): Buffer {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, k) => b.writeUInt32LE(x, 4 * k));
  return b;
}

export function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

export const cat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);
