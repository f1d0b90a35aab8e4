/**
 * The operation description: every operation isoroot can issue, described
 * once. The trace codec, the printer, the generators and replay all derive
 * from this table; adding an operation here is the only way to add one.
 */
import fc from 'fast-check';
import { F, VIAS, optional, type Field } from './fields.ts';

/** Families of operations a target may support (declared in its capabilities). */
export const CAPABILITIES = ['config', 'mmio', 'pio', 'dma-map', 'dma-attach', 'dma', 'pasid', 'emulator', 'hotplug', 'reset', 'root-reset', 'clock', 'region'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export interface OpSpec<Fs extends Record<string, Field<unknown>>> {
  /** One line for docs and --help. */
  doc: string;
  needs: Capability;
  fields: Fs;
  /** Cross-field rule; returns what is wrong, or null. */
  problem?: (o: FieldValues<Fs>) => string | null;
  /** Coerces generated values into a valid op (the generator's half of `problem`). */
  fix?: (o: FieldValues<Fs>) => FieldValues<Fs>;
  /** True when the observation carries a value or data the model predicts. */
  reads: boolean;
}

type Req<Fs> = { [K in keyof Fs as Fs[K] extends Field<unknown, false> ? K : never]: Fs[K] extends Field<infer T, false> ? T : never };
type Opt<Fs> = { [K in keyof Fs as Fs[K] extends Field<unknown, true> ? K : never]?: Fs[K] extends Field<infer T, true> ? T : never };
export type FieldValues<Fs> = Req<Fs> & Opt<Fs>;

const spec = <Fs extends Record<string, Field<unknown>>>(s: OpSpec<Fs>): OpSpec<Fs> => s;

const sizeMask = (size: number): bigint => (1n << BigInt(8 * size)) - 1n;
const REG_LIKELY = [0x00, 0x04, 0x06, 0x0c, 0x0e, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30, 0x34, 0x3c, 0x40, 0x42, 0x44, 0x50, 0x100, 0x104, 0x106];

const cfgFields = { root: F.root(), via: F.oneOf(VIAS, (d) => d.vias), bdf: F.bdf(), reg: F.hex('register offset', 0xfff, REG_LIKELY), size: F.int('bytes', 1, 4, [1, 2, 4]) };
const cfgProblem = (o: { via: string; reg: number; size: number }): string | null =>
  o.size === 3 ? 'size 1, 2 or 4' : o.reg % o.size !== 0 ? `reg ${o.reg} not aligned to size ${o.size}` : o.via === 'cf8' && o.reg > 0xff ? 'CF8/CFC reaches registers 0x00..0xff only' : null;
const cfgFix = <T extends { via: string; reg: number; size: number }>(o: T): T => {
  const size = o.size === 3 ? 4 : o.size;
  const reg = (o.via === 'cf8' ? o.reg & 0xff : o.reg) & ~(size - 1);
  return { ...o, size, reg };
};

const ADDR_MAX = 2 ** 52 - 1;
const ADDR_LIKELY = [0x0, 0x1000, 0xb0000000, 0xc0000000, 0xc0001000, 0xe0000000, 0xfebf0000, 0x100000000];
const memFields = { root: F.root(), addr: F.hex('address', ADDR_MAX, ADDR_LIKELY), size: F.int('bytes', 1, 8, [1, 2, 4, 8]) };
const ioFields = { root: F.root(), port: F.hex('port', 0xffff, [0xcf8, 0xcfc, 0x1000, 0xc000]), size: F.int('bytes', 1, 4, [1, 2, 4]) };
const accessProblem = (o: { addr: number; size: number }): string | null =>
  ![1, 2, 4, 8].includes(o.size) ? 'size 1, 2, 4 or 8' : o.addr % o.size !== 0 ? `address not aligned to size ${o.size}` : null;
const accessFix = <T extends { addr: number; size: number }>(o: T): T => {
  const size = [1, 2, 4, 8].includes(o.size) ? o.size : 4;
  return { ...o, size, addr: o.addr - (o.addr % size) };
};
const portProblem = (o: { port: number; size: number }): string | null =>
  o.size === 3 ? 'size 1, 2 or 4' : o.port % o.size !== 0 ? `port not aligned to size ${o.size}` : null;
const portFix = <T extends { port: number; size: number }>(o: T): T => {
  const size = o.size === 3 ? 4 : o.size;
  return { ...o, size, port: o.port & ~(size - 1) };
};
const valueFits = (o: { size: number; value: bigint }): string | null => (o.value > sizeMask(o.size) ? `value wider than ${o.size} bytes` : null);
const valueFix = <T extends { size: number; value: bigint }>(o: T): T => ({ ...o, value: o.value & sizeMask(o.size) });

const rangeFields = { root: F.root(), emulator: F.emulator(), space: F.oneOf(['mmio', 'pio'] as const), start: F.hex('start', ADDR_MAX, [0xc0000000, 0x1000]), size: F.hex('bytes', 2 ** 40, [0x1000, 0x100]) };
const IOVA_LIKELY = [0x0, 0x1000, 0x10000, 0x100000, 0x40000, 0x7fff000];
/** An optional field that only targets with `cap` get generated values for (the PASID tag of a DMA). */
const onlyWith = <T>(cap: Capability, f: Field<T, true>): Field<T, true> => ({ ...f, arb: (d) => (d.ops.includes(cap) ? f.arb(d) : fc.constant(undefined as T)) });
const pasidField = onlyWith('pasid', optional(F.int('PASID', 0, 0xfffff, [1, 2, 3, 0xfffff])));
/**
 * The most bytes one region access moves: a vfio-user client offers this
 * as its max_data_xfer_size, so that a larger read is one a conforming
 * server refuses ("Version": max_data_xfer_size).
 */
export const REGION_XFER_MAX = 4096;
/** VFIO's PCI region indexes: BARs 0-5, ROM 6, config 7, VGA 8 (linux/vfio.h). */
const regionFields = <X extends Record<string, Field<unknown>>>(x: X) => ({
  dev: F.dev(),
  region: F.int('region index: 0-5 BARs, 6 ROM, 7 config space, 8 VGA', 0, 8, [0, 1, 2, 6, 7, 7]),
  offset: F.hex('offset in the region', 2 ** 32, [0, 0x10, 0xfc, 0x100, 0xffc, 0x1000, 0x1ffc, 0x2000, 0x3ffc, 0x4000]),
  ...x,
});
/** The longest virtual time one clock.step advances, in nanoseconds (10 s). */
export const CLOCK_STEP_MAX_NS = 10_000_000_000;

export const CATALOG = {
  'cfg.read': spec({ doc: 'configuration read through ECAM or CF8/CFC', needs: 'config', reads: true, fields: cfgFields, problem: cfgProblem, fix: cfgFix }),
  'cfg.write': spec({
    doc: 'configuration write through ECAM or CF8/CFC',
    needs: 'config',
    reads: false,
    fields: { ...cfgFields, value: F.value() },
    problem: (o) => cfgProblem(o) ?? valueFits(o),
    fix: (o) => valueFix(cfgFix(o)),
  }),
  'mmio.read': spec({
    doc: "read in a root's memory space",
    needs: 'mmio',
    reads: true,
    fields: memFields,
    problem: accessProblem,
    fix: accessFix,
  }),
  'mmio.write': spec({
    doc: "write in a root's memory space",
    needs: 'mmio',
    reads: false,
    fields: { ...memFields, value: F.value() },
    problem: (o) => accessProblem(o) ?? valueFits(o),
    fix: (o) => valueFix(accessFix(o)),
  }),
  'pio.read': spec({
    doc: "read in a root's IO space",
    needs: 'pio',
    reads: true,
    fields: ioFields,
    problem: portProblem,
    fix: portFix,
  }),
  'pio.write': spec({
    doc: "write in a root's IO space",
    needs: 'pio',
    reads: false,
    fields: { ...ioFields, value: F.value() },
    problem: (o) => portProblem(o) ?? valueFits(o),
    fix: (o) => valueFix(portFix(o)),
  }),
  'dma.map': spec({
    doc: 'map an IOVA range of an IOMMU domain to guest-physical memory',
    needs: 'dma-map',
    reads: false,
    fields: {
      root: F.root(),
      domain: F.int('domain index', 0, 63, [0, 1]),
      iova: F.hex('IOVA', ADDR_MAX, IOVA_LIKELY),
      size: F.hex('bytes', 2 ** 40, [0x1000, 0x2000, 0x10000]),
      gpa: F.hex('guest-physical address', ADDR_MAX, [0x0, 0x1000, 0x100000]),
      perm: F.oneOf(['r', 'w', 'rw'] as const),
    },
  }),
  'dma.unmap': spec({
    doc: 'unmap an IOVA range of an IOMMU domain',
    needs: 'dma-map',
    reads: false,
    fields: { root: F.root(), domain: F.int('domain index', 0, 63, [0, 1]), iova: F.hex('IOVA', ADDR_MAX, IOVA_LIKELY), size: F.hex('bytes', 2 ** 40, [0x1000, 0x2000]) },
  }),
  // Apart from dma-map: a vfio-user device has one DMA space, which it cannot leave.
  'dma.attach': spec({ doc: 'attach a device to an IOMMU domain', needs: 'dma-attach', reads: false, fields: { dev: F.dev(), domain: F.int('domain index', 0, 63, [0, 1]) } }),
  'dma.detach': spec({ doc: 'detach a device from its IOMMU domain', needs: 'dma-attach', reads: false, fields: { dev: F.dev() } }),
  'dma.read': spec({
    doc: 'the device reads memory by DMA, optionally tagged with a PASID',
    needs: 'dma',
    reads: true,
    fields: { dev: F.dev(), iova: F.hex('IOVA', ADDR_MAX, IOVA_LIKELY), len: F.int('bytes', 1, 4096, [1, 4, 8, 64]), pasid: pasidField },
  }),
  'dma.write': spec({
    doc: 'the device writes memory by DMA, optionally tagged with a PASID',
    needs: 'dma',
    reads: false,
    fields: { dev: F.dev(), iova: F.hex('IOVA', ADDR_MAX, IOVA_LIKELY), data: F.bytes(4096), pasid: pasidField },
  }),
  'pasid.alloc': spec({ doc: "allocate a PASID in the device's PASID context", needs: 'pasid', reads: true, fields: { dev: F.dev() } }),
  'pasid.free': spec({ doc: "free a PASID of the device's PASID context", needs: 'pasid', reads: false, fields: { dev: F.dev(), pasid: F.int('PASID', 0, 0xfffff, [1, 2]) } }),
  'pasid.bind': spec({
    doc: 'bind a PASID of the device to an IOMMU domain (its address space)',
    needs: 'pasid',
    reads: false,
    fields: { dev: F.dev(), pasid: F.int('PASID', 0, 0xfffff, [1, 2]), domain: F.int('domain index', 0, 63, [0, 1]) },
  }),
  'pasid.unbind': spec({ doc: 'unbind a PASID from the device', needs: 'pasid', reads: false, fields: { dev: F.dev(), pasid: F.int('PASID', 0, 0xfffff, [1, 2]) } }),
  'pasid.invalidate': spec({ doc: 'PASID-based IOTLB invalidation for the device', needs: 'pasid', reads: false, fields: { dev: F.dev(), pasid: F.int('PASID', 0, 0xfffff, [1, 2]) } }),
  'emu.map-bdf': spec({ doc: 'forward config accesses of one BDF to an emulator', needs: 'emulator', reads: false, fields: { root: F.root(), emulator: F.emulator(), bdf: F.bdf() } }),
  'emu.unmap-bdf': spec({ doc: 'stop forwarding one BDF to an emulator', needs: 'emulator', reads: false, fields: { root: F.root(), emulator: F.emulator(), bdf: F.bdf() } }),
  'emu.map-range': spec({
    doc: 'forward an MMIO or IO range to an emulator',
    needs: 'emulator',
    reads: false,
    fields: rangeFields,
  }),
  'emu.unmap-range': spec({
    doc: 'stop forwarding an MMIO or IO range',
    needs: 'emulator',
    reads: false,
    fields: rangeFields,
  }),
  'dev.plug': spec({ doc: 'hot-plug a device that the topology marks as not present', needs: 'hotplug', reads: false, fields: { dev: F.dev() } }),
  'dev.unplug': spec({ doc: 'hot-unplug a device', needs: 'hotplug', reads: false, fields: { dev: F.dev() } }),
  'dev.reset': spec({ doc: 'function-level reset of a device', needs: 'reset', reads: false, fields: { dev: F.dev() } }),
  'root.reset': spec({ doc: 'reset a whole root (every root that shares its host bridge, i.e. its config space)', needs: 'root-reset', reads: false, fields: { root: F.root() } }),
  'region.read': spec({
    doc: "read a device's region at an offset, as a VFIO user does (vfio-user REGION_READ): config space, or a BAR where it decodes; refused past the region's end or beyond REGION_XFER_MAX bytes",
    needs: 'region',
    reads: true,
    fields: regionFields({ count: F.int('bytes', 1, 2 * REGION_XFER_MAX, [1, 2, 4, 8, 64, REGION_XFER_MAX + 1]) }),
  }),
  'region.write': spec({
    doc: "write a device's region at an offset, as a VFIO user does (vfio-user REGION_WRITE)",
    needs: 'region',
    reads: false,
    fields: regionFields({ data: F.bytes(REGION_XFER_MAX) }),
  }),
  'clock.step': spec({ doc: 'advance virtual time (device timers fire)', needs: 'clock', reads: false, fields: { ns: F.int('nanoseconds', 1, CLOCK_STEP_MAX_NS, [1_000_000, 100_000_000]) } }),
} as const;

export type OpKind = keyof typeof CATALOG;
export const OP_KINDS = Object.keys(CATALOG) as OpKind[];

type SpecOf<K extends OpKind> = (typeof CATALOG)[K];
type FieldsOf<K extends OpKind> = SpecOf<K> extends OpSpec<infer Fs> ? FieldValues<Fs> : never;

/** One operation: its kind in `op` and the fields its description declares. */
export type Op = { [K in OpKind]: { op: K } & FieldsOf<K> }[OpKind];
export type OpOf<K extends OpKind> = Extract<Op, { op: K }>;

export const specOf = (k: OpKind): OpSpec<Record<string, Field<unknown>>> => CATALOG[k] as unknown as OpSpec<Record<string, Field<unknown>>>;
