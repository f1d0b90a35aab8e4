/**
 * The vfio-user codec: messages.ts's Message to bytes and back, with the
 * checks of QEMU's docs/interop/vfio-user.rst. Everything the specification
 * does not allow becomes a ProtocolViolation naming the field, its byte
 * offset from the start of the message (header byte 0), what was expected
 * and what came. Little-endian ("all data is in the endianness of the host
 * system"; the hosts we test are little-endian).
 *
 * Offsets in the specification's tables are from the end of the header; here
 * they are from the start of the message, so a payload field at offset N of
 * its table is at byte 16 + N.
 */
import {
  CAP_SPARSE_MMAP,
  CAP_TYPE,
  COMMANDS,
  DEFAULT_LIMITS,
  DEVICE_FLAG_PCI,
  DEVICE_FLAG_RESET,
  DMA_READ_FLAG,
  DMA_UNMAP_ALL,
  DMA_WRITE_FLAG,
  FEATURE_DMA_LOGGING_REPORT,
  FEATURE_DMA_LOGGING_START,
  FEATURE_GET,
  FEATURE_MASK,
  FEATURE_MIGRATION,
  FEATURE_MIG_DEVICE_STATE,
  FEATURE_PROBE,
  FEATURE_SET,
  FLAG_ERROR,
  FLAG_NO_REPLY,
  FLAG_TYPE_COMMAND,
  FLAG_TYPE_MASK,
  FLAG_TYPE_REPLY,
  HEADER_SIZE,
  IOEVENTFD_FLAG_DATAMATCH,
  IOEVENTFD_FLAG_PIO,
  IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY,
  IOREGIONFD_FLAG_PIO,
  IOREGIONFD_FLAG_POSTED_WRITES,
  IO_FD_TYPE_IOEVENTFD,
  IO_FD_TYPE_IOREGIONFD,
  IRQ_SET_ACTION_MASK,
  IRQ_SET_ACTION_TRIGGER,
  IRQ_SET_ACTION_UNMASK,
  IRQ_SET_DATA_BOOL,
  IRQ_SET_DATA_EVENTFD,
  IRQ_SET_DATA_NONE,
  PCI_REGIONS,
  ProtocolViolation,
  REGION_FLAG_CAPS,
  REGION_FLAG_MMAP,
  WRITE_MULTI_DATA,
  commandName,
  type CommandName,
  type DeviceFeature,
  type DeviceInfo,
  type DmaAccess,
  type DmaMap,
  type DmaUnmap,
  type Header,
  type IoFdEntry,
  type IrqInfo,
  type Limits,
  type Message,
  type MigData,
  type MultiWrite,
  type RegionAccess,
  type RegionInfo,
  type RegionIoFds,
  type RegionWriteMulti,
  type RegionWriteMultiReply,
  type SetIrqs,
  type SparseArea,
  type Version,
  type VersionCaps,
} from './messages.ts';

// ---------------------------------------------------------------------------
// Sizes of the fixed parts (payload only, header excluded).

const P = HEADER_SIZE; // payload start
const DMA_MAP_SIZE = 32; // "This structure is 32 bytes in size"
const DMA_UNMAP_SIZE = 24;
const DEVICE_INFO_SIZE = 16;
const REGION_INFO_SIZE = 32;
const IO_FDS_SIZE = 16;
const IO_FD_ENTRY_SIZE = 40; // "currently this is 40 bytes for both IO FD types"
const IRQ_INFO_SIZE = 16;
const IRQ_SET_SIZE = 20;
const REGION_ACCESS_SIZE = 16;
const DMA_ACCESS_SIZE = 16;
const FEATURE_SIZE = 8;
const MIG_DATA_SIZE = 8;
const WRITE_MULTI_HEAD = 8;
const WRITE_MULTI_ENTRY = 24;
const VERSION_SIZE = 4;
const CAP_HEADER_SIZE = 8;
const SPARSE_HEAD_SIZE = 16; // cap header + nr_areas + reserved
const SPARSE_AREA_SIZE = 16;
const TYPE_CAP_SIZE = 16; // cap header + type + subtype

const U64_MAX = (1n << 64n) - 1n;
const JSON_MAX_DEPTH = 64;

const REGION_INFO_FLAGS = 0xf; // READ, WRITE, MMAP, CAPS
const IRQ_INFO_FLAGS = 0xf; // EVENTFD, MASKABLE, AUTOMASKED, NORESIZE
const DEVICE_INFO_FLAGS = DEVICE_FLAG_RESET | DEVICE_FLAG_PCI;
const IRQ_SET_DATA = IRQ_SET_DATA_NONE | IRQ_SET_DATA_BOOL | IRQ_SET_DATA_EVENTFD;
const IRQ_SET_ACTION = IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK | IRQ_SET_ACTION_TRIGGER;
const FEATURE_OPS = FEATURE_GET | FEATURE_SET | FEATURE_PROBE;
const IOEVENTFD_FLAGS = IOEVENTFD_FLAG_DATAMATCH | IOEVENTFD_FLAG_PIO | IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY;
const IOREGIONFD_FLAGS = IOREGIONFD_FLAG_PIO | IOREGIONFD_FLAG_POSTED_WRITES;
/** VFIO_MIGRATION_STOP_COPY, _P2P, _PRE_COPY ("VFIO_DEVICE_FEATURE_MIGRATION"). */
const MIGRATION_FLAGS = 0x7n;
const MIGRATION_STOP_COPY = 0x1n;
/** vfio_device_mig_state values vfio-user uses: ERROR 0 .. RESUMING 4, PRE_COPY 6 (5 and 7 are P2P, unused). */
const MIG_STATES_GET = new Set([0, 1, 2, 3, 4, 6]);
/** "ERROR cannot be specified as a device state" in a SET. */
const MIG_STATES_SET = new Set([1, 2, 3, 4, 6]);

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;
const bytesOf = (n: number): string => `${n} byte${n === 1 ? '' : 's'}`;

// ---------------------------------------------------------------------------
// Decoding helpers

/** A message being decoded: the bytes, a label for violations, little-endian reads. */
class Dec {
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

const popcount = (v: number): number => {
  let n = 0;
  for (let x = v >>> 0; x !== 0; x &= x - 1) n++;
  return n;
};

// ---------------------------------------------------------------------------
// Header ("Header")

function headerChecks(d: Dec, b: Uint8Array): Header {
  if (b.length < HEADER_SIZE) d.fail('header', 0, `${HEADER_SIZE} bytes`, bytesOf(b.length));
  const id = d.u16(0);
  const command = d.u16(2);
  const size = d.u32(4);
  const flags = d.u32(8);
  const errno = d.u32(12);
  if (size < HEADER_SIZE) d.fail('msg_size', 4, `at least ${HEADER_SIZE} (the header is included)`, `${size}`);
  const name = commandName(command);
  if (name === undefined) d.fail('command', 2, 'a command of the specification (1-13, 15-18)', `${command}`);
  const type = flags & FLAG_TYPE_MASK;
  const reply = type === FLAG_TYPE_REPLY;
  d.label = reply ? `${name} reply` : name;
  if (type !== FLAG_TYPE_COMMAND && type !== FLAG_TYPE_REPLY) d.fail('flags', 8, 'type 0 (command) or 1 (reply)', `type ${type}`);
  const reserved = flags & ~(FLAG_TYPE_MASK | FLAG_NO_REPLY | FLAG_ERROR);
  if (reserved !== 0) d.fail('flags', 8, 'reserved bits 6-31 clear', hex(flags >>> 0));
  const noReply = (flags & FLAG_NO_REPLY) !== 0;
  const error = (flags & FLAG_ERROR) !== 0;
  if (reply && noReply) d.fail('flags', 8, 'No_reply clear in a reply (it is a command attribute)', hex(flags));
  if (!reply && error) d.fail('flags', 8, 'Error clear in a command (it is a reply attribute)', hex(flags));
  // "It is reserved in a command message"; without the Error bit there is no error to report.
  if (!reply && errno !== 0) d.fail('error', 12, '0 (reserved in a command message)', `${errno}`);
  if (reply && !error && errno !== 0) d.fail('error', 12, '0 (the Error flag is clear)', `${errno}`);
  return { id, command, size, reply, noReply, error, errno };
}

/** Header peek for tools (pcap import, proxy): decodes only the 16-byte header, validating it. */
export function decodeHeader(bytes: Uint8Array): Header {
  return headerChecks(new Dec('header', bytes), bytes);
}

// ---------------------------------------------------------------------------
// VERSION ("VFIO_USER_VERSION"): major, minor, NUL-terminated UTF-8 JSON.

type JNode =
  | { t: 'obj'; pos: number; entries: { key: string; value: JNode }[] }
  | { t: 'arr'; pos: number; items: JNode[] }
  | { t: 'str'; pos: number; v: string }
  | { t: 'num'; pos: number; raw: string }
  | { t: 'bool'; pos: number; v: boolean }
  | { t: 'null'; pos: number };

class JsonError {
  constructor(
    readonly pos: number,
    readonly expected: string,
    readonly got: string,
  ) {}
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const INTEGER = /^-?(?:0|[1-9][0-9]*)$/;

/** RFC 8259 JSON, strictly: no duplicate keys, bounded nesting, numbers kept as their text. */
function parseJson(text: string): JNode {
  let i = 0;
  const gotHere = (): string => (i < text.length ? JSON.stringify(text[i]) : 'the end of the text');
  const err = (expected: string): never => {
    throw new JsonError(i, expected, gotHere());
  };
  const ws = (): void => {
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    }
  };
  const str = (): string => {
    i++; // the opening quote
    let out = '';
    let from = i;
    for (;;) {
      if (i >= text.length) err('a closing quote');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(from, i);
        i++;
        return out;
      }
      if (c < 0x20) err('no raw control character in a string');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(from, i);
      const e = text[i + 1];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && Object.hasOwn(simple, e)) {
        out += simple[e];
        i += 2;
      } else if (e === 'u') {
        const h = text.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(h)) {
          i += 2;
          err('four hex digits after \\u');
        }
        out += String.fromCharCode(parseInt(h, 16));
        i += 6;
      } else {
        i++;
        err('an escape: \\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX');
      }
      from = i;
    }
  };
  const value = (depth: number): JNode => {
    ws();
    const pos = i;
    if (depth > JSON_MAX_DEPTH) err(`nesting at most ${JSON_MAX_DEPTH} deep`);
    const c = text[i];
    if (c === '{') {
      i++;
      const entries: { key: string; value: JNode }[] = [];
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return { t: 'obj', pos, entries };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') err('a string (an object key)');
        const keyPos = i;
        const key = str();
        if (seen.has(key)) throw new JsonError(keyPos, 'unique keys in an object', `${JSON.stringify(key)} again`);
        seen.add(key);
        ws();
        if (text[i] !== ':') err("':'");
        i++;
        entries.push({ key, value: value(depth + 1) });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return { t: 'obj', pos, entries };
        }
        err("',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const items: JNode[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { t: 'arr', pos, items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return { t: 'arr', pos, items };
        }
        err("',' or ']'");
      }
    }
    if (c === '"') return { t: 'str', pos, v: str() };
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (m === null) err('a number');
      const raw = m![0];
      if (!Number.isFinite(Number(raw))) err('a number within the range of a double');
      i += raw.length;
      return { t: 'num', pos, raw };
    }
    for (const [lit, node] of [
      ['true', { t: 'bool', pos, v: true }],
      ['false', { t: 'bool', pos, v: false }],
      ['null', { t: 'null', pos }],
    ] as const) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return node;
      }
    }
    return err('a JSON value');
  };
  const root = value(0);
  ws();
  if (i !== text.length) err('the end of the JSON text');
  return root;
}

/** Sets a key as an own, enumerable property (a "__proto__" key stays data). */
const put = (o: Record<string, unknown>, k: string, v: unknown): void => {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
};

/** A parsed JSON value as plain data: integers past 2^53 as bigint. */
function plain(n: JNode): unknown {
  switch (n.t) {
    case 'obj': {
      const o: Record<string, unknown> = {};
      for (const e of n.entries) put(o, e.key, plain(e.value));
      return o;
    }
    case 'arr':
      return n.items.map(plain);
    case 'str':
    case 'bool':
      return n.v;
    case 'null':
      return null;
    case 'num': {
      if (INTEGER.test(n.raw)) {
        const b = BigInt(n.raw);
        return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
      }
      const x = Number(n.raw);
      return x === 0 ? 0 : x; // no -0: it would not survive JSON text
    }
  }
}

/** JSON text of plain data (bigint as a number literal). */
function toJson(v: unknown, depth = 0): string {
  if (depth > JSON_MAX_DEPTH) throw new TypeError(`VERSION JSON nests deeper than ${JSON_MAX_DEPTH}`);
  if (v === null) return 'null';
  switch (typeof v) {
    case 'bigint':
      return v.toString();
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`VERSION JSON cannot carry ${v}`);
      return JSON.stringify(v);
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : toJson(x, depth + 1))).join(',')}]`;
      const parts: string[] = [];
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) parts.push(`${JSON.stringify(k)}:${toJson(x, depth + 1)}`);
      return `{${parts.join(',')}}`;
    }
    default:
      throw new TypeError(`VERSION JSON cannot carry a ${typeof v}`);
  }
}

/** The first byte of bytes[from, to) that is not well-formed UTF-8 (RFC 3629), or -1. */
function badUtf8(b: Uint8Array, from: number, to: number): number {
  let i = from;
  while (i < to) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0; // no overlong forms
      if (c === 0xed) hi = 0x9f; // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f; // nothing past U+10FFFF
    } else return i;
    if (i + n >= to) return i; // a sequence cut short
    if (b[i + 1] < lo || b[i + 1] > hi) return i + 1;
    for (let k = 2; k <= n; k++) if (b[i + k] < 0x80 || b[i + k] > 0xbf) return i + k;
    i += n + 1;
  }
  return -1;
}

const KNOWN_CAPS = ['max_msg_fds', 'max_data_xfer_size', 'pgsizes', 'max_dma_maps', 'migration', 'twin_socket', 'write_multiple'];

function decodeVersion(d: Dec, len: number, reply: boolean, fds: readonly number[]): Version {
  d.atLeast(len, VERSION_SIZE, 'major and minor');
  const v: Version = { major: d.u16(P), minor: d.u16(P + 2), caps: {} };
  const start = P + VERSION_SIZE;
  const end = P + len;
  if (len > VERSION_SIZE) {
    // "version data ... variable (including terminating NUL)": UTF-8 JSON, then one NUL.
    if (d.b[end - 1] !== 0) d.fail('version data', end - 1, 'a terminating NUL', hex(d.b[end - 1]));
    const nul = d.b.indexOf(0, start);
    if (nul !== end - 1) d.fail('version data', nul, 'JSON text up to the terminating NUL (no NUL inside)', 'a NUL before the last byte');
    const bad = badUtf8(d.b, start, end - 1);
    if (bad >= 0) d.fail('version data', bad, 'UTF-8', `byte ${hex(d.b[bad])}`);
    const text = Buffer.from(d.b.buffer, d.b.byteOffset + start, end - 1 - start).toString('utf8');
    const at = (pos: number): number => start + Buffer.byteLength(text.slice(0, pos), 'utf8');
    let root: JNode;
    try {
      root = parseJson(text);
    } catch (e) {
      if (e instanceof JsonError) d.fail('version data', at(e.pos), `JSON: ${e.expected}`, e.got);
      throw e;
    }
    const kind = (n: JNode): string => (n.t === 'obj' ? 'an object' : n.t === 'arr' ? 'an array' : n.t === 'str' ? 'a string' : n.t === 'num' ? 'a number' : n.t === 'bool' ? 'a boolean' : 'null');
    if (root.t !== 'obj') d.fail('version data', at(root.pos), 'a JSON object', kind(root));
    const want = <T extends JNode['t']>(n: JNode, t: T, field: string, what: string): Extract<JNode, { t: T }> => {
      if (n.t !== t) d.fail(field, at(n.pos), what, kind(n));
      return n as Extract<JNode, { t: T }>;
    };
    const nat = (n: JNode, field: string): number => {
      const x = Number(want(n, 'num', field, 'a number').raw);
      if (!Number.isSafeInteger(x) || x < 0) d.fail(field, at(n.pos), 'a non-negative integer', (n as { raw: string }).raw);
      return x;
    };
    const u64 = (n: JNode, field: string): bigint => {
      const raw = want(n, 'num', field, 'a number').raw;
      let x: bigint | null = null;
      if (INTEGER.test(raw)) x = BigInt(raw);
      else if (Number.isSafeInteger(Number(raw))) x = BigInt(Number(raw));
      if (x === null || x < 0n || x > U64_MAX) d.fail(field, at(n.pos), 'an integer 0..2^64-1', raw);
      return x!;
    };
    const bool = (n: JNode, field: string): boolean => want(n, 'bool', field, 'a boolean').v;
    const caps: VersionCaps = {};
    const top: Record<string, unknown> = {};
    let sawTop = false;
    for (const { key, value } of root.entries) {
      if (key !== 'capabilities') {
        put(top, key, plain(value));
        sawTop = true;
        continue;
      }
      const c = want(value, 'obj', 'capabilities', 'an object');
      const other: Record<string, unknown> = {};
      let sawOther = false;
      for (const { key: k, value: n } of c.entries) {
        const f = `capabilities.${k}`;
        switch (k) {
          case 'max_msg_fds':
            caps.maxMsgFds = nat(n, f);
            break;
          case 'max_data_xfer_size':
            caps.maxDataXferSize = nat(n, f);
            break;
          case 'pgsizes':
            caps.pgsizes = u64(n, f);
            break;
          case 'max_dma_maps':
            caps.maxDmaMaps = nat(n, f);
            break;
          case 'migration': {
            const o = want(n, 'obj', f, 'an object');
            let pgsize: bigint | undefined;
            let maxBitmapSize: number | undefined;
            for (const e of o.entries) {
              if (e.key === 'pgsize') pgsize = u64(e.value, `${f}.pgsize`);
              else if (e.key === 'max_bitmap_size') maxBitmapSize = nat(e.value, `${f}.max_bitmap_size`);
            }
            if (pgsize === undefined) d.fail(`${f}.pgsize`, at(o.pos), 'the page size of the dirty bitmap', 'no pgsize');
            caps.migration = maxBitmapSize === undefined ? { pgsize: pgsize! } : { pgsize: pgsize!, maxBitmapSize };
            break;
          }
          case 'twin_socket': {
            const o = want(n, 'obj', f, 'an object');
            let supported = false; // "Optional, defaults to false"
            let fdIndex: number | undefined;
            let fdPos = o.pos;
            for (const e of o.entries) {
              if (e.key === 'supported') supported = bool(e.value, `${f}.supported`);
              else if (e.key === 'fd_index') {
                fdIndex = nat(e.value, `${f}.fd_index`);
                fdPos = e.value.pos;
              }
            }
            if (fdIndex !== undefined && !reply) d.fail(`${f}.fd_index`, at(fdPos), 'no fd_index (only valid in the reply message)', `${fdIndex}`);
            if (reply && supported && fdIndex === undefined) d.fail(`${f}.fd_index`, at(o.pos), 'an fd_index when supported is true (else the reply is inconsistent)', 'none');
            if (reply && !supported && fdIndex !== undefined) d.fail(`${f}.supported`, at(o.pos), 'true when fd_index is given', 'false');
            if (fdIndex !== undefined && fdIndex >= fds.length) d.fail(`${f}.fd_index`, at(fdPos), `an index into the ${fds.length} fds sent`, `${fdIndex}`);
            caps.twinSocket = fdIndex === undefined ? { supported } : { supported, fdIndex };
            break;
          }
          case 'write_multiple':
            caps.writeMultiple = bool(n, f);
            break;
          default:
            put(other, k, plain(n));
            sawOther = true;
        }
      }
      if (sawOther) caps.other = other;
    }
    v.caps = caps;
    if (sawTop) v.other = top;
  }
  // The only fd a VERSION may carry is the twin socket of the reply.
  const twinFds = reply && v.caps.twinSocket?.fdIndex !== undefined ? 1 : 0;
  if (fds.length !== twinFds) d.fail('fds', P, twinFds ? '1 (the twin socket)' : 'none (no twin socket given)', `${fds.length}`);
  return v;
}

function encodeVersion(v: Version): Buffer {
  const c = v.caps;
  const caps: Record<string, unknown> = {};
  if (c.maxMsgFds !== undefined) caps.max_msg_fds = c.maxMsgFds;
  if (c.maxDataXferSize !== undefined) caps.max_data_xfer_size = c.maxDataXferSize;
  if (c.pgsizes !== undefined) caps.pgsizes = c.pgsizes;
  if (c.maxDmaMaps !== undefined) caps.max_dma_maps = c.maxDmaMaps;
  if (c.migration !== undefined) caps.migration = c.migration.maxBitmapSize === undefined ? { pgsize: c.migration.pgsize } : { pgsize: c.migration.pgsize, max_bitmap_size: c.migration.maxBitmapSize };
  if (c.twinSocket !== undefined) caps.twin_socket = c.twinSocket.fdIndex === undefined ? { supported: c.twinSocket.supported } : { supported: c.twinSocket.supported, fd_index: c.twinSocket.fdIndex };
  if (c.writeMultiple !== undefined) caps.write_multiple = c.writeMultiple;
  for (const [k, x] of Object.entries(c.other ?? {})) {
    if (KNOWN_CAPS.includes(k)) throw new TypeError(`VERSION caps.other must not hold ${k} (a known capability)`);
    put(caps, k, x);
  }
  const root: Record<string, unknown> = { capabilities: caps };
  for (const [k, x] of Object.entries(v.other ?? {})) {
    if (k === 'capabilities') throw new TypeError('VERSION other must not hold "capabilities"');
    put(root, k, x);
  }
  const json = Buffer.from(toJson(root), 'utf8');
  const b = Buffer.alloc(VERSION_SIZE + json.length + 1);
  b.writeUInt16LE(v.major, 0);
  b.writeUInt16LE(v.minor, 2);
  json.copy(b, VERSION_SIZE);
  return b; // the last byte is the terminating NUL
}

// ---------------------------------------------------------------------------
// The other payloads. Each decoder gets the payload length (message size - 16).

type Dir = { reply: boolean; fds: readonly number[]; limits: Limits };

function decodeDmaMap(d: Dec, len: number, { fds }: Dir): DmaMap {
  // "VFIO_USER_DMA_MAP": argsz is the size of the structure, 32.
  d.exact(len, DMA_MAP_SIZE, 'the DMA map structure');
  const argsz = d.u32(P);
  if (argsz !== DMA_MAP_SIZE) d.fail('argsz', P, `${DMA_MAP_SIZE} (the size of the structure)`, `${argsz}`);
  const flags = d.u32(P + 4);
  if ((flags & ~(DMA_READ_FLAG | DMA_WRITE_FLAG)) !== 0) d.fail('flags', P + 4, 'only bits 0 (readable) and 1 (writeable)', hex(flags));
  const offset = d.u64(P + 8);
  const address = d.u64(P + 16);
  const size = d.u64(P + 24);
  if (address + size > U64_MAX + 1n) d.fail('size', P + 24, `at most ${hex(U64_MAX + 1n - address)} (the region must not wrap past 2^64)`, hex(size));
  // A mappable region comes with one fd; otherwise none, and offset is zero.
  if (fds.length > 1) d.fail('fds', P, 'at most 1 (the file backing the region)', `${fds.length}`);
  if (fds.length === 0 && offset !== 0n) d.fail('offset', P + 8, '0 (no file descriptor: the region is not mappable)', hex(offset));
  return { flags, offset, address, size };
}

function decodeDmaUnmap(d: Dec, len: number, { fds }: Dir): DmaUnmap {
  // "VFIO_USER_DMA_UNMAP": flags are unused in the specification; QEMU and libvfio-user send VFIO_DMA_UNMAP_FLAG_ALL (bit 1).
  d.exact(len, DMA_UNMAP_SIZE, 'the DMA unmap structure');
  const argsz = d.argszAtLeast(DMA_UNMAP_SIZE, 'the reply echoes the 24-byte entry');
  const flags = d.u32(P + 4);
  if ((flags & ~DMA_UNMAP_ALL) !== 0) d.fail('flags', P + 4, 'only bit 1 (unmap all)', hex(flags));
  const address = d.u64(P + 8);
  const size = d.u64(P + 16);
  if (flags & DMA_UNMAP_ALL) {
    if (address !== 0n) d.fail('address', P + 8, '0 (unmap all)', hex(address));
    if (size !== 0n) d.fail('size', P + 16, '0 (unmap all)', hex(size));
  }
  d.noFds(fds);
  return argsz === DMA_UNMAP_SIZE ? { flags, address, size } : { argsz, flags, address, size };
}

function decodeDeviceInfo(d: Dec, len: number, { reply, fds }: Dir): DeviceInfo {
  // "VFIO_USER_DEVICE_GET_INFO"
  d.exact(len, DEVICE_INFO_SIZE, 'the device info structure');
  const argsz = d.argszAtLeast(DEVICE_INFO_SIZE, 'the 16-byte reply');
  const flags = d.u32(P + 4);
  const numRegions = d.u32(P + 8);
  const numIrqs = d.u32(P + 12);
  if (!reply) {
    d.zero32('flags', P + 4, 'all other fields must be zero');
    d.zero32('num_regions', P + 8, 'all other fields must be zero');
    d.zero32('num_irqs', P + 12, 'all other fields must be zero');
  } else {
    if ((flags & ~DEVICE_INFO_FLAGS) !== 0) d.fail('flags', P + 4, 'only VFIO_DEVICE_FLAGS_RESET and VFIO_DEVICE_FLAGS_PCI', hex(flags));
    if (!(flags & DEVICE_FLAG_PCI)) d.fail('flags', P + 4, 'VFIO_DEVICE_FLAGS_PCI (this version of the protocol only supports PCI devices)', hex(flags));
    if (numRegions < PCI_REGIONS) d.fail('num_regions', P + 8, `at least ${PCI_REGIONS} (VFIO_PCI_NUM_REGIONS)`, `${numRegions}`);
  }
  d.noFds(fds);
  return argsz === DEVICE_INFO_SIZE ? { flags, numRegions, numIrqs } : { argsz, flags, numRegions, numIrqs };
}

function decodeRegionInfo(d: Dec, len: number, { reply, fds }: Dir): RegionInfo {
  // "VFIO_USER_DEVICE_GET_REGION_INFO"
  const why = 'all other fields must be zero';
  if (!reply) d.exact(len, REGION_INFO_SIZE, 'the region info structure');
  else d.atLeast(len, REGION_INFO_SIZE, 'the region info structure');
  const argsz = d.argszAtLeast(REGION_INFO_SIZE, 'the 32-byte region info');
  const flags = d.u32(P + 4);
  const index = d.u32(P + 8);
  const capOffset = d.u32(P + 12);
  const size = d.u64(P + 16);
  const offset = d.u64(P + 24);
  const info: RegionInfo = { argsz, flags, index, capOffset, size, offset };
  if (!reply) {
    d.zero32('flags', P + 4, why);
    d.zero32('cap_offset', P + 12, why);
    d.zero64('size', P + 16, why);
    d.zero64('offset', P + 24, why);
    d.noFds(fds);
    return info;
  }
  if ((flags & ~REGION_INFO_FLAGS) !== 0) d.fail('flags', P + 4, 'only READ, WRITE, MMAP and CAPS (bits 0-3)', hex(flags));
  const mmap = (flags & REGION_FLAG_MMAP) !== 0;
  // "Message sizes": argsz is the full size; a payload shorter than argsz is a truncated reply (the fixed part only).
  if (len > argsz) d.fail('argsz', P, `at least ${len} (the payload carried)`, `${argsz}`);
  const full = len === argsz;
  if (!full && len !== REGION_INFO_SIZE) d.fail('argsz', P, `${len} (the payload carried; or a truncated reply of ${REGION_INFO_SIZE} bytes)`, `${argsz}`);
  if (!full) {
    if (capOffset !== 0) d.fail('cap_offset', P + 12, '0 (a truncated reply carries no capabilities)', `${capOffset}`);
    if (fds.length > (mmap ? 1 : 0)) d.fail('fds', P + 4, mmap ? 'at most 1 (MMAP)' : 'none (MMAP clear)', `${fds.length}`);
    return info;
  }
  if (len === REGION_INFO_SIZE) {
    if (flags & REGION_FLAG_CAPS) d.fail('flags', P + 4, 'CAPS clear (the reply carries no capabilities)', hex(flags));
    if (capOffset !== 0) d.fail('cap_offset', P + 12, '0 (the reply carries no capabilities)', `${capOffset}`);
  } else {
    if (!(flags & REGION_FLAG_CAPS)) d.fail('flags', P + 4, 'CAPS set (the reply carries capabilities)', hex(flags));
    regionCaps(d, len, info);
  }
  // "When this flag is set, the reply will include a file descriptor".
  if (fds.length !== (mmap ? 1 : 0)) d.fail('fds', P + 4, mmap ? '1 (MMAP: the file to mmap())' : 'none (MMAP clear)', `${fds.length}`);
  return info;
}

/** The capability chain ("VFIO region capabilities"): offsets relative to the region info structure. */
function regionCaps(d: Dec, len: number, info: RegionInfo): void {
  const covered: [number, number][] = [];
  let off = info.capOffset;
  if (off < REGION_INFO_SIZE || off > len - CAP_HEADER_SIZE) d.fail('cap_offset', P + 12, `${REGION_INFO_SIZE}..${len - CAP_HEADER_SIZE} (a capability inside the payload)`, `${off}`);
  for (;;) {
    const a = P + off;
    const id = d.u16(a);
    const version = d.u16(a + 2);
    const next = d.u32(a + 4);
    let end: number;
    if (id === CAP_SPARSE_MMAP) {
      // "VFIO sparse mmap cap header" and "VFIO region info cap sparse mmap"
      if (info.sparse !== undefined) d.fail('id', a, 'one sparse-mmap capability', 'a second one');
      if (version !== 1) d.fail('version', a + 2, '1 (sparse mmap)', `${version}`);
      if (off + SPARSE_HEAD_SIZE > len) d.fail('nr_areas', a + 8, 'inside the payload', 'past its end');
      const nr = d.u32(a + 8);
      d.zero32('reserved', a + 12, 'reserved');
      const room = Math.floor((len - off - SPARSE_HEAD_SIZE) / SPARSE_AREA_SIZE);
      if (nr > room) d.fail('nr_areas', a + 8, `at most ${room} (the areas inside the payload)`, `${nr}`);
      if (!(info.flags & REGION_FLAG_MMAP)) d.fail('flags', P + 4, 'MMAP set (a sparse-mmap capability describes mmap()able areas)', hex(info.flags));
      const areas: SparseArea[] = [];
      for (let k = 0; k < nr; k++) {
        const e = a + SPARSE_HEAD_SIZE + k * SPARSE_AREA_SIZE;
        const offset = d.u64(e);
        const size = d.u64(e + 8);
        if (offset + size > info.size) d.fail(`areas[${k}]`, e, `inside the region (offset + size <= ${hex(info.size)})`, `${hex(offset)}+${hex(size)}`);
        areas.push({ offset, size });
      }
      info.sparse = areas;
      end = off + SPARSE_HEAD_SIZE + nr * SPARSE_AREA_SIZE;
    } else if (id === CAP_TYPE) {
      // "Device-Specific Regions": VFIO_REGION_INFO_CAP_TYPE (type, subtype).
      if (info.type !== undefined) d.fail('id', a, 'one region-type capability', 'a second one');
      if (version !== 1) d.fail('version', a + 2, '1 (region type)', `${version}`);
      if (off + TYPE_CAP_SIZE > len) d.fail('type', a + 8, 'inside the payload', 'past its end');
      info.type = { type: d.u32(a + 8), subtype: d.u32(a + 12) };
      end = off + TYPE_CAP_SIZE;
    } else {
      d.fail('id', a, `a region capability (${CAP_SPARSE_MMAP} sparse mmap, ${CAP_TYPE} type)`, `${id}`);
    }
    covered.push([off, end]);
    if (next === 0) break;
    // The list runs forward without overlap, inside the payload.
    if (next < end || next > len - CAP_HEADER_SIZE) d.fail('next', a + 4, `0 or ${end}..${len - CAP_HEADER_SIZE}`, `${next}`);
    off = next;
  }
  // argsz is "the region info structure plus the size of any region capabilities": no byte outside them.
  covered.sort((x, y) => x[0] - y[0]);
  let at = REGION_INFO_SIZE;
  for (const [s, e] of [...covered, [len, len] as [number, number]]) {
    if (s > at) d.fail('capabilities', P + at, 'a capability (argsz is the structure plus its capabilities)', `${bytesOf(s - at)} outside the chain`);
    at = Math.max(at, e);
  }
}

function decodeRegionIoFds(d: Dec, len: number, { reply, fds }: Dir): RegionIoFds {
  // "VFIO_USER_DEVICE_GET_REGION_IO_FDS"
  if (!reply) d.exact(len, IO_FDS_SIZE, 'the region io fds request');
  else d.atLeast(len, IO_FDS_SIZE, 'the region io fds structure');
  const argsz = d.argszAtLeast(IO_FDS_SIZE, 'the 16-byte reply structure');
  const flags = d.u32(P + 4);
  const index = d.u32(P + 8);
  const count = d.u32(P + 12);
  d.zero32('flags', P + 4, reply ? 'flags must be zero' : 'all other fields must be zero');
  if (!reply) {
    d.zero32('count', P + 12, 'all other fields must be zero');
    d.noFds(fds);
    return { argsz, flags, index, count, entries: [] };
  }
  const entries: IoFdEntry[] = [];
  if (len > IO_FDS_SIZE) {
    if ((len - IO_FDS_SIZE) % IO_FD_ENTRY_SIZE !== 0) d.fail('msg_size', 4, `${P + IO_FDS_SIZE} + ${IO_FD_ENTRY_SIZE} × count`, `${P + len}`);
    const carried = (len - IO_FDS_SIZE) / IO_FD_ENTRY_SIZE;
    if (count !== carried) d.fail('count', P + 12, `${carried} (the sub-regions carried)`, `${count}`);
    if (argsz !== len) d.fail('argsz', P, `${len} (the reply structure and its sub-regions)`, `${argsz}`);
  } else {
    // The full reply, or a truncated one (argsz says what it would take).
    const need = IO_FDS_SIZE + IO_FD_ENTRY_SIZE * count;
    if (argsz !== need) d.fail('argsz', P, `${need} (16 + 40 × count)`, `${argsz}`);
  }
  const used = new Set<number>();
  for (let k = 0; k < (len - IO_FDS_SIZE) / IO_FD_ENTRY_SIZE; k++) {
    const a = P + IO_FDS_SIZE + k * IO_FD_ENTRY_SIZE;
    const f = `sub-regions[${k}]`;
    const e: IoFdEntry = { offset: d.u64(a), size: d.u64(a + 8), fdIndex: d.u32(a + 16), type: d.u32(a + 20), flags: d.u32(a + 24), data: d.u64(a + 32) };
    if (e.fdIndex >= fds.length) d.fail(`${f}.fd_index`, a + 16, `an index into the ${fds.length} fds sent`, `${e.fdIndex}`);
    used.add(e.fdIndex);
    if (e.type === IO_FD_TYPE_IOEVENTFD) {
      if ((e.flags & ~IOEVENTFD_FLAGS) !== 0) d.fail(`${f}.flags`, a + 24, 'KVM_IOEVENTFD_FLAG_DATAMATCH, _PIO, _VIRTIO_CCW_NOTIFY', hex(e.flags));
    } else if (e.type === IO_FD_TYPE_IOREGIONFD) {
      if ((e.flags & ~IOREGIONFD_FLAGS) !== 0) d.fail(`${f}.flags`, a + 24, 'KVM_IOREGION_PIO, KVM_IOREGION_POSTED_WRITES', hex(e.flags));
      if (e.size === 0n && !(e.flags & IOREGIONFD_FLAG_POSTED_WRITES)) d.fail(`${f}.flags`, a + 24, 'KVM_IOREGION_POSTED_WRITES (size is zero)', hex(e.flags));
    } else {
      d.fail(`${f}.type`, a + 20, `${IO_FD_TYPE_IOEVENTFD} (ioeventfd) or ${IO_FD_TYPE_IOREGIONFD} (ioregionfd)`, `${e.type}`);
    }
    d.zero32(`${f}.padding`, a + 28, 'padding');
    entries.push(e);
  }
  if (used.size !== fds.length) d.fail('fds', P + 12, `${used.size} (the fds the sub-regions refer to)`, `${fds.length}`);
  return { argsz, flags, index, count, entries };
}

function decodeIrqInfo(d: Dec, len: number, { reply, fds }: Dir): IrqInfo {
  // "VFIO_USER_DEVICE_GET_IRQ_INFO"
  d.exact(len, IRQ_INFO_SIZE, 'the IRQ info structure');
  const argsz = d.argszAtLeast(IRQ_INFO_SIZE, 'the 16-byte reply');
  const flags = d.u32(P + 4);
  const index = d.u32(P + 8);
  const count = d.u32(P + 12);
  if (!reply) {
    d.zero32('flags', P + 4, 'all other fields must be zero');
    d.zero32('count', P + 12, 'all other fields must be zero');
  } else if ((flags & ~IRQ_INFO_FLAGS) !== 0) d.fail('flags', P + 4, 'only EVENTFD, MASKABLE, AUTOMASKED, NORESIZE (bits 0-3)', hex(flags));
  d.noFds(fds);
  return { argsz, flags, index, count };
}

function decodeSetIrqs(d: Dec, len: number, { fds }: Dir): SetIrqs {
  // "VFIO_USER_DEVICE_SET_IRQS": argsz is the size of the request payload, data included.
  d.atLeast(len, IRQ_SET_SIZE, 'the IRQ set structure');
  const argsz = d.u32(P);
  if (argsz !== len) d.fail('argsz', P, `${len} (the request payload, data included)`, `${argsz}`);
  const flags = d.u32(P + 4);
  if ((flags & ~(IRQ_SET_DATA | IRQ_SET_ACTION)) !== 0) d.fail('flags', P + 4, 'only DATA_ and ACTION_ bits (0-5)', hex(flags));
  if (popcount(flags & IRQ_SET_DATA) !== 1) d.fail('flags', P + 4, 'exactly one of DATA_NONE, DATA_BOOL, DATA_EVENTFD', hex(flags));
  if (popcount(flags & IRQ_SET_ACTION) !== 1) d.fail('flags', P + 4, 'exactly one of ACTION_MASK, ACTION_UNMASK, ACTION_TRIGGER', hex(flags));
  const index = d.u32(P + 8);
  const start = d.u32(P + 12);
  const count = d.u32(P + 16);
  const body: SetIrqs = { argsz, flags, index, start, count };
  if (flags & IRQ_SET_DATA_BOOL) {
    if (len !== IRQ_SET_SIZE + count) d.fail('count', P + 16, `${len - IRQ_SET_SIZE} (one boolean byte per interrupt in the data)`, `${count}`);
    body.data = d.take(P + IRQ_SET_SIZE, count);
    d.noFds(fds, P + 4);
  } else {
    if (len !== IRQ_SET_SIZE) d.fail('argsz', P, `${IRQ_SET_SIZE} (no data field with ${flags & IRQ_SET_DATA_NONE ? 'DATA_NONE' : 'DATA_EVENTFD'})`, `${argsz}`);
    if (flags & IRQ_SET_DATA_NONE) d.noFds(fds, P + 4);
    // DATA_EVENTFD: count eventfds, or none to de-assign.
    else if (fds.length !== 0 && fds.length !== count) d.fail('fds', P + 16, `${count} (one eventfd per interrupt) or none (de-assign)`, `${fds.length}`);
  }
  return body;
}

function decodeRegionAccess(d: Dec, len: number, { reply, fds, limits }: Dir, write: boolean): RegionAccess {
  // "VFIO_USER_REGION_READ" / "VFIO_USER_REGION_WRITE": data in the write request and the read reply.
  const withData = write !== reply;
  if (withData) d.atLeast(len, REGION_ACCESS_SIZE, 'the region access structure');
  else d.exact(len, REGION_ACCESS_SIZE, 'the region access structure');
  const offset = d.u64(P);
  const region = d.u32(P + 8);
  const count = d.u32(P + 12);
  // A read request carries no data: one asking for more than max_data_xfer_size is well formed, and refused by its receiver (an error reply, as libvfio-user gives).
  if (withData || reply) d.xfer('count', P + 12, count, limits);
  d.noFds(fds);
  if (!withData) return { offset, region, count };
  if (len !== REGION_ACCESS_SIZE + count) d.fail('count', P + 12, `${len - REGION_ACCESS_SIZE} (the data carried)`, `${count}`);
  return { offset, region, count, data: d.take(P + REGION_ACCESS_SIZE, count) };
}

function decodeDmaAccess(d: Dec, len: number, { reply, fds, limits }: Dir, write: boolean): DmaAccess {
  // "VFIO_USER_DMA_READ" / "VFIO_USER_DMA_WRITE": count is 8 bytes (the DMA_WRITE reply table says 4; libvfio-user and the other tables use 8).
  const withData = write !== reply;
  if (withData) d.atLeast(len, DMA_ACCESS_SIZE, 'the DMA access structure');
  else d.exact(len, DMA_ACCESS_SIZE, 'the DMA access structure');
  const address = d.u64(P);
  const count = d.u64(P + 8);
  if (withData || reply) d.xfer('count', P + 8, count, limits);
  d.noFds(fds);
  if (!withData) return { address, count };
  if (BigInt(len - DMA_ACCESS_SIZE) !== count) d.fail('count', P + 8, `${len - DMA_ACCESS_SIZE} (the data carried)`, `${count}`);
  return { address, count, data: d.take(P + DMA_ACCESS_SIZE, Number(count)) };
}

function decodeWriteMulti(d: Dec, len: number, { reply, fds }: Dir): RegionWriteMulti | RegionWriteMultiReply {
  // "VFIO_USER_REGION_WRITE_MULTI": wr_cnt writes of up to 8 bytes each.
  d.noFds(fds);
  if (reply) {
    d.exact(len, WRITE_MULTI_HEAD, 'wr_cnt');
    return { wrCnt: d.u64(P) };
  }
  d.atLeast(len, WRITE_MULTI_HEAD, 'wr_cnt');
  if ((len - WRITE_MULTI_HEAD) % WRITE_MULTI_ENTRY !== 0) d.fail('msg_size', 4, `${P + WRITE_MULTI_HEAD} + ${WRITE_MULTI_ENTRY} × wr_cnt`, `${P + len}`);
  const carried = (len - WRITE_MULTI_HEAD) / WRITE_MULTI_ENTRY;
  const wrCnt = d.u64(P);
  if (wrCnt !== BigInt(carried)) d.fail('wr_cnt', P, `${carried} (the writes carried)`, `${wrCnt}`);
  const writes: MultiWrite[] = [];
  for (let k = 0; k < carried; k++) {
    const a = P + WRITE_MULTI_HEAD + k * WRITE_MULTI_ENTRY;
    const count = d.u32(a + 12);
    if (count > WRITE_MULTI_DATA) d.fail(`wrs[${k}].count`, a + 12, `at most ${WRITE_MULTI_DATA} (writes of 8 bytes or less)`, `${count}`);
    writes.push({ offset: d.u64(a), region: d.u32(a + 8), count, data: d.take(a + 16, count) });
  }
  return { writes };
}

function decodeFeature(d: Dec, len: number, { reply, fds }: Dir): DeviceFeature {
  // "VFIO_USER_DEVICE_FEATURE"
  d.atLeast(len, FEATURE_SIZE, 'argsz and flags');
  d.noFds(fds);
  const argsz = d.argszAtLeast(FEATURE_SIZE, 'the 8-byte reply structure');
  const flags = d.u32(P + 4);
  if ((flags & ~(FEATURE_MASK | FEATURE_OPS)) !== 0) d.fail('flags', P + 4, 'only the feature index (bits 0-15), GET, SET and PROBE (bits 16-18)', hex(flags));
  const get = (flags & FEATURE_GET) !== 0;
  const set = (flags & FEATURE_SET) !== 0;
  const probe = (flags & FEATURE_PROBE) !== 0;
  if (!get && !set && !probe) d.fail('flags', P + 4, 'one of GET, SET, PROBE', hex(flags));
  if (get && set && !probe) d.fail('flags', P + 4, 'GET and SET together only with PROBE', hex(flags));
  const feature = flags & FEATURE_MASK;
  const n = len - FEATURE_SIZE;
  const D = P + FEATURE_SIZE;
  const dataLen = (want: number, why: string): void => {
    if (n !== want) d.fail('data', D, `${bytesOf(want)} (${why})`, bytesOf(n));
  };
  // "data ... is not used for probing"; the reply to a probe is the request.
  if (probe) dataLen(0, 'no data when probing');
  // The reply to SET or PROBE echoes the request, so argsz must admit it.
  if (!reply && (set || probe) && argsz < len) d.fail('argsz', P, `at least ${len} (the reply echoes the request)`, `${argsz}`);
  if (!probe) {
    if (feature === FEATURE_MIGRATION && get) {
      if (!reply) dataLen(0, 'MIGRATION GET has no request data');
      else {
        dataLen(8, 'MIGRATION flags');
        const mf = d.u64(D);
        if ((mf & ~MIGRATION_FLAGS) !== 0n) d.fail('flags', D, 'only STOP_COPY, P2P, PRE_COPY (bits 0-2)', hex(mf));
        if (!(mf & MIGRATION_STOP_COPY)) d.fail('flags', D, 'VFIO_MIGRATION_STOP_COPY (at least STOP_COPY must be set)', hex(mf));
      }
    } else if (feature === FEATURE_MIG_DEVICE_STATE) {
      if (get && !reply) dataLen(0, 'MIG_DEVICE_STATE GET has no request data');
      else {
        dataLen(8, 'device_state and data_fd');
        const st = d.u32(D);
        const ok = get ? MIG_STATES_GET : MIG_STATES_SET;
        if (!ok.has(st)) d.fail('device_state', D, get ? 'a vfio-user device state (0-4, 6)' : 'a state to transition to (1-4, 6; ERROR cannot be specified)', `${st}`);
      }
    } else if (feature === FEATURE_DMA_LOGGING_START && set) {
      if (n < 16) dataLen(16, 'page_size, num_ranges, reserved');
      const nr = d.u32(D + 8);
      d.zero32('reserved', D + 12, 'reserved');
      if (n !== 16 + 16 * nr) d.fail('num_ranges', D + 8, `${(n - 16) / 16} (the ranges carried)`, `${nr}`);
    } else if (feature === FEATURE_DMA_LOGGING_REPORT && get) {
      if (!reply) dataLen(24, 'iova, length, page_size');
      else if (n < 24 || (n - 24) % 8 !== 0) d.fail('data', D, '24 bytes then a bitmap of u64s', bytesOf(n));
      const ps = d.u64(D + 16);
      if (ps === 0n || (ps & (ps - 1n)) !== 0n) d.fail('page_size', D + 16, 'a power of two', hex(ps));
    }
  }
  return { argsz, flags, data: d.take(D, n) };
}

function decodeMigData(d: Dec, len: number, { reply, fds, limits }: Dir, write: boolean): MigData {
  // "VFIO_USER_MIG_DATA_READ" / "VFIO_USER_MIG_DATA_WRITE"
  d.noFds(fds);
  const withData = write !== reply;
  if (withData) d.atLeast(len, MIG_DATA_SIZE, 'argsz and size');
  else d.exact(len, MIG_DATA_SIZE, 'argsz and size');
  const argsz = d.u32(P);
  const size = d.u32(P + 4);
  if (withData || reply) d.xfer('size', P + 4, size, limits);
  if (!withData) {
    // A read request: argsz, the largest reply, must hold the structure and size bytes.
    if (argsz < MIG_DATA_SIZE + size) d.fail('argsz', P, `at least ${MIG_DATA_SIZE + size} (8 + size)`, `${argsz}`);
    return { argsz, size };
  }
  if (len !== MIG_DATA_SIZE + size) d.fail('size', P + 4, `${len - MIG_DATA_SIZE} (the data carried)`, `${size}`);
  if (reply && argsz !== len) d.fail('argsz', P, `${len} (the structure and its data)`, `${argsz}`);
  if (!reply && argsz < MIG_DATA_SIZE) d.fail('argsz', P, `at least ${MIG_DATA_SIZE}`, `${argsz}`);
  return { argsz, size, data: d.take(P + MIG_DATA_SIZE, size) };
}

function decodeEmpty(d: Dec, len: number, { fds }: Dir, what: string): null {
  d.exact(len, 0, what);
  d.noFds(fds);
  return null;
}

/** The payload of command c, as a request or a reply. */
function decodeBody(c: CommandName, d: Dec, len: number, dir: Dir): unknown {
  const r = dir.reply;
  switch (c) {
    case 'VERSION':
      return decodeVersion(d, len, r, dir.fds);
    case 'DMA_MAP':
      return r ? decodeEmpty(d, len, dir, 'no payload') : decodeDmaMap(d, len, dir);
    case 'DMA_UNMAP':
      return decodeDmaUnmap(d, len, dir);
    case 'DEVICE_GET_INFO':
      return decodeDeviceInfo(d, len, dir);
    case 'DEVICE_GET_REGION_INFO':
      return decodeRegionInfo(d, len, dir);
    case 'DEVICE_GET_REGION_IO_FDS':
      return decodeRegionIoFds(d, len, dir);
    case 'DEVICE_GET_IRQ_INFO':
      return decodeIrqInfo(d, len, dir);
    case 'DEVICE_SET_IRQS':
      return r ? decodeEmpty(d, len, dir, 'no payload') : decodeSetIrqs(d, len, dir);
    case 'REGION_READ':
      return decodeRegionAccess(d, len, dir, false);
    case 'REGION_WRITE':
      return decodeRegionAccess(d, len, dir, true);
    case 'DMA_READ':
      return decodeDmaAccess(d, len, dir, false);
    case 'DMA_WRITE':
      return decodeDmaAccess(d, len, dir, true);
    case 'DEVICE_RESET':
      return decodeEmpty(d, len, dir, 'no payload');
    case 'REGION_WRITE_MULTI':
      return decodeWriteMulti(d, len, dir);
    case 'DEVICE_FEATURE':
      return decodeFeature(d, len, dir);
    case 'MIG_DATA_READ':
      return decodeMigData(d, len, dir, false);
    case 'MIG_DATA_WRITE':
      return r ? decodeEmpty(d, len, dir, 'no payload') : decodeMigData(d, len, dir, true);
  }
}

/**
 * Decodes one whole message (bytes = exactly one message, header included)
 * with the fds that came with it. Anything the specification does not allow
 * is a ProtocolViolation.
 */
export function decodeMessage(bytes: Uint8Array, fds: readonly number[], limits: Limits = DEFAULT_LIMITS): Message {
  const b = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const d = new Dec('header', b);
  const h = headerChecks(d, b);
  if (h.size !== b.length) d.fail('msg_size', 4, `${b.length} (the bytes of the message)`, `${h.size}`);
  if (h.size > limits.maxMessage) d.fail('msg_size', 4, `at most ${limits.maxMessage}`, `${h.size}`);
  if (fds.length > limits.maxMsgFds) d.fail('fds', P, `at most ${limits.maxMsgFds} (max_msg_fds)`, `${fds.length}`);
  const command = commandName(h.command)!;
  const len = h.size - HEADER_SIZE;
  if (h.reply && h.error) {
    d.noFds(fds);
    const m = { command, id: h.id, reply: true, errno: h.errno, body: null, fds: [] } as Message & { reply: true };
    if (h.errno === 0) m.error = true;
    // "If an error occurs, the reply message must only include the reply header." A body there is a
    // departure, but msg_size still frames the stream: the refusal is read and the departure kept.
    if (len !== 0) m.departure = new ProtocolViolation(command, 'reply.body', HEADER_SIZE, 'nothing: an error reply is the header only', `${len} bytes`);
    return m;
  }
  const body = decodeBody(command, d, len, { reply: h.reply, fds, limits });
  if (h.reply) return { command, id: h.id, reply: true, errno: 0, body, fds: [...fds] } as Message;
  return { command, id: h.id, reply: false, noReply: h.noReply, body, fds: [...fds] } as Message;
}

// ---------------------------------------------------------------------------
// Encoding

function u32s(...v: number[]): Buffer {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, k) => b.writeUInt32LE(x, 4 * k));
  return b;
}
function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}
const cat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);

function encodeRegionInfo(r: RegionInfo): Buffer {
  const fixed = cat(u32s(r.argsz, r.flags, r.index, r.capOffset), u64(r.size), u64(r.offset));
  const caps: Buffer[] = [];
  // The first capability sits at cap_offset when that lies past the structure (zero padding before it).
  let at = REGION_INFO_SIZE;
  if ((r.sparse || r.type) && r.capOffset > REGION_INFO_SIZE) {
    caps.push(Buffer.alloc(r.capOffset - REGION_INFO_SIZE));
    at = r.capOffset;
  }
  // Capabilities follow the structure, in this order, each pointing at the next.
  const sparseLen = r.sparse ? SPARSE_HEAD_SIZE + SPARSE_AREA_SIZE * r.sparse.length : 0;
  if (r.sparse) {
    const h = Buffer.alloc(SPARSE_HEAD_SIZE);
    h.writeUInt16LE(CAP_SPARSE_MMAP, 0);
    h.writeUInt16LE(1, 2);
    h.writeUInt32LE(r.type ? at + sparseLen : 0, 4);
    h.writeUInt32LE(r.sparse.length, 8);
    caps.push(h, ...r.sparse.map((a) => cat(u64(a.offset), u64(a.size))));
    at += sparseLen;
  }
  if (r.type) {
    const h = Buffer.alloc(TYPE_CAP_SIZE);
    h.writeUInt16LE(CAP_TYPE, 0);
    h.writeUInt16LE(1, 2);
    h.writeUInt32LE(r.type.type, 8);
    h.writeUInt32LE(r.type.subtype, 12);
    caps.push(h);
  }
  return cat(fixed, ...caps);
}

function encodeBody(m: Message): Buffer {
  const r = m.reply;
  const body = m.body as unknown;
  switch (m.command) {
    case 'VERSION':
      return encodeVersion(body as Version);
    case 'DMA_MAP': {
      if (r) return Buffer.alloc(0);
      const b = body as DmaMap;
      return cat(u32s(DMA_MAP_SIZE, b.flags), u64(b.offset), u64(b.address), u64(b.size));
    }
    case 'DMA_UNMAP': {
      const b = body as DmaUnmap;
      return cat(u32s(b.argsz ?? DMA_UNMAP_SIZE, b.flags), u64(b.address), u64(b.size));
    }
    case 'DEVICE_GET_INFO': {
      const b = body as DeviceInfo;
      return u32s(b.argsz ?? DEVICE_INFO_SIZE, b.flags, b.numRegions, b.numIrqs);
    }
    case 'DEVICE_GET_REGION_INFO':
      return encodeRegionInfo(body as RegionInfo);
    case 'DEVICE_GET_REGION_IO_FDS': {
      const b = body as RegionIoFds;
      return cat(
        u32s(b.argsz, b.flags, b.index, b.count),
        ...b.entries.map((e) => cat(u64(e.offset), u64(e.size), u32s(e.fdIndex, e.type, e.flags, 0), u64(e.data))),
      );
    }
    case 'DEVICE_GET_IRQ_INFO': {
      const b = body as IrqInfo;
      return u32s(b.argsz, b.flags, b.index, b.count);
    }
    case 'DEVICE_SET_IRQS': {
      if (r) return Buffer.alloc(0);
      const b = body as SetIrqs;
      return cat(u32s(b.argsz, b.flags, b.index, b.start, b.count), b.data ?? new Uint8Array(0));
    }
    case 'REGION_READ':
    case 'REGION_WRITE': {
      const b = body as RegionAccess;
      return cat(u64(b.offset), u32s(b.region, b.count), b.data ?? new Uint8Array(0));
    }
    case 'DMA_READ':
    case 'DMA_WRITE': {
      const b = body as DmaAccess;
      return cat(u64(b.address), u64(b.count), b.data ?? new Uint8Array(0));
    }
    case 'DEVICE_RESET':
      return Buffer.alloc(0);
    case 'REGION_WRITE_MULTI': {
      if (r) return u64((body as RegionWriteMultiReply).wrCnt);
      const b = body as RegionWriteMulti;
      return cat(
        u64(BigInt(b.writes.length)),
        ...b.writes.map((w) => {
          if (w.data.length > WRITE_MULTI_DATA) throw new RangeError(`REGION_WRITE_MULTI write of ${w.data.length} bytes (at most ${WRITE_MULTI_DATA})`);
          const data = Buffer.alloc(WRITE_MULTI_DATA);
          data.set(w.data);
          return cat(u64(w.offset), u32s(w.region, w.count), data);
        }),
      );
    }
    case 'DEVICE_FEATURE': {
      const b = body as DeviceFeature;
      return cat(u32s(b.argsz, b.flags), b.data);
    }
    case 'MIG_DATA_READ':
    case 'MIG_DATA_WRITE': {
      if (r && m.command === 'MIG_DATA_WRITE') return Buffer.alloc(0);
      const b = body as MigData;
      return cat(u32s(b.argsz, b.size), b.data ?? new Uint8Array(0));
    }
  }
}

/** Commands whose reply carries no payload: a reply with body null is then a success. */
const EMPTY_REPLY = new Set<CommandName>(['DMA_MAP', 'DEVICE_SET_IRQS', 'DEVICE_RESET', 'MIG_DATA_WRITE']);

/** Encodes a message (request or reply; an error reply has body null and errno set: header only). Little-endian. Header size field = total bytes. */
export function encodeMessage(m: Message): Buffer {
  let flags: number;
  let errno = 0;
  let body: Buffer;
  if (m.reply) {
    const isError = m.errno !== 0 || m.error === true;
    if (isError && m.body !== null) throw new TypeError(`${m.command} error reply with a body (an error reply is the header only)`);
    if (!isError && m.body === null && !EMPTY_REPLY.has(m.command)) throw new TypeError(`${m.command} reply without a body needs errno or error`);
    flags = FLAG_TYPE_REPLY | (isError ? FLAG_ERROR : 0);
    errno = m.errno;
    body = isError || m.body === null ? Buffer.alloc(0) : encodeBody(m);
  } else {
    if (m.body === null && m.command !== 'DEVICE_RESET') throw new TypeError(`${(m as Message).command} request without a body`);
    flags = FLAG_TYPE_COMMAND | (m.noReply ? FLAG_NO_REPLY : 0);
    body = encodeBody(m);
  }
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt16LE(m.id, 0);
  h.writeUInt16LE(COMMANDS[m.command], 2);
  h.writeUInt32LE(HEADER_SIZE + body.length, 4);
  h.writeUInt32LE(flags, 8);
  h.writeUInt32LE(errno, 12);
  return Buffer.concat([h, body]);
}

// ---------------------------------------------------------------------------
// Framing

/**
 * Splits a byte stream into whole messages. Chunks are pushed with the fds
 * that arrived with them; a chunk's fds belong to the last message that
 * starts in that chunk (none starting there: the next one to start). That
 * is where an AF_UNIX stream socket puts them: one recvmsg(2) may return
 * several sendmsg(2)s glued together, but it stops right after the one
 * that carried fds, so with one message per sendmsg (QEMU, libvfio-user,
 * isoroot) the fds came with the chunk's last message (QEMU pipelines a
 * DMA_UNMAP and the DMA_MAP that carries a memfd). The size field of every header is
 * checked as soon as it arrives: a size below 16 or above limits.maxMessage
 * stops the reader there (nothing after it is buffered; fds after it are
 * dropped, to be closed by the owner of the stream), and next() throws the
 * violation once the messages before it are taken.
 */
export class FrameReader {
  private buf = Buffer.alloc(256);
  private start = 0; // first buffered byte in buf
  private end = 0; // one past the last buffered byte in buf
  private pos = 0; // stream offset of buf[start]
  private scan = 0; // stream offset of the next header whose size is unchecked
  private scanned = -1; // stream offset of the last header whose size was checked
  private fdq: { at: number; fds: number[] }[] = [];
  private failure: { at: number; v: ProtocolViolation } | null = null;

  /** The limits in force; raise them after VERSION negotiation (negotiatedLimits). */
  constructor(public limits: Limits = DEFAULT_LIMITS) {}

  /** Bytes held, not yet returned by next(). */
  get buffered(): number {
    return this.end - this.start;
  }

  push(chunk: Uint8Array, fds: readonly number[] = []): void {
    if (this.failure) return;
    const streamEnd = this.pos + this.buffered;
    if (chunk.length === 0) {
      if (fds.length) this.fdq.push({ at: streamEnd, fds: [...fds] });
      return;
    }
    if (this.end + chunk.length > this.buf.length) {
      const need = this.buffered + chunk.length;
      const next = need > this.buf.length / 2 ? Buffer.alloc(Math.max(need * 2, 256)) : this.buf;
      this.buf.copy(next, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      this.buf = next;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
    this.checkSizes();
    if (fds.length) {
      // The last message start among the bytes now held: the next header if any of it is here, else the one before.
      const last = this.scan < this.pos + this.buffered ? this.scan : this.scanned;
      this.fdq.push({ at: Math.max(last, streamEnd), fds: [...fds] });
    }
  }

  /** Checks the size field of each header as it becomes visible. */
  private checkSizes(): void {
    const streamEnd = this.pos + this.buffered;
    while (this.scan + 8 <= streamEnd) {
      const size = this.buf.readUInt32LE(this.start + (this.scan - this.pos) + 4);
      if (size < HEADER_SIZE || size > this.limits.maxMessage) {
        const v = new ProtocolViolation('header', 'msg_size', 4, size < HEADER_SIZE ? `at least ${HEADER_SIZE} (the header is included)` : `at most ${this.limits.maxMessage}`, `${size}`);
        v.message += ` (message at stream offset ${this.scan})`;
        this.failure = { at: this.scan, v };
        this.end = this.start + (this.scan - this.pos); // drop the broken message and all after it
        return;
      }
      this.scanned = this.scan;
      this.scan += size;
    }
  }

  next(): { bytes: Buffer; fds: number[] } | null {
    const avail = this.buffered;
    if (this.failure && this.pos === this.failure.at) throw this.failure.v;
    if (avail < 8) return null;
    const size = this.buf.readUInt32LE(this.start + 4);
    if (avail < size) return null;
    const bytes = Buffer.from(this.buf.subarray(this.start, this.start + size));
    const fds: number[] = [];
    while (this.fdq.length && this.fdq[0].at <= this.pos) fds.push(...this.fdq.shift()!.fds);
    this.start += size;
    this.pos += size;
    if (this.start === this.end) this.start = this.end = 0;
    return { bytes, fds };
  }
}

// ---------------------------------------------------------------------------
// Negotiation and summaries

/** The limits after VERSION negotiation: min of ours and theirs per the specification, defaults where absent. */
export function negotiatedLimits(ours: VersionCaps, theirs: VersionCaps): Limits {
  // "Version": max_msg_fds defaults to 1, max_data_xfer_size to 1048576.
  const fds = Math.min(ours.maxMsgFds ?? 1, theirs.maxMsgFds ?? 1);
  const xfer = Math.min(ours.maxDataXferSize ?? 1 << 20, theirs.maxDataXferSize ?? 1 << 20);
  // Messages other than data transfers (capabilities, bitmaps, JSON) keep the default room.
  return { maxMsgFds: fds, maxDataXferSize: xfer, maxMessage: Math.max(xfer, 1 << 20) + 4096 };
}

/** Linux errno names, for summaries. */
const ERRNO: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 4: 'EINTR', 5: 'EIO', 6: 'ENXIO', 7: 'E2BIG', 8: 'ENOEXEC', 9: 'EBADF', 10: 'ECHILD',
  11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT', 16: 'EBUSY', 17: 'EEXIST', 18: 'EXDEV', 19: 'ENODEV', 20: 'ENOTDIR',
  21: 'EISDIR', 22: 'EINVAL', 23: 'ENFILE', 24: 'EMFILE', 25: 'ENOTTY', 27: 'EFBIG', 28: 'ENOSPC', 29: 'ESPIPE', 30: 'EROFS',
  32: 'EPIPE', 33: 'EDOM', 34: 'ERANGE', 35: 'EDEADLK', 36: 'ENAMETOOLONG', 38: 'ENOSYS', 61: 'ENODATA', 71: 'EPROTO',
  74: 'EBADMSG', 75: 'EOVERFLOW', 95: 'EOPNOTSUPP', 104: 'ECONNRESET', 110: 'ETIMEDOUT', 125: 'ECANCELED',
};
const errnoName = (e: number): string => `${ERRNO[e] ?? 'errno'}(${e})`;

/** Data as a little-endian value when it fits 8 bytes, else its first bytes in hex. */
function dataStr(data: Uint8Array | undefined): string {
  if (!data || data.length === 0) return '';
  if (data.length <= 8) {
    let v = 0n;
    for (let k = data.length - 1; k >= 0; k--) v = (v << 8n) | BigInt(data[k]);
    return ` 0x${v.toString(16).padStart(data.length * 2, '0')}`;
  }
  return ` ${Buffer.from(data.subarray(0, 16)).toString('hex')}${data.length > 16 ? '…' : ''}`;
}

const capsStr = (c: VersionCaps): string => {
  const p: string[] = [];
  if (c.maxMsgFds !== undefined) p.push(`max_msg_fds ${c.maxMsgFds}`);
  if (c.maxDataXferSize !== undefined) p.push(`max_data_xfer_size ${c.maxDataXferSize}`);
  if (c.pgsizes !== undefined) p.push(`pgsizes ${hex(c.pgsizes)}`);
  if (c.maxDmaMaps !== undefined) p.push(`max_dma_maps ${c.maxDmaMaps}`);
  if (c.migration) p.push(`migration pgsize ${hex(c.migration.pgsize)}`);
  if (c.twinSocket) p.push(`twin_socket ${c.twinSocket.supported}${c.twinSocket.fdIndex !== undefined ? ` fd ${c.twinSocket.fdIndex}` : ''}`);
  if (c.writeMultiple !== undefined) p.push(`write_multiple ${c.writeMultiple}`);
  if (c.other) p.push(...Object.keys(c.other));
  return p.length ? ` ${p.join(', ')}` : '';
};

function bodyStr(m: Message): string {
  const b = m.body as unknown;
  if (b === null) return '';
  const r = m.reply;
  switch (m.command) {
    case 'VERSION': {
      const v = b as Version;
      return ` ${v.major}.${v.minor}${capsStr(v.caps)}`;
    }
    case 'DMA_MAP': {
      const x = b as DmaMap;
      const rw = `${x.flags & DMA_READ_FLAG ? 'R' : ''}${x.flags & DMA_WRITE_FLAG ? 'W' : ''}` || '-';
      return ` address ${hex(x.address)} size ${hex(x.size)} ${rw}${m.fds.length ? ` fd offset ${hex(x.offset)}` : ''}`;
    }
    case 'DMA_UNMAP': {
      const x = b as DmaUnmap;
      return x.flags & DMA_UNMAP_ALL ? ' all' : ` address ${hex(x.address)} size ${hex(x.size)}`;
    }
    case 'DEVICE_GET_INFO': {
      const x = b as DeviceInfo;
      return r ? ` flags ${hex(x.flags)} regions ${x.numRegions} irqs ${x.numIrqs}` : '';
    }
    case 'DEVICE_GET_REGION_INFO': {
      const x = b as RegionInfo;
      if (!r) return ` region ${x.index}`;
      return ` region ${x.index} size ${hex(x.size)} offset ${hex(x.offset)} flags ${hex(x.flags)}${x.sparse ? ` sparse ${x.sparse.length}` : ''}${x.type ? ` type ${x.type.type}:${x.type.subtype}` : ''}`;
    }
    case 'DEVICE_GET_REGION_IO_FDS': {
      const x = b as RegionIoFds;
      return r ? ` region ${x.index} count ${x.count}` : ` region ${x.index}`;
    }
    case 'DEVICE_GET_IRQ_INFO': {
      const x = b as IrqInfo;
      return r ? ` irq ${x.index} count ${x.count} flags ${hex(x.flags)}` : ` irq ${x.index}`;
    }
    case 'DEVICE_SET_IRQS': {
      const x = b as SetIrqs;
      const data = x.flags & IRQ_SET_DATA_BOOL ? 'BOOL' : x.flags & IRQ_SET_DATA_EVENTFD ? 'EVENTFD' : 'NONE';
      const action = x.flags & IRQ_SET_ACTION_MASK ? 'MASK' : x.flags & IRQ_SET_ACTION_UNMASK ? 'UNMASK' : 'TRIGGER';
      return ` irq ${x.index} start ${x.start} count ${x.count} ${data}|${action}`;
    }
    case 'REGION_READ':
    case 'REGION_WRITE': {
      const x = b as RegionAccess;
      if (r && m.command === 'REGION_READ') return ` ${bytesOf(x.count)}${dataStr(x.data)}`;
      return ` region ${x.region} offset ${hex(x.offset)} count ${x.count}${dataStr(x.data)}`;
    }
    case 'DMA_READ':
    case 'DMA_WRITE': {
      const x = b as DmaAccess;
      if (r && m.command === 'DMA_READ') return ` ${bytesOf(Number(x.count))}${dataStr(x.data)}`;
      return ` address ${hex(x.address)} count ${x.count}${dataStr(x.data)}`;
    }
    case 'DEVICE_RESET':
      return '';
    case 'REGION_WRITE_MULTI':
      return r ? ` ${(b as RegionWriteMultiReply).wrCnt} writes` : ` ${(b as RegionWriteMulti).writes.length} writes`;
    case 'DEVICE_FEATURE': {
      const x = b as DeviceFeature;
      const ops = [x.flags & FEATURE_GET && 'GET', x.flags & FEATURE_SET && 'SET', x.flags & FEATURE_PROBE && 'PROBE'].filter(Boolean).join('|');
      return ` feature ${x.flags & FEATURE_MASK} ${ops || '-'}${x.data.length ? ` ${bytesOf(x.data.length)}` : ''}`;
    }
    case 'MIG_DATA_READ':
    case 'MIG_DATA_WRITE': {
      const x = b as MigData;
      return ` size ${x.size}${x.data ? ` ${bytesOf(x.data.length)}` : ''}`;
    }
  }
}

/** One-line human summary of a message for logs and reports. */
export function describeMessage(m: Message): string {
  const head = `#${m.id} ${m.reply ? 'reply ' : ''}${m.command}`;
  if (m.reply && (m.errno !== 0 || m.error)) return `${head} error ${errnoName(m.errno)}`;
  const tail = (!m.reply && m.noReply ? ' (no reply)' : '') + (m.fds.length ? ` +${m.fds.length} fd${m.fds.length === 1 ? '' : 's'}` : '');
  return `${head}${bodyStr(m)}${tail}`;
}

