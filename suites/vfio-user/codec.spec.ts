/**
 * The vfio-user codec against QEMU's docs/interop/vfio-user.rst: round trips
 * for every command both ways, golden bytes laid out by hand from the
 * specification's tables, one malformed message per rule (field name and
 * byte offset exact), framing of a byte stream with its fds, and fuzzing.
 */
import { test, expect } from '@playwright/test';
import fc from 'fast-check';
import { decodeMessage, encodeMessage } from '../../harness/protocol/vfio-user/codec.ts';
import { describeMessage } from '../../harness/protocol/vfio-user/describe.ts';
import { FrameReader } from '../../harness/protocol/vfio-user/framing.ts';
import { decodeHeader } from '../../harness/protocol/vfio-user/header.ts';
import { negotiatedLimits } from '../../harness/protocol/vfio-user/limits.ts';
import {
  COMMANDS,
  COMMAND_NAMES,
  DEFAULT_LIMITS,
  DEVICE_FLAG_PCI,
  DEVICE_FLAG_RESET,
  DMA_UNMAP_ALL,
  FEATURE_DMA_LOGGING_REPORT,
  FEATURE_DMA_LOGGING_START,
  FEATURE_DMA_LOGGING_STOP,
  FEATURE_GET,
  FEATURE_MIGRATION,
  FEATURE_MIG_DEVICE_STATE,
  FEATURE_PROBE,
  FEATURE_SET,
  IOREGIONFD_FLAG_POSTED_WRITES,
  IRQ_SET_ACTION_MASK,
  IRQ_SET_ACTION_TRIGGER,
  IRQ_SET_ACTION_UNMASK,
  IRQ_SET_DATA_BOOL,
  IRQ_SET_DATA_EVENTFD,
  IRQ_SET_DATA_NONE,
  ProtocolViolation,
  REGION_FLAG_CAPS,
  REGION_FLAG_MMAP,
  type CommandName,
  type IoFdEntry,
  type Limits,
  type Message,
  type RegionInfo,
  type VersionCaps,
} from '../../harness/protocol/vfio-user/messages.ts';

const U64_MAX = (1n << 64n) - 1n;
/** Room for the many-fd messages (IO_FDS replies, SET_IRQS eventfds). */
const WIDE: Limits = { ...DEFAULT_LIMITS, maxMsgFds: 16 };
const RUNS = { numRuns: 150, seed: 0x5eed };

// ---------------------------------------------------------------------------
// Arbitraries: valid messages of every command, as request and as reply.

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: U64_MAX });
const fd = fc.integer({ min: 3, max: 1000 });
const fdsOf = (n: number): fc.Arbitrary<number[]> => fc.array(fd, { minLength: n, maxLength: n });

const KNOWN = new Set(['max_msg_fds', 'max_data_xfer_size', 'pgsizes', 'max_dma_maps', 'migration', 'twin_socket', 'write_multiple', 'capabilities', '__proto__']);
const jsonKey = fc.string({ unit: 'binary', maxLength: 8 }).filter((k) => !KNOWN.has(k));
const jsonLeaf = fc.oneof(fc.integer({ min: -1e9, max: 1e9 }), fc.string({ unit: 'binary', maxLength: 6 }), fc.boolean(), fc.constant(null), fc.bigInt({ min: 1n << 60n, max: 1n << 70n }));
const { json } = fc.letrec<{ json: unknown }>((tie) => ({
  json: fc.oneof({ depthSize: 'small', withCrossShrink: true }, jsonLeaf, fc.array(tie('json'), { maxLength: 3 }), fc.dictionary(jsonKey, tie('json'), { maxKeys: 3 })),
}));
const otherJson = fc.dictionary(jsonKey, json, { minKeys: 1, maxKeys: 3 });

const caps = (reply: boolean): fc.Arbitrary<{ caps: VersionCaps; fds: number[] }> =>
  fc
    .record(
      {
        maxMsgFds: fc.integer({ min: 0, max: 253 }),
        maxDataXferSize: fc.integer({ min: 0, max: 2 ** 40 }),
        pgsizes: u64,
        maxDmaMaps: fc.nat(),
        migration: fc.record({ pgsize: u64, maxBitmapSize: fc.nat() }, { requiredKeys: ['pgsize'] }),
        twinSocket: fc.boolean(),
        writeMultiple: fc.boolean(),
        other: otherJson,
      },
      { requiredKeys: [] },
    )
    .chain(({ twinSocket, ...c }) => {
      if (twinSocket === undefined) return fc.constant({ caps: c as VersionCaps, fds: [] as number[] });
      // "fd_index ... Optional, only valid in the reply message"; supported true in a reply comes with the fd.
      if (!reply) return fc.boolean().map((supported) => ({ caps: { ...c, twinSocket: { supported } } as VersionCaps, fds: [] as number[] }));
      return fc.oneof(
        fc.constant({ caps: { ...c, twinSocket: { supported: false } } as VersionCaps, fds: [] as number[] }),
        fd.map((f) => ({ caps: { ...c, twinSocket: { supported: true, fdIndex: 0 } } as VersionCaps, fds: [f] })),
      );
    });

type Gen = fc.Arbitrary<Message>;
const req = <C extends CommandName>(command: C, body: fc.Arbitrary<unknown>, fds: fc.Arbitrary<number[]> = fc.constant([])): Gen =>
  fc.record({ id: u16, noReply: fc.boolean(), body, fds }).map((r) => ({ command, reply: false, ...r }) as Message);
const rep = <C extends CommandName>(command: C, body: fc.Arbitrary<unknown>, fds: fc.Arbitrary<number[]> = fc.constant([])): Gen =>
  fc.record({ id: u16, body, fds }).map((r) => ({ command, reply: true, errno: 0, ...r }) as Message);
/** A request or reply whose fds come with its body. */
const withFds = <C extends CommandName>(command: C, reply: boolean, a: fc.Arbitrary<{ body: unknown; fds: number[] }>): Gen =>
  fc.record({ id: u16, noReply: fc.boolean(), x: a }).map(({ id, noReply, x }) => (reply ? { command, id, reply, errno: 0, body: x.body, fds: x.fds } : { command, id, reply, noReply, body: x.body, fds: x.fds }) as Message);

const version = (reply: boolean): Gen =>
  withFds(
    'VERSION',
    reply,
    fc.record({ major: u16, minor: u16, c: caps(reply), other: fc.option(otherJson, { nil: undefined }) }).map(({ major, minor, c, other }) => ({
      body: other === undefined ? { major, minor, caps: c.caps } : { major, minor, caps: c.caps, other },
      fds: c.fds,
    })),
  );

const dmaMap = withFds(
  'DMA_MAP',
  false,
  fc.record({ flags: fc.integer({ min: 0, max: 3 }), address: u64, size: u64, mappable: fc.boolean(), offset: u64, f: fd }).map(({ flags, address, size, mappable, offset, f }) => ({
    body: { flags, offset: mappable ? offset : 0n, address, size: address + size > U64_MAX + 1n ? U64_MAX + 1n - address : size },
    fds: mappable ? [f] : [],
  })),
);

const dmaUnmap = fc.oneof(
  fc.record({ flags: fc.constant(0), address: u64, size: u64 }),
  fc.record({ flags: fc.constant(DMA_UNMAP_ALL), address: fc.constant(0n), size: fc.constant(0n) }),
).chain((b) => fc.option(fc.integer({ min: 25, max: 0xffffffff }), { nil: undefined }).map((argsz) => (argsz === undefined ? b : { argsz, ...b })));

const argszFrom = (min: number) => fc.oneof(fc.constant(min), fc.integer({ min, max: 0xffffffff }));
const deviceInfoReq = argszFrom(16).map((argsz) => (argsz === 16 ? { flags: 0, numRegions: 0, numIrqs: 0 } : { argsz, flags: 0, numRegions: 0, numIrqs: 0 }));
const deviceInfoRep = fc
  .record({ argsz: argszFrom(16), reset: fc.boolean(), numRegions: fc.integer({ min: 9, max: 0xffffffff }), numIrqs: u32 })
  .map(({ argsz, reset, numRegions, numIrqs }) => {
    const b = { flags: DEVICE_FLAG_PCI | (reset ? DEVICE_FLAG_RESET : 0), numRegions, numIrqs };
    return argsz === 16 ? b : { argsz, ...b };
  });

const regionInfoReq = fc.record({ argsz: argszFrom(32), index: u32 }).map(({ argsz, index }) => ({ argsz, flags: 0, index, capOffset: 0, size: 0n, offset: 0n }));
const regionInfoRep = fc.oneof(
  // The structure alone; MMAP comes with the fd.
  fc.record({ flags: fc.integer({ min: 0, max: 7 }), index: u32, size: u64, offset: u64, f: fd }).map(({ f, ...r }) => ({ body: { argsz: 32, capOffset: 0, ...r }, fds: r.flags & REGION_FLAG_MMAP ? [f] : [] })),
  // Truncated: argsz says what the full reply would take ("Message sizes").
  fc.record({ argsz: fc.integer({ min: 33, max: 0xffffffff }), flags: fc.integer({ min: 0, max: 15 }), index: u32, size: u64, offset: u64, f: fd, sendFd: fc.boolean() }).map(({ f, sendFd, ...r }) => ({
    body: { capOffset: 0, ...r },
    fds: r.flags & REGION_FLAG_MMAP && sendFd ? [f] : [],
  })),
  // With capabilities: sparse mmap (MMAP) and/or region type, the chain right after the structure.
  fc
    .record({
      rw: fc.integer({ min: 0, max: 3 }),
      index: u32,
      size: fc.bigInt({ min: 1n, max: U64_MAX }),
      offset: u64,
      areas: fc.option(fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })), { maxLength: 4 }), { nil: undefined }),
      type: fc.option(fc.record({ type: u32, subtype: u32 }), { nil: undefined }),
      mmap: fc.boolean(),
      f: fd,
    })
    .filter((r) => r.areas !== undefined || r.type !== undefined)
    .map(({ rw, index, size, offset, areas, type, mmap, f }) => {
      const sparse = areas?.map(([a, b]) => {
        const o = (size * BigInt(Math.floor(a * 1e6))) / 1000000n;
        return { offset: o, size: ((size - o) * BigInt(Math.floor(b * 1e6))) / 1000000n };
      });
      const isMmap = mmap || sparse !== undefined;
      const capLen = (sparse ? 16 + 16 * sparse.length : 0) + (type ? 16 : 0);
      const body: RegionInfo = { argsz: 32 + capLen, flags: rw | REGION_FLAG_CAPS | (isMmap ? REGION_FLAG_MMAP : 0), index, capOffset: 32, size, offset };
      if (sparse) body.sparse = sparse;
      if (type) body.type = type;
      return { body, fds: isMmap ? [f] : [] };
    }),
);

const ioEntry = (fdCount: number): fc.Arbitrary<IoFdEntry> =>
  fc.oneof(
    fc.record({ offset: u64, size: u64, fdIndex: fc.integer({ min: 0, max: fdCount - 1 }), type: fc.constant(0), flags: fc.constantFrom(0, 1, 2, 3, 8, 9, 11), data: u64 }),
    fc.record({ offset: u64, size: u64, fdIndex: fc.integer({ min: 0, max: fdCount - 1 }), type: fc.constant(1), flags: fc.constantFrom(0, 1, 2, 3), data: u64 }).map((e) => (e.size === 0n ? { ...e, flags: e.flags | IOREGIONFD_FLAG_POSTED_WRITES } : e)),
  );
const ioFdsReq = fc.record({ argsz: argszFrom(16), index: u32 }).map(({ argsz, index }) => ({ argsz, flags: 0, index, count: 0, entries: [] }));
const ioFdsRep = fc.oneof(
  fc.integer({ min: 1, max: 4 }).chain((nfds) =>
    fc.record({ index: u32, entries: fc.array(ioEntry(nfds), { minLength: nfds, maxLength: 6 }), fds: fdsOf(nfds) }).map(({ index, entries, fds }) => {
      // Every fd sent is referred to by some sub-region.
      const es = entries.map((e, k) => (k < nfds ? { ...e, fdIndex: k } : e));
      return { body: { argsz: 16 + 40 * es.length, flags: 0, index, count: es.length, entries: es }, fds };
    }),
  ),
  fc.record({ index: u32 }).map(({ index }) => ({ body: { argsz: 16, flags: 0, index, count: 0, entries: [] }, fds: [] })),
  fc.record({ index: u32, count: fc.integer({ min: 1, max: 1000 }) }).map(({ index, count }) => ({ body: { argsz: 16 + 40 * count, flags: 0, index, count, entries: [] }, fds: [] })),
);

const irqInfoReq = fc.record({ argsz: argszFrom(16), index: u32 }).map(({ argsz, index }) => ({ argsz, flags: 0, index, count: 0 }));
const irqInfoRep = fc.record({ argsz: argszFrom(16), flags: fc.integer({ min: 0, max: 15 }), index: u32, count: u32 });

const action = fc.constantFrom(IRQ_SET_ACTION_MASK, IRQ_SET_ACTION_UNMASK, IRQ_SET_ACTION_TRIGGER);
const setIrqs = fc.oneof(
  fc.record({ action, index: u32, start: u32, count: u32 }).map(({ action: a, ...r }) => ({ body: { argsz: 20, flags: IRQ_SET_DATA_NONE | a, ...r }, fds: [] as number[] })),
  fc.record({ action, index: u32, start: u32, data: fc.uint8Array({ maxLength: 40 }) }).map(({ action: a, data, ...r }) => ({ body: { argsz: 20 + data.length, flags: IRQ_SET_DATA_BOOL | a, ...r, count: data.length, data }, fds: [] as number[] })),
  fc.record({ action, index: u32, start: u32, fds: fc.array(fd, { minLength: 1, maxLength: 16 }), deassign: fc.boolean() }).map(({ action: a, fds, deassign, ...r }) => ({
    body: { argsz: 20, flags: IRQ_SET_DATA_EVENTFD | a, ...r, count: fds.length },
    fds: deassign ? [] : fds,
  })),
);

const regionAccess = (data: boolean) =>
  fc.record({ offset: u64, region: u32, data: fc.uint8Array({ maxLength: 64 }) }).map(({ offset, region, data: d }) => (data ? { offset, region, count: d.length, data: d } : { offset, region, count: d.length }));
const dmaAccess = (data: boolean) =>
  fc.record({ address: u64, data: fc.uint8Array({ maxLength: 64 }) }).map(({ address, data: d }) => (data ? { address, count: BigInt(d.length), data: d } : { address, count: BigInt(d.length) }));

const writeMulti = fc
  .array(fc.record({ offset: u64, region: u32, data: fc.uint8Array({ maxLength: 8 }) }), { maxLength: 6 })
  .map((ws) => ({ writes: ws.map((w) => ({ ...w, count: w.data.length })) }));

const u64le = (v: bigint): Uint8Array => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return new Uint8Array(b);
};
const u32le = (...v: number[]): Uint8Array => {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, k) => b.writeUInt32LE(x, 4 * k));
  return new Uint8Array(b);
};
const join = (...p: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(p));

/** DEVICE_FEATURE: features the codec knows, with their data, and others with any data; requests and replies share these. */
const featureBoth = [
  fc.record({ feature: fc.integer({ min: 9, max: 0xffff }), data: fc.uint8Array({ maxLength: 32 }), slack: fc.nat(100) }).map(({ feature, data, slack }) => ({ argsz: 8 + data.length + slack, flags: feature | FEATURE_SET, data })),
  fc.record({ feature: fc.integer({ min: 9, max: 0xffff }), data: fc.uint8Array({ maxLength: 32 }), argsz: argszFrom(8) }).map(({ feature, data, argsz }) => ({ argsz, flags: feature | FEATURE_GET, data })),
  fc.record({ feature: fc.integer({ min: 0, max: 0xffff }), ops: fc.constantFrom(0, FEATURE_GET, FEATURE_SET, FEATURE_GET | FEATURE_SET), argsz: argszFrom(8) }).map(({ feature, ops, argsz }) => ({ argsz, flags: feature | ops | FEATURE_PROBE, data: new Uint8Array(0) })),
  fc.record({ st: fc.constantFrom(1, 2, 3, 4, 6), dataFd: u32 }).map(({ st, dataFd }) => ({ argsz: 16, flags: FEATURE_MIG_DEVICE_STATE | FEATURE_SET, data: u32le(st, dataFd) })),
  fc.record({ pageSize: u64, ranges: fc.array(fc.tuple(u64, u64), { maxLength: 3 }) }).map(({ pageSize, ranges }) => ({
    argsz: 8 + 16 + 16 * ranges.length,
    flags: FEATURE_DMA_LOGGING_START | FEATURE_SET,
    data: join(u64le(pageSize), u32le(ranges.length, 0), ...ranges.flatMap(([a, l]) => [u64le(a), u64le(l)])),
  })),
  fc.constant({ argsz: 8, flags: FEATURE_DMA_LOGGING_STOP | FEATURE_SET, data: new Uint8Array(0) }),
];
const featureReq = fc.oneof(
  ...featureBoth,
  // GETs whose request carries no data, or the range to report.
  argszFrom(8).map((argsz) => ({ argsz, flags: FEATURE_MIGRATION | FEATURE_GET, data: new Uint8Array(0) })),
  argszFrom(8).map((argsz) => ({ argsz, flags: FEATURE_MIG_DEVICE_STATE | FEATURE_GET, data: new Uint8Array(0) })),
  fc.record({ iova: u64, length: u64, shift: fc.integer({ min: 0, max: 63 }) }).map(({ iova, length, shift }) => ({
    argsz: 4096,
    flags: FEATURE_DMA_LOGGING_REPORT | FEATURE_GET,
    data: join(u64le(iova), u64le(length), u64le(1n << BigInt(shift))),
  })),
);
const featureRep = fc.oneof(
  ...featureBoth,
  fc.bigInt({ min: 0n, max: 7n }).map((f) => ({ argsz: 16, flags: FEATURE_MIGRATION | FEATURE_GET, data: u64le(f | 1n) })),
  fc.record({ st: fc.constantFrom(0, 1, 2, 3, 4, 6), dataFd: u32 }).map(({ st, dataFd }) => ({ argsz: 16, flags: FEATURE_MIG_DEVICE_STATE | FEATURE_GET, data: u32le(st, dataFd) })),
  fc.record({ iova: u64, length: u64, shift: fc.integer({ min: 0, max: 63 }), bitmap: fc.array(u64, { maxLength: 4 }) }).map(({ iova, length, shift, bitmap }) => ({
    argsz: 8 + 24 + 8 * bitmap.length,
    flags: FEATURE_DMA_LOGGING_REPORT | FEATURE_GET,
    data: join(u64le(iova), u64le(length), u64le(1n << BigInt(shift)), ...bitmap.map(u64le)),
  })),
);

const migReadReq = fc.record({ size: fc.integer({ min: 0, max: 1 << 20 }), slack: fc.nat(1000) }).map(({ size, slack }) => ({ argsz: 8 + size + slack, size }));
const migWithData = (exactArgsz: boolean) =>
  fc.record({ data: fc.uint8Array({ maxLength: 64 }), slack: fc.nat(1000) }).map(({ data, slack }) => ({ argsz: 8 + data.length + (exactArgsz ? 0 : slack), size: data.length, data }));

/** Every command, request and reply. */
const VALID: Record<CommandName, { request: Gen; reply: Gen }> = {
  VERSION: { request: version(false), reply: version(true) },
  DMA_MAP: { request: dmaMap, reply: rep('DMA_MAP', fc.constant(null)) },
  DMA_UNMAP: { request: req('DMA_UNMAP', dmaUnmap), reply: rep('DMA_UNMAP', dmaUnmap) },
  DEVICE_GET_INFO: { request: req('DEVICE_GET_INFO', deviceInfoReq), reply: rep('DEVICE_GET_INFO', deviceInfoRep) },
  DEVICE_GET_REGION_INFO: { request: req('DEVICE_GET_REGION_INFO', regionInfoReq), reply: withFds('DEVICE_GET_REGION_INFO', true, regionInfoRep) },
  DEVICE_GET_REGION_IO_FDS: { request: req('DEVICE_GET_REGION_IO_FDS', ioFdsReq), reply: withFds('DEVICE_GET_REGION_IO_FDS', true, ioFdsRep) },
  DEVICE_GET_IRQ_INFO: { request: req('DEVICE_GET_IRQ_INFO', irqInfoReq), reply: rep('DEVICE_GET_IRQ_INFO', irqInfoRep) },
  DEVICE_SET_IRQS: { request: withFds('DEVICE_SET_IRQS', false, setIrqs), reply: rep('DEVICE_SET_IRQS', fc.constant(null)) },
  REGION_READ: { request: req('REGION_READ', regionAccess(false)), reply: rep('REGION_READ', regionAccess(true)) },
  REGION_WRITE: { request: req('REGION_WRITE', regionAccess(true)), reply: rep('REGION_WRITE', regionAccess(false)) },
  DMA_READ: { request: req('DMA_READ', dmaAccess(false)), reply: rep('DMA_READ', dmaAccess(true)) },
  DMA_WRITE: { request: req('DMA_WRITE', dmaAccess(true)), reply: rep('DMA_WRITE', dmaAccess(false)) },
  DEVICE_RESET: { request: req('DEVICE_RESET', fc.constant(null)), reply: rep('DEVICE_RESET', fc.constant(null)) },
  REGION_WRITE_MULTI: { request: req('REGION_WRITE_MULTI', writeMulti), reply: rep('REGION_WRITE_MULTI', u64.map((wrCnt) => ({ wrCnt }))) },
  DEVICE_FEATURE: { request: req('DEVICE_FEATURE', featureReq), reply: rep('DEVICE_FEATURE', featureRep) },
  MIG_DATA_READ: { request: req('MIG_DATA_READ', migReadReq), reply: rep('MIG_DATA_READ', migWithData(true)) },
  MIG_DATA_WRITE: { request: req('MIG_DATA_WRITE', migWithData(false)), reply: rep('MIG_DATA_WRITE', fc.constant(null)) },
};

/** Error replies: errno set (or the Error flag with errno 0), no body. */
const errorReply = (command: CommandName): Gen =>
  fc.record({ id: u16, errno: u32 }).map(({ id, errno }) => (errno === 0 ? { command, id, reply: true, errno, error: true, body: null, fds: [] } : { command, id, reply: true, errno, body: null, fds: [] }) as Message);

const anyValid: Gen = fc.oneof(...COMMAND_NAMES.flatMap((c) => [VALID[c].request, VALID[c].reply, errorReply(c)]));

// ---------------------------------------------------------------------------
// (a) Round trips

test.describe('round trips', () => {
  for (const c of COMMAND_NAMES) {
    for (const kind of ['request', 'reply', 'error reply'] as const) {
      test(`${c} ${kind}: decode(encode(m)) = m and encode(decode(b)) = b`, () => {
        const gen = kind === 'error reply' ? errorReply(c) : VALID[c][kind];
        fc.assert(
          fc.property(gen, (m) => {
            const b = encodeMessage(m);
            expect(b.readUInt32LE(4)).toBe(b.length);
            expect(b.readUInt16LE(2)).toBe(COMMANDS[c]);
            const d = decodeMessage(b, m.fds, WIDE);
            expect(d).toEqual(m);
            expect(encodeMessage(d).equals(b)).toBe(true);
            expect(decodeHeader(b)).toEqual({ id: m.id, command: COMMANDS[c], size: b.length, reply: m.reply, noReply: !m.reply && m.noReply, error: m.reply && (m.errno !== 0 || m.error === true), errno: m.reply ? m.errno : 0 });
            expect(describeMessage(d)).toMatch(new RegExp(`^#${m.id} ${m.reply ? 'reply ' : ''}${c}`));
          }),
          RUNS,
        );
      });
    }
  }
});

// ---------------------------------------------------------------------------
// (b) Golden bytes, from the specification's tables by hand

const hexb = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('golden: REGION_READ request and reply ("Header", "VFIO_USER_REGION_READ")', () => {
  const rq: Message = { command: 'REGION_READ', id: 3, reply: false, noReply: false, body: { offset: 0x10n, region: 7, count: 4 }, fds: [] };
  const want = hexb(`
    0300 0900 20000000 00000000 00000000
    1000000000000000 07000000 04000000`);
  expect(encodeMessage(rq).toString('hex')).toBe(want.toString('hex'));
  expect(decodeMessage(want, [])).toEqual(rq);
  expect(describeMessage(rq)).toBe('#3 REGION_READ region 7 offset 0x10 count 4');

  const rp: Message = { command: 'REGION_READ', id: 3, reply: true, errno: 0, body: { offset: 0x10n, region: 7, count: 4, data: new Uint8Array([0x78, 0x56, 0x34, 0x12]) }, fds: [] };
  const wantRp = hexb(`
    0300 0900 24000000 01000000 00000000
    1000000000000000 07000000 04000000 78563412`);
  expect(encodeMessage(rp).toString('hex')).toBe(wantRp.toString('hex'));
  expect(describeMessage(rp)).toBe('#3 reply REGION_READ 4 bytes 0x12345678');
  // No_reply is bit 4 of the flags.
  expect(encodeMessage({ ...rq, noReply: true }).readUInt32LE(8)).toBe(0x10);
});

test('golden: DMA_MAP request, each field at its offset ("VFIO_USER_DMA_MAP")', () => {
  const m: Message = { command: 'DMA_MAP', id: 0x1234, reply: false, noReply: false, body: { flags: 3, offset: 0x1122334455667788n, address: 0xfeed000000001000n, size: 0x200000n }, fds: [42] };
  const b = encodeMessage(m);
  expect(b.length).toBe(16 + 32); // "the message size is 16 + 32 bytes"
  expect(b.subarray(0, 16).toString('hex')).toBe('3412' + '0200' + '30000000' + '00000000' + '00000000');
  expect(b.subarray(16, 20).toString('hex')).toBe('20000000'); // argsz 32
  expect(b.subarray(20, 24).toString('hex')).toBe('03000000'); // flags: readable | writeable
  expect(b.subarray(24, 32).toString('hex')).toBe('8877665544332211'); // offset
  expect(b.subarray(32, 40).toString('hex')).toBe('001000000000edfe'); // address
  expect(b.subarray(40, 48).toString('hex')).toBe('0000200000000000'); // size
  expect(decodeMessage(b, [42])).toEqual(m);
});

test('golden: an error reply is the header only, Error flag and errno ("Header")', () => {
  const m: Message = { command: 'DMA_MAP', id: 9, reply: true, errno: 22, body: null, fds: [] };
  expect(encodeMessage(m).toString('hex')).toBe('0900' + '0200' + '10000000' + '21000000' + '16000000');
  expect(describeMessage(m)).toBe('#9 reply DMA_MAP error EINVAL(22)');
  const zero = decodeMessage(hexb('0900 0200 10000000 21000000 00000000'), []);
  expect(zero).toEqual({ command: 'DMA_MAP', id: 9, reply: true, errno: 0, error: true, body: null, fds: [] });
  expect(decodeMessage(hexb('0900 0200 10000000 01000000 00000000'), [])).toEqual({ command: 'DMA_MAP', id: 9, reply: true, errno: 0, body: null, fds: [] });
});

test('golden: VERSION carries NUL-terminated JSON after major and minor ("VFIO_USER_VERSION")', () => {
  const m: Message = { command: 'VERSION', id: 0, reply: false, noReply: false, body: { major: 0, minor: 1, caps: { maxMsgFds: 8, pgsizes: 0xfffffffffffff000n } }, fds: [] };
  const jsonText = '{"capabilities":{"max_msg_fds":8,"pgsizes":18446744073709547520}}';
  const b = encodeMessage(m);
  expect(b.readUInt16LE(16)).toBe(0);
  expect(b.readUInt16LE(18)).toBe(1);
  expect(b.subarray(20, b.length - 1).toString('utf8')).toBe(jsonText);
  expect(b[b.length - 1]).toBe(0);
  expect(b.length).toBe(16 + 4 + jsonText.length + 1);
  // The data is optional: a bare major/minor has the defaults.
  expect(decodeMessage(hexb('0100 0100 14000000 00000000 00000000 0000 0100'), [])).toEqual({ command: 'VERSION', id: 1, reply: false, noReply: false, body: { major: 0, minor: 1, caps: {} }, fds: [] });
});

test('golden: region info reply with a sparse-mmap capability at cap_offset 32 ("VFIO region info cap sparse mmap")', () => {
  const m: Message = { command: 'DEVICE_GET_REGION_INFO', id: 5, reply: true, errno: 0, body: { argsz: 64, flags: 0xf, index: 0, capOffset: 32, size: 0x4000n, offset: 0x8000n, sparse: [{ offset: 0x1000n, size: 0x2000n }] }, fds: [7] };
  const want = hexb(`
    0500 0500 50000000 01000000 00000000
    40000000 0f000000 00000000 20000000 0040000000000000 0080000000000000
    0100 0100 00000000 01000000 00000000 0010000000000000 0020000000000000`);
  expect(encodeMessage(m).toString('hex')).toBe(want.toString('hex'));
  expect(decodeMessage(want, [7])).toEqual(m);
});

test('golden: DEVICE_SET_IRQS with eventfds, command numbers past the withdrawn 14', () => {
  const m: Message = { command: 'DEVICE_SET_IRQS', id: 2, reply: false, noReply: false, body: { argsz: 20, flags: IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, index: 2, start: 0, count: 2 }, fds: [10, 11] };
  expect(encodeMessage(m).toString('hex')).toBe('0200' + '0800' + '24000000' + '00000000' + '00000000' + '14000000' + '24000000' + '02000000' + '00000000' + '02000000');
  expect(COMMANDS.REGION_WRITE_MULTI).toBe(15);
  expect(COMMANDS.DEVICE_FEATURE).toBe(16);
  expect(COMMANDS.MIG_DATA_READ).toBe(17);
  expect(COMMANDS.MIG_DATA_WRITE).toBe(18);
});

// ---------------------------------------------------------------------------
// (c) Malformed messages: one rule each, field and byte offset exact

type Bad = { name: string; base: Message; mutate: (b: Buffer) => Buffer; fds?: number[]; limits?: Limits; field: string; offset: number };

const R = (command: CommandName, body: unknown, fds: number[] = []): Message => ({ command, id: 1, reply: false, noReply: false, body, fds }) as Message;
const P = (command: CommandName, body: unknown, fds: number[] = []): Message => ({ command, id: 1, reply: true, errno: 0, body, fds }) as Message;

const set32 = (off: number, v: number) => (b: Buffer) => (b.writeUInt32LE(v >>> 0, off), b);
const or32 = (off: number, v: number) => (b: Buffer) => (b.writeUInt32LE((b.readUInt32LE(off) | v) >>> 0, off), b);
const set16 = (off: number, v: number) => (b: Buffer) => (b.writeUInt16LE(v, off), b);
const set64 = (off: number, v: bigint) => (b: Buffer) => (b.writeBigUInt64LE(v, off), b);
const set8 = (off: number, v: number) => (b: Buffer) => ((b[off] = v), b);
/** Cuts or pads the message to n bytes and fixes the size field: the payload itself is wrong. */
const resize = (n: number) => (b: Buffer) => {
  const o = Buffer.alloc(n);
  b.copy(o, 0, 0, Math.min(n, b.length));
  if (n >= 8) o.writeUInt32LE(n, 4);
  return o;
};
const grow = (k: number) => (b: Buffer) => resize(b.length + k)(b);
const shrink = (k: number) => (b: Buffer) => resize(b.length - k)(b);
const both =
  (...fs: ((b: Buffer) => Buffer)[]) =>
  (b: Buffer) =>
    fs.reduce((x, f) => f(x), b);
const same = (b: Buffer) => b;

const verReq = (_hand: string): Message => R('VERSION', { major: 0, minor: 1, caps: {} });
const versionBytes = (text: string, reply = false): Buffer => {
  const j = Buffer.from(text, 'utf8');
  const b = Buffer.alloc(16 + 4 + j.length + 1);
  b.writeUInt16LE(1, 0);
  b.writeUInt16LE(1, 2);
  b.writeUInt32LE(b.length, 4);
  b.writeUInt32LE(reply ? 1 : 0, 8);
  b.writeUInt16LE(1, 18);
  j.copy(b, 20);
  return b;
};
const jsonAt = (text: string, needle: string): number => 20 + Buffer.byteLength(text.slice(0, text.indexOf(needle)), 'utf8');

const map = R('DMA_MAP', { flags: 3, offset: 0x1000n, address: 0x10000n, size: 0x1000n }, [5]);
const unmap = R('DMA_UNMAP', { flags: 0, address: 0x10000n, size: 0x1000n });
const unmapAll = R('DMA_UNMAP', { flags: DMA_UNMAP_ALL, address: 0n, size: 0n });
const infoReq = R('DEVICE_GET_INFO', { flags: 0, numRegions: 0, numIrqs: 0 });
const infoRep = P('DEVICE_GET_INFO', { flags: DEVICE_FLAG_PCI | DEVICE_FLAG_RESET, numRegions: 9, numIrqs: 5 });
const rinfoReq = R('DEVICE_GET_REGION_INFO', { argsz: 32, flags: 0, index: 0, capOffset: 0, size: 0n, offset: 0n });
const rinfoPlain = P('DEVICE_GET_REGION_INFO', { argsz: 32, flags: 3, index: 7, capOffset: 0, size: 0x1000n, offset: 0n });
const rinfoSparse = P('DEVICE_GET_REGION_INFO', { argsz: 64, flags: 0xf, index: 0, capOffset: 32, size: 0x4000n, offset: 0n, sparse: [{ offset: 0x1000n, size: 0x1000n }] }, [6]);
const iofdsReq = R('DEVICE_GET_REGION_IO_FDS', { argsz: 1024, flags: 0, index: 0, count: 0, entries: [] });
const iofdsRep = P(
  'DEVICE_GET_REGION_IO_FDS',
  {
    argsz: 96,
    flags: 0,
    index: 0,
    count: 2,
    entries: [
      { offset: 0x100n, size: 4n, fdIndex: 0, type: 0, flags: 1, data: 0x55n },
      { offset: 0x200n, size: 8n, fdIndex: 1, type: 1, flags: 0, data: 0x66n },
    ],
  },
  [8, 9],
);
const irqReq = R('DEVICE_GET_IRQ_INFO', { argsz: 16, flags: 0, index: 2, count: 0 });
const irqRep = P('DEVICE_GET_IRQ_INFO', { argsz: 16, flags: 3, index: 2, count: 32 });
const irqsNone = R('DEVICE_SET_IRQS', { argsz: 20, flags: IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, index: 0, start: 0, count: 1 });
const irqsBool = R('DEVICE_SET_IRQS', { argsz: 23, flags: IRQ_SET_DATA_BOOL | IRQ_SET_ACTION_MASK, index: 2, start: 0, count: 3, data: new Uint8Array([1, 0, 1]) });
const irqsFd = R('DEVICE_SET_IRQS', { argsz: 20, flags: IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, index: 2, start: 0, count: 3 }, [10, 11, 12]);
const rread = R('REGION_READ', { offset: 0x10n, region: 0, count: 4 });
const rreadRep = P('REGION_READ', { offset: 0x10n, region: 0, count: 4, data: new Uint8Array([1, 2, 3, 4]) });
const rwrite = R('REGION_WRITE', { offset: 0x10n, region: 0, count: 4, data: new Uint8Array([1, 2, 3, 4]) });
const rwriteRep = P('REGION_WRITE', { offset: 0x10n, region: 0, count: 4 });
const dread = R('DMA_READ', { address: 0x1000n, count: 4n });
const dreadRep = P('DMA_READ', { address: 0x1000n, count: 4n, data: new Uint8Array([1, 2, 3, 4]) });
const dwrite = R('DMA_WRITE', { address: 0x1000n, count: 4n, data: new Uint8Array([1, 2, 3, 4]) });
const dwriteRep = P('DMA_WRITE', { address: 0x1000n, count: 4n });
const reset = R('DEVICE_RESET', null);
const multi = R('REGION_WRITE_MULTI', { writes: [{ offset: 0x10n, region: 0, count: 4, data: new Uint8Array([1, 2, 3, 4]) }, { offset: 0x20n, region: 0, count: 2, data: new Uint8Array([5, 6]) }] });
const multiRep = P('REGION_WRITE_MULTI', { wrCnt: 2n });
const featSet = R('DEVICE_FEATURE', { argsz: 16, flags: FEATURE_MIG_DEVICE_STATE | FEATURE_SET, data: u32le(2, 0) });
const featProbe = R('DEVICE_FEATURE', { argsz: 8, flags: FEATURE_MIGRATION | FEATURE_PROBE, data: new Uint8Array(0) });
const featMigRep = P('DEVICE_FEATURE', { argsz: 16, flags: FEATURE_MIGRATION | FEATURE_GET, data: u64le(1n) });
const featReport = R('DEVICE_FEATURE', { argsz: 4096, flags: FEATURE_DMA_LOGGING_REPORT | FEATURE_GET, data: join(u64le(0n), u64le(0x10000n), u64le(4096n)) });
const featStart = R('DEVICE_FEATURE', { argsz: 40, flags: FEATURE_DMA_LOGGING_START | FEATURE_SET, data: join(u64le(4096n), u32le(1, 0), u64le(0n), u64le(0x1000n)) });
const migRead = R('MIG_DATA_READ', { argsz: 8 + 64, size: 64 });
const migReadRep = P('MIG_DATA_READ', { argsz: 12, size: 4, data: new Uint8Array([1, 2, 3, 4]) });
const migWrite = R('MIG_DATA_WRITE', { argsz: 12, size: 4, data: new Uint8Array([1, 2, 3, 4]) });
const small16: Limits = { ...DEFAULT_LIMITS, maxDataXferSize: 16 };
const fds4: Limits = { ...DEFAULT_LIMITS, maxMsgFds: 4 };

const BAD: Bad[] = [
  // "Header"
  { name: 'fewer bytes than a header', base: reset, mutate: (b) => b.subarray(0, 12), field: 'header', offset: 0 },
  { name: 'unknown command 14 (withdrawn)', base: reset, mutate: set16(2, 14), field: 'command', offset: 2 },
  { name: 'unknown command 19', base: reset, mutate: set16(2, 19), field: 'command', offset: 2 },
  { name: 'size field differs from the bytes', base: rread, mutate: set32(4, 33), field: 'msg_size', offset: 4 },
  { name: 'size field below the header', base: reset, mutate: set32(4, 8), field: 'msg_size', offset: 4 },
  { name: 'message past maxMessage', base: rwrite, limits: { ...DEFAULT_LIMITS, maxMessage: 32 }, mutate: same, field: 'msg_size', offset: 4 },
  { name: 'reserved flag bit 6', base: rread, mutate: or32(8, 1 << 6), field: 'flags', offset: 8 },
  { name: 'reserved flag bit 31', base: rread, mutate: or32(8, 1 << 31), field: 'flags', offset: 8 },
  { name: 'type 2', base: rread, mutate: set32(8, 2), field: 'flags', offset: 8 },
  { name: 'No_reply in a reply', base: rwriteRep, mutate: or32(8, 0x10), field: 'flags', offset: 8 },
  { name: 'Error in a command', base: rread, mutate: or32(8, 0x20), field: 'flags', offset: 8 },
  { name: 'error field in a command (reserved)', base: rread, mutate: set32(12, 5), field: 'error', offset: 12 },
  { name: 'errno without the Error flag', base: rwriteRep, mutate: set32(12, 5), field: 'error', offset: 12 },
  { name: 'error reply with an fd', base: P('DMA_MAP', null), mutate: or32(8, 0x20), fds: [3], field: 'fds', offset: 16 },
  { name: 'more fds than max_msg_fds', base: irqsFd, mutate: same, fds: [1, 2, 3], field: 'fds', offset: 16 },

  // "VFIO_USER_VERSION"
  { name: 'VERSION cut inside minor', base: verReq(''), mutate: resize(18), field: 'msg_size', offset: 4 },
  { name: 'VERSION JSON not NUL-terminated', base: verReq(''), mutate: (b) => ((b[b.length - 1] = 0x20), b), field: 'version data', offset: -1 },
  { name: 'VERSION NUL inside the JSON', base: verReq(''), mutate: set8(21, 0), field: 'version data', offset: 21 },
  { name: 'VERSION JSON not UTF-8', base: verReq(''), mutate: same, field: 'version data', offset: 0 },
  { name: 'VERSION not JSON', base: verReq(''), mutate: same, field: 'version data', offset: 0 },
  { name: 'VERSION JSON not an object', base: verReq(''), mutate: same, field: 'version data', offset: 20 },
  { name: 'VERSION duplicate key', base: verReq(''), mutate: same, field: 'version data', offset: 0 },
  { name: 'VERSION nests too deep', base: verReq(''), mutate: same, field: 'version data', offset: 0 },
  { name: 'VERSION max_msg_fds a string', base: verReq(''), mutate: same, field: 'capabilities.max_msg_fds', offset: 0 },
  { name: 'VERSION max_data_xfer_size negative', base: verReq(''), mutate: same, field: 'capabilities.max_data_xfer_size', offset: 0 },
  { name: 'VERSION pgsizes past 2^64', base: verReq(''), mutate: same, field: 'capabilities.pgsizes', offset: 0 },
  { name: 'VERSION write_multiple a number', base: verReq(''), mutate: same, field: 'capabilities.write_multiple', offset: 0 },
  { name: 'VERSION capabilities an array', base: verReq(''), mutate: same, field: 'capabilities', offset: 0 },
  { name: 'VERSION migration without pgsize', base: verReq(''), mutate: same, field: 'capabilities.migration.pgsize', offset: 0 },
  { name: 'VERSION fd_index in the request', base: verReq(''), mutate: same, field: 'capabilities.twin_socket.fd_index', offset: 0 },
  { name: 'VERSION reply twin socket supported without fd_index', base: verReq(''), mutate: same, field: 'capabilities.twin_socket.fd_index', offset: 0 },
  { name: 'VERSION reply fd_index past the fds', base: verReq(''), mutate: same, field: 'capabilities.twin_socket.fd_index', offset: 0 },
  { name: 'VERSION request with an fd', base: verReq(''), mutate: same, fds: [4], field: 'fds', offset: 16 },
  { name: 'VERSION reply with an fd but no twin socket', base: P('VERSION', { major: 0, minor: 1, caps: { maxMsgFds: 4 } }), mutate: same, fds: [4], field: 'fds', offset: 16 },
  { name: 'VERSION reply cut inside major', base: P('VERSION', { major: 0, minor: 1, caps: {} }), mutate: resize(17), field: 'msg_size', offset: 4 },

  // "VFIO_USER_DMA_MAP"
  { name: 'DMA_MAP argsz not 32', base: map, mutate: set32(16, 40), fds: [5], field: 'argsz', offset: 16 },
  { name: 'DMA_MAP reserved flag bit 2', base: map, mutate: or32(20, 4), fds: [5], field: 'flags', offset: 20 },
  { name: 'DMA_MAP cut short', base: map, mutate: shrink(8), fds: [5], field: 'msg_size', offset: 4 },
  { name: 'DMA_MAP too long', base: map, mutate: grow(8), fds: [5], field: 'msg_size', offset: 4 },
  { name: 'DMA_MAP offset without an fd', base: map, mutate: same, fds: [], field: 'offset', offset: 24 },
  { name: 'DMA_MAP two fds', base: map, mutate: same, fds: [5, 6], limits: fds4, field: 'fds', offset: 16 },
  { name: 'DMA_MAP region wraps past 2^64', base: map, mutate: set64(32, U64_MAX - 0xffen), fds: [5], field: 'size', offset: 40 },
  { name: 'DMA_MAP reply with a payload', base: P('DMA_MAP', null), mutate: grow(4), field: 'msg_size', offset: 4 },
  { name: 'DMA_MAP reply with an fd', base: P('DMA_MAP', null), mutate: same, fds: [3], field: 'fds', offset: 16 },

  // "VFIO_USER_DMA_UNMAP"
  { name: 'DMA_UNMAP argsz below 24', base: unmap, mutate: set32(16, 23), field: 'argsz', offset: 16 },
  { name: 'DMA_UNMAP dirty-bitmap flag (withdrawn)', base: unmap, mutate: or32(20, 1), field: 'flags', offset: 20 },
  { name: 'DMA_UNMAP ALL with an address', base: unmapAll, mutate: set64(24, 0x1000n), field: 'address', offset: 24 },
  { name: 'DMA_UNMAP ALL with a size', base: unmapAll, mutate: set64(32, 0x1000n), field: 'size', offset: 32 },
  { name: 'DMA_UNMAP with an fd', base: unmap, mutate: same, fds: [3], field: 'fds', offset: 16 },
  { name: 'DMA_UNMAP with a bitmap appended', base: unmap, mutate: grow(16), field: 'msg_size', offset: 4 },
  { name: 'DMA_UNMAP reply cut short', base: P('DMA_UNMAP', { flags: 0, address: 0n, size: 0x1000n }), mutate: shrink(8), field: 'msg_size', offset: 4 },

  // "VFIO_USER_DEVICE_GET_INFO"
  { name: 'GET_INFO argsz below 16', base: infoReq, mutate: set32(16, 15), field: 'argsz', offset: 16 },
  { name: 'GET_INFO request flags set', base: infoReq, mutate: set32(20, 2), field: 'flags', offset: 20 },
  { name: 'GET_INFO request num_regions set', base: infoReq, mutate: set32(24, 9), field: 'num_regions', offset: 24 },
  { name: 'GET_INFO request num_irqs set', base: infoReq, mutate: set32(28, 5), field: 'num_irqs', offset: 28 },
  { name: 'GET_INFO request cut short', base: infoReq, mutate: shrink(4), field: 'msg_size', offset: 4 },
  { name: 'GET_INFO reply not PCI', base: infoRep, mutate: set32(20, DEVICE_FLAG_RESET), field: 'flags', offset: 20 },
  { name: 'GET_INFO reply reserved flag', base: infoRep, mutate: or32(20, 1 << 7), field: 'flags', offset: 20 },
  { name: 'GET_INFO reply fewer than 9 regions', base: infoRep, mutate: set32(24, 8), field: 'num_regions', offset: 24 },

  // "VFIO_USER_DEVICE_GET_REGION_INFO"
  { name: 'REGION_INFO argsz below 32', base: rinfoReq, mutate: set32(16, 31), field: 'argsz', offset: 16 },
  { name: 'REGION_INFO request flags set', base: rinfoReq, mutate: set32(20, 1), field: 'flags', offset: 20 },
  { name: 'REGION_INFO request cap_offset set', base: rinfoReq, mutate: set32(28, 32), field: 'cap_offset', offset: 28 },
  { name: 'REGION_INFO request size set', base: rinfoReq, mutate: set64(32, 1n), field: 'size', offset: 32 },
  { name: 'REGION_INFO request offset set', base: rinfoReq, mutate: set64(40, 1n), field: 'offset', offset: 40 },
  { name: 'REGION_INFO request with extra bytes', base: rinfoReq, mutate: grow(8), field: 'msg_size', offset: 4 },
  { name: 'REGION_INFO reply reserved flag', base: rinfoPlain, mutate: or32(20, 1 << 4), field: 'flags', offset: 20 },
  { name: 'REGION_INFO reply MMAP without the fd', base: rinfoPlain, mutate: or32(20, REGION_FLAG_MMAP), field: 'fds', offset: 20 },
  { name: 'REGION_INFO reply fd without MMAP', base: rinfoPlain, mutate: same, fds: [3], field: 'fds', offset: 20 },
  { name: 'REGION_INFO reply CAPS without capabilities', base: rinfoPlain, mutate: or32(20, REGION_FLAG_CAPS), field: 'flags', offset: 20 },
  { name: 'REGION_INFO reply argsz below the payload', base: rinfoSparse, mutate: set32(16, 48), fds: [6], field: 'argsz', offset: 16 },
  { name: 'REGION_INFO reply capabilities without CAPS', base: rinfoSparse, mutate: set32(20, 7), fds: [6], field: 'flags', offset: 20 },
  { name: 'REGION_INFO reply cap_offset inside the structure', base: rinfoSparse, mutate: set32(28, 8), fds: [6], field: 'cap_offset', offset: 28 },
  { name: 'REGION_INFO reply unknown capability id', base: rinfoSparse, mutate: set16(48, 9), fds: [6], field: 'id', offset: 48 },
  { name: 'REGION_INFO reply sparse version 2', base: rinfoSparse, mutate: set16(50, 2), fds: [6], field: 'version', offset: 50 },
  { name: 'REGION_INFO reply next points backwards', base: rinfoSparse, mutate: set32(52, 32), fds: [6], field: 'next', offset: 52 },
  { name: 'REGION_INFO reply nr_areas past the payload', base: rinfoSparse, mutate: set32(56, 2), fds: [6], field: 'nr_areas', offset: 56 },
  { name: 'REGION_INFO reply sparse reserved set', base: rinfoSparse, mutate: set32(60, 1), fds: [6], field: 'reserved', offset: 60 },
  { name: 'REGION_INFO reply sparse area outside the region', base: rinfoSparse, mutate: set64(64, 0x3800n), fds: [6], field: 'areas[0]', offset: 64 },
  { name: 'REGION_INFO reply sparse without MMAP', base: rinfoSparse, mutate: set32(20, 0xb), fds: [], field: 'flags', offset: 20 },
  { name: 'REGION_INFO reply bytes outside the capabilities', base: rinfoSparse, mutate: both(grow(8), set32(16, 72)), fds: [6], field: 'capabilities', offset: 80 },
  { name: 'REGION_INFO reply truncated with cap_offset', base: rinfoPlain, mutate: both(set32(16, 64), set32(28, 32)), field: 'cap_offset', offset: 28 },

  // "VFIO_USER_DEVICE_GET_REGION_IO_FDS"
  { name: 'IO_FDS request count set', base: iofdsReq, mutate: set32(28, 1), field: 'count', offset: 28 },
  { name: 'IO_FDS request flags set', base: iofdsReq, mutate: set32(20, 1), field: 'flags', offset: 20 },
  { name: 'IO_FDS request argsz below 16', base: iofdsReq, mutate: set32(16, 12), field: 'argsz', offset: 16 },
  { name: 'IO_FDS reply count differs from the sub-regions', base: iofdsRep, mutate: set32(28, 3), fds: [8, 9], limits: fds4, field: 'count', offset: 28 },
  { name: 'IO_FDS reply argsz differs', base: iofdsRep, mutate: set32(16, 100), fds: [8, 9], limits: fds4, field: 'argsz', offset: 16 },
  { name: 'IO_FDS reply flags set', base: iofdsRep, mutate: set32(20, 1), fds: [8, 9], limits: fds4, field: 'flags', offset: 20 },
  { name: 'IO_FDS reply unknown sub-region type', base: iofdsRep, mutate: set32(52, 2), fds: [8, 9], limits: fds4, field: 'sub-regions[0].type', offset: 52 },
  { name: 'IO_FDS reply padding set', base: iofdsRep, mutate: set32(60, 1), fds: [8, 9], limits: fds4, field: 'sub-regions[0].padding', offset: 60 },
  { name: 'IO_FDS reply fd_index past the fds', base: iofdsRep, mutate: set32(88, 2), fds: [8, 9], limits: fds4, field: 'sub-regions[1].fd_index', offset: 88 },
  { name: 'IO_FDS reply ioeventfd unknown flag', base: iofdsRep, mutate: set32(56, 4), fds: [8, 9], limits: fds4, field: 'sub-regions[0].flags', offset: 56 },
  { name: 'IO_FDS reply ioregionfd of size 0 without posted writes', base: iofdsRep, mutate: set64(72 + 8, 0n), fds: [8, 9], limits: fds4, field: 'sub-regions[1].flags', offset: 96 },
  { name: 'IO_FDS reply an fd nobody refers to', base: iofdsRep, mutate: same, fds: [8, 9, 10], limits: fds4, field: 'fds', offset: 28 },
  { name: 'IO_FDS reply half a sub-region', base: iofdsRep, mutate: shrink(20), fds: [8, 9], limits: fds4, field: 'msg_size', offset: 4 },

  // "VFIO_USER_DEVICE_GET_IRQ_INFO"
  { name: 'IRQ_INFO request flags set', base: irqReq, mutate: set32(20, 1), field: 'flags', offset: 20 },
  { name: 'IRQ_INFO request count set', base: irqReq, mutate: set32(28, 1), field: 'count', offset: 28 },
  { name: 'IRQ_INFO argsz below 16', base: irqReq, mutate: set32(16, 0), field: 'argsz', offset: 16 },
  { name: 'IRQ_INFO reply reserved flag', base: irqRep, mutate: or32(20, 1 << 4), field: 'flags', offset: 20 },
  { name: 'IRQ_INFO reply cut short', base: irqRep, mutate: shrink(4), field: 'msg_size', offset: 4 },
  { name: 'IRQ_INFO with an fd', base: irqReq, mutate: same, fds: [3], field: 'fds', offset: 16 },

  // "VFIO_USER_DEVICE_SET_IRQS"
  { name: 'SET_IRQS two DATA flags', base: irqsNone, mutate: or32(20, IRQ_SET_DATA_BOOL), field: 'flags', offset: 20 },
  { name: 'SET_IRQS two ACTION flags', base: irqsNone, mutate: or32(20, IRQ_SET_ACTION_MASK), field: 'flags', offset: 20 },
  { name: 'SET_IRQS no ACTION flag', base: irqsNone, mutate: set32(20, IRQ_SET_DATA_NONE), field: 'flags', offset: 20 },
  { name: 'SET_IRQS reserved flag', base: irqsNone, mutate: or32(20, 1 << 6), field: 'flags', offset: 20 },
  { name: 'SET_IRQS argsz differs from the payload', base: irqsBool, mutate: set32(16, 20), field: 'argsz', offset: 16 },
  { name: 'SET_IRQS DATA_BOOL count differs from the data', base: irqsBool, mutate: set32(32, 4), field: 'count', offset: 32 },
  { name: 'SET_IRQS DATA_NONE with data', base: irqsNone, mutate: both(grow(2), set32(16, 22)), field: 'argsz', offset: 16 },
  { name: 'SET_IRQS DATA_EVENTFD fewer fds than count', base: irqsFd, mutate: same, fds: [10, 11], limits: fds4, field: 'fds', offset: 32 },
  { name: 'SET_IRQS DATA_NONE with an fd', base: irqsNone, mutate: same, fds: [10], field: 'fds', offset: 20 },
  { name: 'SET_IRQS cut inside the structure', base: irqsNone, mutate: shrink(4), field: 'msg_size', offset: 4 },
  { name: 'SET_IRQS reply with a payload', base: P('DEVICE_SET_IRQS', null), mutate: grow(4), field: 'msg_size', offset: 4 },

  // "VFIO_USER_REGION_READ" / "VFIO_USER_REGION_WRITE"
  { name: 'REGION_READ request with data', base: rread, mutate: grow(4), field: 'msg_size', offset: 4 },
  { name: 'REGION_READ reply count differs from the data', base: rreadRep, mutate: set32(28, 5), field: 'count', offset: 28 },
  { name: 'REGION_READ reply data past max_data_xfer_size', base: rreadRep, mutate: both(grow(16), set32(28, 20)), limits: small16, field: 'count', offset: 28 },
  { name: 'REGION_READ with an fd', base: rread, mutate: same, fds: [3], field: 'fds', offset: 16 },
  { name: 'REGION_WRITE count differs from the data', base: rwrite, mutate: set32(28, 3), field: 'count', offset: 28 },
  { name: 'REGION_WRITE data cut short', base: rwrite, mutate: shrink(1), field: 'count', offset: 28 },
  { name: 'REGION_WRITE data past max_data_xfer_size', base: rwrite, mutate: both(grow(16), set32(28, 20)), limits: small16, field: 'count', offset: 28 },
  { name: 'REGION_WRITE reply with data', base: rwriteRep, mutate: grow(4), field: 'msg_size', offset: 4 },

  // "VFIO_USER_DMA_READ" / "VFIO_USER_DMA_WRITE"
  { name: 'DMA_READ request cut short', base: dread, mutate: shrink(4), field: 'msg_size', offset: 4 },
  { name: 'DMA_READ reply count differs from the data', base: dreadRep, mutate: set64(24, 3n), field: 'count', offset: 24 },
  { name: 'DMA_WRITE count differs from the data', base: dwrite, mutate: set64(24, 5n), field: 'count', offset: 24 },
  { name: 'DMA_WRITE data past max_data_xfer_size', base: dwrite, mutate: both(grow(16), set64(24, 20n)), limits: small16, field: 'count', offset: 24 },
  { name: 'DMA_WRITE reply with data', base: dwriteRep, mutate: grow(4), field: 'msg_size', offset: 4 },
  { name: 'DMA_WRITE reply with a 4-byte count', base: dwriteRep, mutate: shrink(4), field: 'msg_size', offset: 4 },

  // "VFIO_USER_DEVICE_RESET"
  { name: 'DEVICE_RESET with a payload', base: reset, mutate: grow(4), field: 'msg_size', offset: 4 },
  { name: 'DEVICE_RESET with an fd', base: reset, mutate: same, fds: [3], field: 'fds', offset: 16 },
  { name: 'DEVICE_RESET reply with a payload', base: P('DEVICE_RESET', null), mutate: grow(8), field: 'msg_size', offset: 4 },

  // "VFIO_USER_REGION_WRITE_MULTI"
  { name: 'WRITE_MULTI wr_cnt differs from the writes', base: multi, mutate: set64(16, 3n), field: 'wr_cnt', offset: 16 },
  { name: 'WRITE_MULTI a write of 9 bytes', base: multi, mutate: set32(36, 9), field: 'wrs[0].count', offset: 36 },
  { name: 'WRITE_MULTI half a write', base: multi, mutate: shrink(12), field: 'msg_size', offset: 4 },
  { name: 'WRITE_MULTI cut inside wr_cnt', base: multi, mutate: resize(20), field: 'msg_size', offset: 4 },
  { name: 'WRITE_MULTI reply too long', base: multiRep, mutate: grow(8), field: 'msg_size', offset: 4 },

  // "VFIO_USER_DEVICE_FEATURE"
  { name: 'DEVICE_FEATURE reserved flag bit 19', base: featSet, mutate: or32(20, 1 << 19), field: 'flags', offset: 20 },
  { name: 'DEVICE_FEATURE no operation', base: featSet, mutate: set32(20, FEATURE_MIG_DEVICE_STATE), field: 'flags', offset: 20 },
  { name: 'DEVICE_FEATURE GET and SET without PROBE', base: featSet, mutate: or32(20, FEATURE_GET), field: 'flags', offset: 20 },
  { name: 'DEVICE_FEATURE PROBE with data', base: featProbe, mutate: grow(4), field: 'data', offset: 24 },
  { name: 'DEVICE_FEATURE SET argsz below the echoed request', base: featSet, mutate: set32(16, 12), field: 'argsz', offset: 16 },
  { name: 'DEVICE_FEATURE argsz below 8', base: featProbe, mutate: set32(16, 7), field: 'argsz', offset: 16 },
  { name: 'DEVICE_FEATURE cut inside flags', base: featProbe, mutate: resize(22), field: 'msg_size', offset: 4 },
  { name: 'DEVICE_FEATURE SET to ERROR', base: featSet, mutate: set32(24, 0), field: 'device_state', offset: 24 },
  { name: 'DEVICE_FEATURE SET to a P2P state', base: featSet, mutate: set32(24, 5), field: 'device_state', offset: 24 },
  { name: 'DEVICE_FEATURE MIG_DEVICE_STATE data short', base: featSet, mutate: shrink(4), field: 'data', offset: 24 },
  { name: 'DEVICE_FEATURE MIGRATION reply without STOP_COPY', base: featMigRep, mutate: set64(24, 2n), field: 'flags', offset: 24 },
  { name: 'DEVICE_FEATURE DMA_LOGGING_REPORT page_size not a power of two', base: featReport, mutate: set64(40, 3n), field: 'page_size', offset: 40 },
  { name: 'DEVICE_FEATURE DMA_LOGGING_START num_ranges differs', base: featStart, mutate: set32(32, 2), field: 'num_ranges', offset: 32 },
  { name: 'DEVICE_FEATURE DMA_LOGGING_START reserved set', base: featStart, mutate: set32(36, 1), field: 'reserved', offset: 36 },
  { name: 'DEVICE_FEATURE with an fd', base: featProbe, mutate: same, fds: [3], field: 'fds', offset: 16 },

  // "VFIO_USER_MIG_DATA_READ" / "VFIO_USER_MIG_DATA_WRITE"
  { name: 'MIG_DATA_READ argsz below 8 + size', base: migRead, mutate: set32(16, 8 + 63), field: 'argsz', offset: 16 },
  { name: 'MIG_DATA_READ request with data', base: migRead, mutate: grow(4), field: 'msg_size', offset: 4 },
  { name: 'MIG_DATA_READ reply size differs from the data', base: migReadRep, mutate: set32(20, 3), field: 'size', offset: 20 },
  { name: 'MIG_DATA_READ reply argsz differs from the payload', base: migReadRep, mutate: set32(16, 100), field: 'argsz', offset: 16 },
  { name: 'MIG_DATA_WRITE size differs from the data', base: migWrite, mutate: set32(20, 5), field: 'size', offset: 20 },
  { name: 'MIG_DATA_WRITE argsz below 8', base: migWrite, mutate: set32(16, 4), field: 'argsz', offset: 16 },
  { name: 'MIG_DATA_WRITE data past max_data_xfer_size', base: migWrite, mutate: both(grow(16), set32(20, 20)), limits: small16, field: 'size', offset: 20 },
  { name: 'MIG_DATA_WRITE reply with a payload', base: P('MIG_DATA_WRITE', null), mutate: grow(8), field: 'msg_size', offset: 4 },
];

/** VERSION rows whose bytes are JSON written by hand: text, reply?, fds, and where the fault is. */
const VERSION_TEXT: Record<string, { text: string; reply?: boolean; fds?: number[]; at: (t: string) => number; bytes?: (b: Buffer) => Buffer }> = {
  'VERSION JSON not UTF-8': { text: '{"capabilities":{"x":"ab"}}', at: (t) => jsonAt(t, 'b"'), bytes: (b) => ((b[jsonAt('{"capabilities":{"x":"ab"}}', 'b"')] = 0xff), b) },
  'VERSION not JSON': { text: '{"capabilities":{"max_msg_fds":8]}', at: (t) => jsonAt(t, ']') },
  'VERSION JSON not an object': { text: '[1]', at: () => 20 },
  'VERSION duplicate key': { text: '{"capabilities":{"max_msg_fds":8,"max_msg_fds":1}}', at: (t) => 20 + t.lastIndexOf('"max_msg_fds"') },
  'VERSION nests too deep': { text: '{"a":' + '['.repeat(100) + ']'.repeat(100) + '}', at: (t) => 20 + t.indexOf('[') + 64 },
  'VERSION max_msg_fds a string': { text: '{"capabilities":{"max_msg_fds":"8"}}', at: (t) => jsonAt(t, '"8"') },
  'VERSION max_data_xfer_size negative': { text: '{"capabilities":{"max_data_xfer_size":-1}}', at: (t) => jsonAt(t, '-1') },
  'VERSION pgsizes past 2^64': { text: '{"capabilities":{"pgsizes":18446744073709551616}}', at: (t) => jsonAt(t, '1844') },
  'VERSION write_multiple a number': { text: '{"capabilities":{"write_multiple":1}}', at: (t) => jsonAt(t, '1}') },
  'VERSION capabilities an array': { text: '{"capabilities":[]}', at: (t) => jsonAt(t, '[') },
  'VERSION migration without pgsize': { text: '{"capabilities":{"migration":{"max_bitmap_size":4}}}', at: (t) => jsonAt(t, '{"max_bitmap') },
  'VERSION fd_index in the request': { text: '{"capabilities":{"twin_socket":{"supported":true,"fd_index":0}}}', at: (t) => jsonAt(t, '0}') },
  'VERSION reply twin socket supported without fd_index': { text: '{"capabilities":{"twin_socket":{"supported":true}}}', reply: true, at: (t) => jsonAt(t, '{"supported') },
  'VERSION reply fd_index past the fds': { text: '{"capabilities":{"twin_socket":{"supported":true,"fd_index":1}}}', reply: true, fds: [4], at: (t) => jsonAt(t, '1}') },
};

test.describe('malformed messages', () => {
  for (const row of BAD) {
    test(row.name, () => {
      let b: Buffer;
      let offset = row.offset;
      const vt = VERSION_TEXT[row.name];
      if (vt) {
        b = versionBytes(vt.text, vt.reply);
        if (vt.bytes) b = vt.bytes(b);
        offset = vt.at(vt.text);
      } else {
        b = row.mutate(encodeMessage(row.base));
        if (offset < 0) offset += b.length;
        // The unmutated message is valid: the fault is the mutation's alone.
        expect(() => decodeMessage(encodeMessage(row.base), row.base.fds, WIDE)).not.toThrow();
      }
      const fds = row.fds ?? vt?.fds ?? row.base.fds;
      let err: unknown;
      try {
        decodeMessage(b, fds, row.limits ?? DEFAULT_LIMITS);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProtocolViolation);
      const v = err as ProtocolViolation;
      expect({ field: v.field, offset: v.offset }, v.message).toEqual({ field: row.field, offset });
      expect(v.message).toContain(`at byte ${offset}`);
    });
  }

  test('an error reply with a payload is read as the refusal it is, and the payload kept as a departure ("Header": the reply header only)', () => {
    const b = Buffer.concat([Buffer.from(encodeMessage({ command: 'REGION_READ', id: 7, reply: true, errno: 22, body: null, fds: [] } as Message)), Buffer.alloc(16, 0xab)]);
    b.writeUInt32LE(b.length, 4);
    const m = decodeMessage(b, [], DEFAULT_LIMITS) as Message & { reply: true; errno: number; departure?: ProtocolViolation };
    expect({ command: m.command, id: m.id, errno: m.errno, body: m.body }).toEqual({ command: 'REGION_READ', id: 7, errno: 22, body: null });
    expect(m.departure).toBeInstanceOf(ProtocolViolation);
    expect({ field: m.departure!.field, offset: m.departure!.offset }).toEqual({ field: 'reply.body', offset: 16 });
    // An fd still breaks the message: that is not something to read past.
    expect(() => decodeMessage(b, [5], DEFAULT_LIMITS)).toThrow(ProtocolViolation);
  });

  test('a read request asking for more than max_data_xfer_size is well formed: its receiver refuses it with an error reply', () => {
    for (const m of [R('REGION_READ', { offset: 0n, region: 0, count: 17 }), R('DMA_READ', { address: 0n, count: 17n }), R('MIG_DATA_READ', { argsz: 8 + 17, size: 17 })]) {
      expect(decodeMessage(encodeMessage(m), [], small16)).toEqual(m);
    }
  });

  test('every command has malformed cases as request and as reply', () => {
    const seen = new Set(BAD.map((r) => `${r.base.command}/${r.base.reply ? 'reply' : 'request'}`));
    for (const c of COMMAND_NAMES) for (const k of ['request', 'reply']) expect(seen.has(`${c}/${k}`), `${c} ${k}`).toBe(true);
  });

  test('decodeHeader checks the header alone', () => {
    const b = encodeMessage(rwrite);
    expect(decodeHeader(b.subarray(0, 16))).toEqual({ id: 1, command: COMMANDS.REGION_WRITE, size: b.length, reply: false, noReply: false, error: false, errno: 0 });
    expect(() => decodeHeader(set16(2, 0)(Buffer.from(b)))).toThrow(ProtocolViolation);
    expect(() => decodeHeader(b.subarray(0, 10))).toThrow(/header at byte 0/);
  });
});

// ---------------------------------------------------------------------------
// (d) Framing

const stream = (ms: Message[]): Buffer => Buffer.concat(ms.map((m) => encodeMessage(m)));
const drain = (r: FrameReader): { bytes: Buffer; fds: number[] }[] => {
  const out: { bytes: Buffer; fds: number[] }[] = [];
  for (let f = r.next(); f !== null; f = r.next()) out.push(f);
  return out;
};

test.describe('FrameReader', () => {
  const three = [rread, rwrite, reset];
  const all = stream(three);

  test('a stream split at every byte boundary gives the same messages', () => {
    for (let k = 0; k <= all.length; k++) {
      const r = new FrameReader();
      r.push(all.subarray(0, k));
      const got = drain(r);
      r.push(all.subarray(k));
      got.push(...drain(r));
      expect(got.map((f) => f.bytes.toString('hex'))).toEqual(three.map((m) => encodeMessage(m).toString('hex')));
      expect(r.buffered).toBe(0);
    }
  });

  test('one byte at a time, and many messages in one chunk', () => {
    const r = new FrameReader();
    const got: Buffer[] = [];
    for (const byte of all) {
      r.push(Uint8Array.of(byte));
      got.push(...drain(r).map((f) => f.bytes));
    }
    expect(Buffer.concat(got).equals(all)).toBe(true);
    const many = Array.from({ length: 200 }, (_, k) => ({ ...rwrite, id: k }) as Message);
    const r2 = new FrameReader();
    r2.push(stream(many));
    expect(drain(r2).map((f) => decodeMessage(f.bytes, f.fds).id)).toEqual(many.map((m) => m.id));
  });

  test('random chunkings of random valid messages', () => {
    fc.assert(
      fc.property(fc.array(anyValid, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (ms, cuts) => {
        const encoded = ms.map((m) => encodeMessage(m));
        const s = Buffer.concat(encoded);
        const starts = encoded.map((_, k) => encoded.slice(0, k).reduce((n, e) => n + e.length, 0));
        const points = [...new Set(cuts.map((c) => c % (s.length + 1)))].sort((a, b) => a - b);
        const r = new FrameReader(WIDE);
        const got: { bytes: Buffer; fds: number[] }[] = [];
        // Each message's fds travel with the chunk its first byte is in; the last message starting in a chunk takes them all
        // (recvmsg(2) on an AF_UNIX stream stops right after the sendmsg that carried fds).
        const want: number[][] = ms.map(() => []);
        let at = 0;
        for (const p of [...points, s.length]) {
          const here = starts.map((st, k) => (st >= at && st < p ? k : -1)).filter((k) => k >= 0);
          const fds = here.flatMap((k) => ms[k].fds);
          if (here.length) want[here[here.length - 1]] = fds;
          r.push(s.subarray(at, p), fds);
          got.push(...drain(r));
          at = p;
        }
        expect(got.map((f) => f.bytes.toString('hex'))).toEqual(encoded.map((e) => e.toString('hex')));
        expect(got.map((f) => f.fds)).toEqual(want);
      }),
      { numRuns: 100, seed: 7 },
    );
  });

  test('fds go to the last message that starts in their chunk, else to the next one to start', () => {
    const a = encodeMessage(rread);
    const b = encodeMessage(rwrite);
    const c = encodeMessage(reset);
    const r = new FrameReader(fds4);
    r.push(Buffer.concat([a, b.subarray(0, 10)]), [10]); // a and b start here: b, the last
    r.push(b.subarray(10, 20), [11]); // inside b: goes to c
    r.push(Buffer.concat([b.subarray(20), c]), [12]); // c starts here too
    r.push(Buffer.alloc(0), [13]); // after c: the next message
    const got = drain(r);
    expect(got.map((f) => f.fds)).toEqual([[], [10], [11, 12]]);
    const d = encodeMessage(irqsNone);
    r.push(d);
    expect(drain(r).map((f) => f.fds)).toEqual([[13]]);
    // A chunk starting exactly at a message boundary.
    const r2 = new FrameReader();
    r2.push(a);
    r2.push(b, [20]);
    expect(drain(r2).map((f) => f.fds)).toEqual([[], [20]]);
    // A message whose header has only begun in the chunk starts there all the same.
    const r3 = new FrameReader(fds4);
    r3.push(Buffer.concat([a, c.subarray(0, 4)]), [30]);
    r3.push(c.subarray(4));
    expect(drain(r3).map((f) => f.fds)).toEqual([[], [30]]);
  });

  test('an oversize header is refused as soon as its size field arrives, and nothing after it is buffered', () => {
    const good = encodeMessage(rread);
    const bad = Buffer.from(encodeMessage(reset));
    bad.writeUInt32LE(0x7fffffff, 4);
    const r = new FrameReader();
    r.push(Buffer.concat([good, bad.subarray(0, 8)]));
    expect(r.buffered).toBe(good.length);
    r.push(Buffer.alloc(1 << 16), [5]);
    expect(r.buffered).toBe(good.length);
    expect(r.next()?.bytes.equals(good)).toBe(true);
    let err: unknown;
    try {
      r.next();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProtocolViolation);
    expect((err as ProtocolViolation).field).toBe('msg_size');
    expect((err as ProtocolViolation).offset).toBe(4);
    expect((err as ProtocolViolation).message).toContain(`stream offset ${good.length}`);
    expect(() => r.next()).toThrow(ProtocolViolation);
    expect(r.buffered).toBe(0);
  });

  test('a size below the header, and the limits of the reader', () => {
    const r = new FrameReader();
    r.push(hexb('0100 0d00 08000000'));
    expect(() => r.next()).toThrow(/msg_size at byte 4: expected at least 16.*stream offset 0/);
    const r2 = new FrameReader({ ...DEFAULT_LIMITS, maxMessage: 40 });
    r2.push(encodeMessage(rread)); // 32 bytes: fine
    r2.push(encodeMessage({ ...rwrite, body: { offset: 0n, region: 0, count: 32, data: new Uint8Array(32) } } as Message));
    expect(r2.next()).not.toBeNull();
    expect(() => r2.next()).toThrow(/at most 40.*stream offset 32/);
  });
});

// ---------------------------------------------------------------------------
// (e) Fuzz: nothing but ProtocolViolation, and what decodes re-encodes to itself

const onlyViolations = (b: Uint8Array, fds: number[], limits: Limits = WIDE): void => {
  let m: Message;
  try {
    m = decodeMessage(b, fds, limits);
  } catch (e) {
    if (!(e instanceof ProtocolViolation)) throw e;
    expect(e.offset).toBeGreaterThanOrEqual(0);
    expect(e.offset).toBeLessThanOrEqual(Math.max(b.length, 16));
    return;
  }
  // A message that decodes is a message the codec can write again (a departure read past is not written again).
  const { departure: _, ...plain } = m as Message & { departure?: unknown };
  expect(decodeMessage(encodeMessage(plain as Message), m.fds, limits)).toEqual(plain);
};

test.describe('fuzz', () => {
  test('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(4), (b, nfds) => onlyViolations(b, Array.from({ length: nfds }, (_, k) => 3 + k))),
      { numRuns: 3000, seed: 1 },
    );
  });

  test('random headers with a consistent size over random payloads', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 18 }), fc.constantFrom(0, 1, 0x10, 0x21), fc.uint8Array({ maxLength: 160 }), fc.nat(3), (cmd, flags, payload, nfds) => {
        const b = Buffer.alloc(16 + payload.length);
        b.writeUInt16LE(cmd, 2);
        b.writeUInt32LE(b.length, 4);
        b.writeUInt32LE(flags, 8);
        b.set(payload, 16);
        onlyViolations(b, Array.from({ length: nfds }, (_, k) => 3 + k));
      }),
      { numRuns: 3000, seed: 2 },
    );
  });

  test('mutations of valid messages', () => {
    const mutation = fc.oneof(
      fc.record({ k: fc.constant('byte' as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ k: fc.constant('bit' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ k: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ k: fc.constant('grow' as const), n: fc.integer({ min: 1, max: 48 }), v: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ k: fc.constant('u32' as const), at: fc.nat(), v: fc.constantFrom(0, 1, 7, 8, 0xff, 0x7fffffff, 0xffffffff) }),
      fc.record({ k: fc.constant('fds' as const), n: fc.integer({ min: 0, max: 5 }) }),
    );
    fc.assert(
      fc.property(anyValid, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), (m, muts, fixSize) => {
        let b = Buffer.from(encodeMessage(m));
        let fds = m.fds;
        for (const x of muts) {
          if (x.k === 'byte') b[x.at % b.length] = x.v;
          else if (x.k === 'bit') b[x.at % b.length] ^= 1 << x.bit;
          else if (x.k === 'cut') b = b.subarray(0, x.at % (b.length + 1));
          else if (x.k === 'grow') b = Buffer.concat([b, Buffer.alloc(x.n, x.v)]);
          else if (x.k === 'u32' && b.length >= 4) b.writeUInt32LE(x.v, (x.at % (b.length - 3)) & ~3);
          else if (x.k === 'fds') fds = Array.from({ length: x.n }, (_, k) => 3 + k);
        }
        if (fixSize && b.length >= 8) b.writeUInt32LE(b.length, 4);
        onlyViolations(b, fds);
      }),
      { numRuns: 4000, seed: 3 },
    );
  });

  test('random streams through the FrameReader', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const r = new FrameReader({ ...DEFAULT_LIMITS, maxMessage: 4096 });
        try {
          for (const c of chunks) {
            r.push(c, [1]);
            for (let f = r.next(); f !== null; f = r.next()) onlyViolations(f.bytes, f.fds);
          }
        } catch (e) {
          if (!(e instanceof ProtocolViolation)) throw e;
        }
        expect(r.buffered).toBeLessThanOrEqual(4096 + 64 * 8);
      }),
      { numRuns: 1500, seed: 4 },
    );
  });
});

// ---------------------------------------------------------------------------
// Negotiation and summaries

test('negotiatedLimits: the smaller of both sides, the defaults where a side says nothing ("Version")', () => {
  expect(negotiatedLimits({}, {})).toEqual({ maxMsgFds: 1, maxDataXferSize: 1 << 20, maxMessage: (1 << 20) + 4096 });
  expect(negotiatedLimits({ maxMsgFds: 16, maxDataXferSize: 1 << 24 }, { maxMsgFds: 8 })).toEqual({ maxMsgFds: 8, maxDataXferSize: 1 << 20, maxMessage: (1 << 20) + 4096 });
  expect(negotiatedLimits({ maxMsgFds: 16, maxDataXferSize: 1 << 24 }, { maxMsgFds: 32, maxDataXferSize: 1 << 22 })).toEqual({ maxMsgFds: 16, maxDataXferSize: 1 << 22, maxMessage: (1 << 22) + 4096 });
  expect(negotiatedLimits({ maxDataXferSize: 4096 }, {}).maxDataXferSize).toBe(4096);
  // Under the negotiated limits, a transfer one byte too long is refused.
  const l = negotiatedLimits({ maxDataXferSize: 4096 }, { maxDataXferSize: 8192 });
  expect(() => decodeMessage(encodeMessage({ ...rreadRep, body: { offset: 0n, region: 0, count: 4097, data: new Uint8Array(4097) } } as Message), [], l)).toThrow(/max_data_xfer_size/);
  expect(() => decodeMessage(encodeMessage({ ...rreadRep, body: { offset: 0n, region: 0, count: 4096, data: new Uint8Array(4096) } } as Message), [], l)).not.toThrow();
});

test('describeMessage: one line per message', () => {
  const lines = [
    describeMessage(rread),
    describeMessage(rreadRep),
    describeMessage({ ...rwrite, noReply: true } as Message),
    describeMessage(map),
    describeMessage(unmapAll),
    describeMessage(irqsFd),
    describeMessage(rinfoSparse),
    describeMessage(featSet),
    describeMessage({ command: 'VERSION', id: 0, reply: true, errno: 0, body: { major: 0, minor: 1, caps: { maxMsgFds: 8, twinSocket: { supported: true, fdIndex: 0 } } }, fds: [3] }),
    describeMessage({ command: 'DMA_MAP', id: 3, reply: true, errno: 22, body: null, fds: [] }),
    describeMessage({ command: 'DMA_MAP', id: 3, reply: true, errno: 0, error: true, body: null, fds: [] }),
  ];
  expect(lines).toEqual([
    '#1 REGION_READ region 0 offset 0x10 count 4',
    '#1 reply REGION_READ 4 bytes 0x04030201',
    '#1 REGION_WRITE region 0 offset 0x10 count 4 0x04030201 (no reply)',
    '#1 DMA_MAP address 0x10000 size 0x1000 RW fd offset 0x1000 +1 fd',
    '#1 DMA_UNMAP all',
    '#1 DEVICE_SET_IRQS irq 2 start 0 count 3 EVENTFD|TRIGGER +3 fds',
    '#1 reply DEVICE_GET_REGION_INFO region 0 size 0x4000 offset 0x0 flags 0xf sparse 1 +1 fd',
    '#1 DEVICE_FEATURE feature 2 SET 8 bytes',
    '#0 reply VERSION 0.1 max_msg_fds 8, twin_socket true fd 0 +1 fd',
    '#3 reply DMA_MAP error EINVAL(22)',
    '#3 reply DMA_MAP error errno(0)',
  ]);
  for (const l of lines) expect(l).not.toContain('\n');
});

test('encodeMessage refuses what no message can be', () => {
  expect(() => encodeMessage({ command: 'DMA_MAP', id: 1, reply: true, errno: 22, body: {} as never, fds: [] } as Message)).toThrow(TypeError);
  expect(() => encodeMessage({ command: 'REGION_READ', id: 1, reply: true, errno: 0, body: null, fds: [] })).toThrow(TypeError);
  expect(() => encodeMessage({ command: 'VERSION', id: 1, reply: false, noReply: false, body: { major: 0, minor: 0, caps: { other: { max_msg_fds: 1 } } }, fds: [] })).toThrow(TypeError);
  expect(() => encodeMessage({ command: 'REGION_WRITE_MULTI', id: 1, reply: false, noReply: false, body: { writes: [{ offset: 0n, region: 0, count: 9, data: new Uint8Array(9) }] }, fds: [] })).toThrow(RangeError);
});
