/**
 * VERSION ("VFIO_USER_VERSION"): major, minor, and NUL-terminated UTF-8 JSON capabilities.
 */
import { type Version, type VersionCaps } from './messages.ts';
import { Dec, hex } from './fields.ts';
import { INTEGER, type JNode, JsonError, parseJson, plain, put, toJson } from './json.ts';
import { P, U64_MAX, VERSION_SIZE } from './layout.ts';
import { badUtf8 } from './utf8.ts';

const KNOWN_CAPS = ['max_msg_fds', 'max_data_xfer_size', 'pgsizes', 'max_dma_maps', 'migration', 'twin_socket', 'write_multiple'];

export function decodeVersion(d: Dec, len: number, reply: boolean, fds: readonly number[]): Version {
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

export function encodeVersion(v: Version): Buffer {
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
