/**
 * qtest commands → isoroot operations, derived from the operation
 * description: a command becomes ops of the matching kind, split into the
 * naturally aligned pieces the catalog allows, and each op is read through
 * the catalog's own codec (ranges, alignment, value width), so a command
 * isoroot cannot express is an error naming its line. Replies recorded in
 * a log become the ops' observations. Every op goes on root 0.
 */
import { CLOCK_STEP_MAX_NS, specOf, type OpKind } from '../ops/catalog.ts';
import { parseOp } from '../ops/codec.ts';
import type { Observation } from '../ops/observation.ts';
import type { Step } from '../trace/format.ts';
import { InputError } from '../util/errors.ts';
import { hex, hexToBytes } from '../util/hex.ts';
import { JsonReader } from '../util/json-read.ts';
import type { Entry, QtestCommand } from './qtest-script.ts';

export interface Imported {
  steps: Step[];
  /** Commands that became no operation, by kind. */
  skipped: Map<string, number>;
  /** Operations that carry the observation the log recorded. */
  observed: number;
  /** Operations of a log that carry none, by reason. */
  unobserved: Map<string, number>;
}

/** The operation kinds of an access in each space, and the field that holds its address. */
const ACCESS_OPS = {
  mmio: { read: 'mmio.read', write: 'mmio.write', at: 'addr' },
  pio: { read: 'pio.read', write: 'pio.write', at: 'port' },
} as const satisfies Record<string, { read: OpKind; write: OpKind; at: string }>;

/** Every access goes on root 0: qtest drives one machine. */
const ROOT = 0;
/** A clock command longer than this many clock.step ops is refused. */
const MAX_CLOCK_STEPS = 1000;

const QUIET = new JsonReader((path) => path);

/** The access sizes the catalog allows for an op kind at an aligned address, largest first. */
function sizesOf(kind: OpKind, at: string): number[] {
  return [8, 4, 2, 1].filter((size) => {
    try {
      parseOp(QUIET, '', { op: kind, root: 0, [at]: 0, size });
      return true;
    } catch (e) {
      if (e instanceof InputError) return false;
      throw e;
    }
  });
}

const SIZES = { mmio: sizesOf(ACCESS_OPS.mmio.read, 'addr'), pio: sizesOf(ACCESS_OPS.pio.read, 'port') };

interface Piece {
  addr: bigint;
  size: number;
  /** Bytes from the start of the whole access. */
  offset: number;
}

/** [addr, addr + len) in naturally aligned pieces: at each address the largest allowed size that fits. */
function alignedPieces(addr: bigint, len: number, sizes: readonly number[]): Piece[] {
  const out: Piece[] = [];
  for (let offset = 0; offset < len; ) {
    const a = addr + BigInt(offset);
    const size = sizes.find((s) => s <= len - offset && a % BigInt(s) === 0n)!;
    out.push({ addr: a, size, offset });
    offset += size;
  }
  return out;
}

/** The little-endian value of bytes[at, at + size). */
const valueAt = (bytes: Uint8Array, at: number, size: number): bigint => {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]);
  return v;
};

const commandName = (c: QtestCommand, text: string): string => (c.kind === 'other' ? c.name : text.split(/\s+/)[0]);

/** Reads the replies a log recorded, each with an error that names its line. */
class Replies {
  constructor(private readonly file: string) {}

  private fail(e: Entry, expected: string): never {
    throw new InputError(`${this.file}:${e.reply!.line}`, `a reply ${expected} to "${e.text}", got "${e.reply!.text}"`);
  }

  ok(e: Entry): void {
    if (e.reply!.text !== 'OK') this.fail(e, '"OK"');
  }

  value(e: Entry, size: number): bigint {
    const m = /^OK 0x([0-9a-fA-F]{1,16})$/.exec(e.reply!.text);
    const v = m === null ? null : BigInt('0x' + m[1]);
    return v !== null && v < 1n << BigInt(8 * size) ? v : this.fail(e, `"OK 0x…" with a value of at most ${size} bytes`);
  }

  bytes(e: Entry, len: number, encoding: 'hex' | 'base64'): Uint8Array {
    const t = e.reply!.text;
    if (encoding === 'hex') {
      const b = /^OK 0x([0-9a-fA-F]*)$/.test(t) ? hexToBytes(t.slice(5)) : null;
      return b !== null && b.length === len ? b : this.fail(e, `"OK 0x…" with ${len} bytes in hex`);
    }
    const m = /^OK ([A-Za-z0-9+/]*={0,2})$/.exec(t);
    const b = m === null || m[1].length % 4 !== 0 ? null : Uint8Array.from(Buffer.from(m[1], 'base64'));
    return b !== null && b.length === len ? b : this.fail(e, `"OK …" with ${len} bytes in base64`);
  }

  /** The virtual time a clock command reports. */
  clock(e: Entry): bigint {
    const m = /^OK ([0-9]+)$/.exec(e.reply!.text);
    return m === null ? this.fail(e, '"OK NS" with the new virtual time') : BigInt(m[1]);
  }
}

/**
 * The steps for qtest commands. `log`: the input recorded replies, so an
 * op without an observation is counted with its reason. The virtual clock
 * starts at 0, as QEMU's does under qtest.
 */
export function importEntries(entries: readonly Entry[], file: string, log: boolean): Imported {
  const out: Imported = { steps: [], skipped: new Map(), observed: 0, unobserved: new Map() };
  const count = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);
  const replies = new Replies(file);
  let now = 0n;
  for (const e of entries) {
    const c = e.command;
    const reader = new JsonReader((path) => `${file}:${e.line}: "${e.text}"${path === '' ? '' : ` (${path})`}`);
    const skip = (why: string): void => count(out.skipped, why);
    /** Ops from JSON, through the catalog; with observations when the log gives them. */
    const emit = (ops: Record<string, unknown>[], obs: Observation[] | null, why: string): void => {
      for (const [i, json] of ops.entries()) {
        const op = parseOp(reader, '', json);
        out.steps.push(obs === null ? { op } : { op, obs: obs[i] });
      }
      if (obs !== null) out.observed += ops.length;
      else if (log) for (let i = 0; i < ops.length; i++) count(out.unobserved, why);
    };
    const noReply = 'no reply in the log';
    if (e.reply !== undefined && /^(FAIL|ERR)\b/.test(e.reply.text)) {
      skip(`${commandName(c, e.text)} failed in the log`);
      continue;
    }
    const answered = e.reply !== undefined;
    switch (c.kind) {
      case 'access': {
        const kinds = ACCESS_OPS[c.space];
        const kind = c.value === undefined ? kinds.read : kinds.write;
        const pieces = alignedPieces(c.addr, c.size, SIZES[c.space]);
        const ops = pieces.map((p) => ({ op: kind, root: ROOT, [kinds.at]: hex(p.addr), size: p.size, ...(c.value === undefined ? {} : { value: hex((c.value >> BigInt(8 * p.offset)) & ((1n << BigInt(8 * p.size)) - 1n)) }) }));
        if (!answered || pieces.length > 1) {
          emit(ops, null, answered ? 'unaligned access split into aligned pieces' : noReply);
          break;
        }
        if (specOf(kind).reads) emit(ops, [{ status: 'ok', value: replies.value(e, c.size) }], '');
        else {
          replies.ok(e);
          emit(ops, [{ status: 'ok' }], '');
        }
        break;
      }
      case 'write-bytes': {
        if (c.data.length === 0) {
          skip(`${commandName(c, e.text)} of 0 bytes`);
          break;
        }
        const pieces = alignedPieces(c.addr, c.data.length, SIZES.mmio);
        const ops = pieces.map((p) => ({ op: ACCESS_OPS.mmio.write, root: ROOT, addr: hex(p.addr), size: p.size, value: hex(valueAt(c.data, p.offset, p.size)) }));
        if (answered) replies.ok(e);
        emit(ops, answered ? pieces.map((): Observation => ({ status: 'ok' })) : null, noReply);
        break;
      }
      case 'read-bytes': {
        const pieces = alignedPieces(c.addr, c.len, SIZES.mmio);
        const ops = pieces.map((p) => ({ op: ACCESS_OPS.mmio.read, root: ROOT, addr: hex(p.addr), size: p.size }));
        const bytes = answered ? replies.bytes(e, c.len, c.encoding) : null;
        emit(ops, bytes === null ? null : pieces.map((p): Observation => ({ status: 'ok', value: valueAt(bytes, p.offset, p.size) })), noReply);
        break;
      }
      case 'clock-step':
      case 'clock-set': {
        // The step: from the time QEMU reports when the log has it, else from the command.
        const to = answered ? replies.clock(e) : c.kind === 'clock-set' ? c.ns : c.ns === null ? null : now + c.ns;
        if (to === null) {
          skip('clock_step to the next deadline (only a log tells how far that is)');
          break;
        }
        const ns = to - now;
        now = to > now ? to : now;
        if (ns <= 0n) {
          skip(`${commandName(c, e.text)} that does not advance the clock`);
          break;
        }
        const max = BigInt(CLOCK_STEP_MAX_NS);
        const n = (ns + max - 1n) / max;
        if (n > BigInt(MAX_CLOCK_STEPS)) throw new InputError(`${file}:${e.line}`, `a clock step of at most ${hex(max * BigInt(MAX_CLOCK_STEPS))} ns, got "${e.text}"`);
        const ops = Array.from({ length: Number(n) }, (_, i) => ({ op: 'clock.step', ns: Number(i < Number(n) - 1 ? max : ns - max * (n - 1n)) }));
        emit(ops, answered ? ops.map((): Observation => ({ status: 'ok' })) : null, noReply);
        break;
      }
      case 'other':
        skip(c.name);
        break;
    }
  }
  return out;
}
