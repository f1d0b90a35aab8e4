/**
 * The operation description: every operation isoroot can issue, described
 * once. The trace codec, the printer, the generators and replay all derive
 * from this table; adding an operation here is the only way to add one.
 */
import fc from 'fast-check';
import { F, VIAS, optional, type Field } from './fields.ts';

/** Families of operations a target may support (declared in its capabilities). */
export const CAPABILITIES = ['config', 'mmio', 'pio', 'dma-map', 'dma-attach', 'dma', 'pasid', 'pasid-dma', 'emulator', 'hotplug', 'reset', 'root-reset', 'clock', 'region', 'vfio'] as const;
export type Capability = (typeof CAPABILITIES)[number];
/** The families of a PCI fabric's own operations: all but 'vfio', a kernel's user API over one, which generators treat apart. */
export const PCI_CAPABILITIES: readonly Capability[] = CAPABILITIES.filter((c) => c !== 'vfio');

/** The space a root routes an access through: its config space, memory, IO, or (for a device's DMA) the IOMMU's. */
export type RouteSpace = 'config' | 'memory' | 'io' | 'dma';

/**
 * What an operation is, declared once: every part of isoroot that asks
 * (the model, the adapters, the oracles, the coverage tracker) reads it
 * here instead of comparing kinds.
 */
export interface OpSpec<Fs extends Record<string, Field<unknown>>, N extends Capability = Capability, S extends RouteSpace | null = RouteSpace | null, D extends boolean = boolean> {
  /** One line for docs and --help. */
  doc: string;
  /** Its family: the capability a target declares to be given it. */
  needs: N;
  /** The space a root routes it through, when it is an access that a root routes (the misroute and collision oracles judge those). */
  space: S;
  /** It may make a device signal an interrupt: a bus read cannot (it has no side effect on a conforming device); anything else may (an unmask, a doorbell, a DMA done, a hot-plug event). */
  signals: boolean;
  /** It may remove a function or reset its pins, so an INTx line can drop without a pin changing (a reset, an unplug, a plug that replaces). */
  removesPins: boolean;
  /** Its effects reach functions it does not name (a reset, a hot-plug, the passing of time): whoever follows state per device looks at every device after it. */
  wide: boolean;
  /** Carrying it out is a dialogue with the target (a driver's work: IOMMU tables, a DMA engine, hot-plug, a machine reset), not one exchange that can be pipelined. */
  dialogue: D;
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

const spec = <Fs extends Record<string, Field<unknown>>, N extends Capability, S extends RouteSpace | null, D extends boolean>(s: OpSpec<Fs, N, S, D>): OpSpec<Fs, N, S, D> => s;
/** The defaults of an op that is neither a routed access nor a lifecycle event. */
const control = { space: null, signals: true, removesPins: false, wide: false, dialogue: false } as const;
const busRead = <S extends RouteSpace>(space: S) => ({ space, signals: false, removesPins: false, wide: false, dialogue: false }) as const;
const busWrite = <S extends RouteSpace>(space: S) => ({ space, signals: true, removesPins: false, wide: false, dialogue: false }) as const;
const driver = { space: null, signals: true, removesPins: false, wide: false, dialogue: true } as const;
const dmaAccess = { space: 'dma', signals: true, removesPins: false, wide: false, dialogue: true } as const;
const regionRead = { space: null, signals: false, removesPins: false, wide: false, dialogue: false } as const;
const lifecycle = { space: null, signals: true, removesPins: true, wide: true, dialogue: true } as const;

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
// Emulated devices issue no PASID-tagged request (QEMU's edu and iommu-testdev): a target offers tagged DMA apart.
const pasidField = onlyWith('pasid-dma', optional(F.int('PASID', 0, 0xfffff, [1, 2, 3, 0xfffff])));
/** How a PASID table entry is cleared (QEMU takes different paths for the two). */
const clearField = optional(F.oneOf(['present', 'zero'] as const));
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

/**
 * Linux VFIO's user API (linux/vfio.h, Documentation/driver-api/vfio.rst):
 * a device is named by its topology id, and its IOMMU group and the
 * group's file are the ones the kernel gives that device; containers are
 * numbered by the trace. IOVAs stay below 2^28, where edu's DMA engine
 * reaches (hw/misc/edu.c dma_mask).
 */
export const VFIO_CONTAINERS = 4;
export const VFIO_IOVA_MAX = 2 ** 28 - 1;
/** The bytes of user memory behind each container, which its DMA mappings take their pages from (VFIO_IOMMU_MAP_DMA vaddr). */
export const VFIO_BUFFER = 0x10000;
const containerField = F.int('container index', 0, VFIO_CONTAINERS - 1, [0, 1]);
const VFIO_IOVA_LIKELY = [0x0, 0x1000, 0x10000, 0x100000, 0x101000];
const vfioIova = F.hex('IOVA', VFIO_IOVA_MAX, VFIO_IOVA_LIKELY);
const vfioAccessFields = {
  dev: F.dev(),
  region: F.int('region index: 0-5 BARs, 6 ROM, 7 config space', 0, 8, [0, 0, 1, 7, 7]),
  offset: F.hex('offset in the region', 2 ** 32, [0, 0x4, 0x8, 0x10, 0x20, 0x3c, 0x40, 0xffc, 0x40000]),
  size: F.int('bytes', 1, 8, [1, 2, 4, 8]),
  via: F.oneOf(['pread', 'mmap'] as const),
};
const vfioAccessProblem = (o: { size: number; offset: number }): string | null =>
  ![1, 2, 4, 8].includes(o.size) ? 'size 1, 2, 4 or 8' : o.offset % o.size !== 0 ? `offset not aligned to size ${o.size}` : null;
const vfioAccessFix = <T extends { size: number; offset: number }>(o: T): T => {
  const size = [1, 2, 4, 8].includes(o.size) ? o.size : 4;
  return { ...o, size, offset: o.offset - (o.offset % size) };
};
const vfioRangeProblem = (o: { iova: number; size: number }): string | null => (o.iova + o.size > VFIO_IOVA_MAX + 1 ? 'iova + size within 2^28' : null);
const vfioRangeFix = <T extends { iova: number; size: number }>(o: T): T => (o.iova + o.size > VFIO_IOVA_MAX + 1 ? { ...o, iova: Math.max(0, VFIO_IOVA_MAX + 1 - o.size) } : o);
const vfio = { space: null, signals: false, removesPins: false, wide: false, dialogue: false } as const;
const vfioRead = { ...vfio, needs: 'vfio' } as const;

export const CATALOG = {
  'cfg.read': spec({ ...busRead('config'), doc: 'configuration read through ECAM or CF8/CFC', needs: 'config', reads: true, fields: cfgFields, problem: cfgProblem, fix: cfgFix }),
  'cfg.write': spec({ ...busWrite('config'),
    doc: 'configuration write through ECAM or CF8/CFC',
    needs: 'config',
    reads: false,
    fields: { ...cfgFields, value: F.value() },
    problem: (o) => cfgProblem(o) ?? valueFits(o),
    fix: (o) => valueFix(cfgFix(o)),
  }),
  'mmio.read': spec({ ...busRead('memory'),
    doc: "read in a root's memory space",
    needs: 'mmio',
    reads: true,
    fields: memFields,
    problem: accessProblem,
    fix: accessFix,
  }),
  'mmio.write': spec({ ...busWrite('memory'),
    doc: "write in a root's memory space",
    needs: 'mmio',
    reads: false,
    fields: { ...memFields, value: F.value() },
    problem: (o) => accessProblem(o) ?? valueFits(o),
    fix: (o) => valueFix(accessFix(o)),
  }),
  'pio.read': spec({ ...busRead('io'),
    doc: "read in a root's IO space",
    needs: 'pio',
    reads: true,
    fields: ioFields,
    problem: portProblem,
    fix: portFix,
  }),
  'pio.write': spec({ ...busWrite('io'),
    doc: "write in a root's IO space",
    needs: 'pio',
    reads: false,
    fields: { ...ioFields, value: F.value() },
    problem: (o) => portProblem(o) ?? valueFits(o),
    fix: (o) => valueFix(portFix(o)),
  }),
  'dma.map': spec({ ...driver,
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
  'dma.unmap': spec({ ...driver,
    doc: 'unmap an IOVA range of an IOMMU domain',
    needs: 'dma-map',
    reads: false,
    fields: { root: F.root(), domain: F.int('domain index', 0, 63, [0, 1]), iova: F.hex('IOVA', ADDR_MAX, IOVA_LIKELY), size: F.hex('bytes', 2 ** 40, [0x1000, 0x2000]) },
  }),
  // Apart from dma-map: a vfio-user device has one DMA space, which it cannot leave.
  'dma.attach': spec({ ...driver, doc: 'attach a device to an IOMMU domain', needs: 'dma-attach', reads: false, fields: { dev: F.dev(), domain: F.int('domain index', 0, 63, [0, 1]) } }),
  'dma.detach': spec({ ...driver, doc: 'detach a device from its IOMMU domain', needs: 'dma-attach', reads: false, fields: { dev: F.dev() } }),
  'dma.read': spec({ ...dmaAccess,
    doc: 'the device reads memory by DMA, optionally tagged with a PASID',
    needs: 'dma',
    reads: true,
    fields: { dev: F.dev(), iova: F.hex('IOVA', ADDR_MAX, IOVA_LIKELY), len: F.int('bytes', 1, 4096, [1, 4, 8, 64]), pasid: pasidField },
  }),
  'dma.write': spec({ ...dmaAccess,
    doc: 'the device writes memory by DMA, optionally tagged with a PASID',
    needs: 'dma',
    reads: false,
    fields: { dev: F.dev(), iova: F.hex('IOVA', ADDR_MAX, IOVA_LIKELY), data: F.bytes(4096), pasid: pasidField },
  }),
  'pasid.alloc': spec({ ...driver, doc: "allocate a PASID in the device's PASID context", needs: 'pasid', reads: true, fields: { dev: F.dev() } }),
  'pasid.free': spec({ ...driver,
    doc: "free a PASID of the device's PASID context (its entry cleared as pasid.unbind clears it)",
    needs: 'pasid',
    reads: false,
    fields: { dev: F.dev(), pasid: F.int('PASID', 0, 0xfffff, [1, 2]), clear: clearField },
  }),
  'pasid.bind': spec({ ...driver,
    doc: 'bind a PASID of the device to an IOMMU domain (its address space), through the stage of its tables given (VT-d scalable mode; default second)',
    needs: 'pasid',
    reads: false,
    fields: { dev: F.dev(), pasid: F.int('PASID', 0, 0xfffff, [1, 2]), domain: F.int('domain index', 0, 63, [0, 1]), stage: optional(F.oneOf(['second', 'first'] as const)) },
  }),
  'pasid.unbind': spec({ ...driver,
    doc: "unbind a PASID from the device; a PASID table's entry is cleared as `clear` says (its Present bit, or all of it; default present)",
    needs: 'pasid',
    reads: false,
    fields: { dev: F.dev(), pasid: F.int('PASID', 0, 0xfffff, [1, 2]), clear: clearField },
  }),
  'pasid.invalidate': spec({ ...driver,
    doc: 'IOTLB invalidation for a PASID of the device: all of it, or the page at `iova` (VT-d PASID-selective or page-selective)',
    needs: 'pasid',
    reads: false,
    fields: { dev: F.dev(), pasid: F.int('PASID', 0, 0xfffff, [1, 2]), iova: optional(F.hex('IOVA', ADDR_MAX, IOVA_LIKELY)) },
  }),
  'emu.map-bdf': spec({ ...control, doc: 'forward config accesses of one BDF to an emulator', needs: 'emulator', reads: false, fields: { root: F.root(), emulator: F.emulator(), bdf: F.bdf() } }),
  'emu.unmap-bdf': spec({ ...control, doc: 'stop forwarding one BDF to an emulator', needs: 'emulator', reads: false, fields: { root: F.root(), emulator: F.emulator(), bdf: F.bdf() } }),
  'emu.map-range': spec({ ...control,
    doc: 'forward an MMIO or IO range to an emulator',
    needs: 'emulator',
    reads: false,
    fields: rangeFields,
  }),
  'emu.unmap-range': spec({ ...control,
    doc: 'stop forwarding an MMIO or IO range',
    needs: 'emulator',
    reads: false,
    fields: rangeFields,
  }),
  'dev.plug': spec({ ...lifecycle, doc: 'hot-plug a device that the topology marks as not present', needs: 'hotplug', reads: false, fields: { dev: F.dev() } }),
  'dev.unplug': spec({ ...lifecycle, doc: 'hot-unplug a device', needs: 'hotplug', reads: false, fields: { dev: F.dev() } }),
  'dev.reset': spec({ ...lifecycle, doc: 'function-level reset of a device', needs: 'reset', reads: false, fields: { dev: F.dev() } }),
  'root.reset': spec({ ...lifecycle, doc: 'reset a whole root (every root that shares its host bridge, i.e. its config space)', needs: 'root-reset', reads: false, fields: { root: F.root() } }),
  'region.read': spec({ ...regionRead,
    doc: "read a device's region at an offset, as a VFIO user does (vfio-user REGION_READ): config space, or a BAR where it decodes; refused past the region's end or beyond REGION_XFER_MAX bytes",
    needs: 'region',
    reads: true,
    fields: regionFields({ count: F.int('bytes', 1, 2 * REGION_XFER_MAX, [1, 2, 4, 8, 64, REGION_XFER_MAX + 1]) }),
  }),
  'region.write': spec({ ...control,
    doc: "write a device's region at an offset, as a VFIO user does (vfio-user REGION_WRITE)",
    needs: 'region',
    reads: false,
    fields: regionFields({ data: F.bytes(REGION_XFER_MAX) }),
  }),
  'clock.step': spec({ ...control, wide: true, doc: 'advance virtual time (device timers fire)', needs: 'clock', reads: false, fields: { ns: F.int('nanoseconds', 1, CLOCK_STEP_MAX_NS, [1_000_000, 100_000_000]) } }),
  'vfio.bind': spec({ ...vfio,
    doc: "bind a device to vfio-pci, to its own kernel driver ('native'), or to none (sysfs driver_override, unbind, drivers_probe); the value is the driver bound after (0 none, 1 vfio-pci, 2 native)",
    needs: 'vfio',
    reads: true,
    fields: { dev: F.dev(), driver: F.oneOf(['vfio-pci', 'native', 'none'] as const) },
  }),
  'vfio.group.open': spec({ ...vfioRead, doc: "open the device's IOMMU group (/dev/vfio/N)", reads: false, fields: { dev: F.dev() } }),
  'vfio.group.close': spec({ ...vfioRead, doc: "close the device's group file", reads: false, fields: { dev: F.dev() } }),
  'vfio.group.status': spec({ ...vfioRead, doc: 'VFIO_GROUP_GET_STATUS of the device\'s open group: the value is its flags (1 viable, 2 container set)', reads: true, fields: { dev: F.dev() } }),
  'vfio.group.members': spec({ ...vfioRead,
    doc: "the devices of the device's IOMMU group, as sysfs lists them: the value's bit i is the topology's i-th device in walk order",
    reads: true,
    fields: { dev: F.dev() },
  }),
  'vfio.container.open': spec({ ...vfioRead, doc: 'open a container (/dev/vfio/vfio)', reads: false, fields: { container: containerField } }),
  'vfio.container.close': spec({ ...vfioRead, doc: 'close a container file', reads: false, fields: { container: containerField } }),
  'vfio.set-container': spec({ ...vfioRead, doc: "VFIO_GROUP_SET_CONTAINER: put the device's open group in a container", reads: false, fields: { dev: F.dev(), container: containerField } }),
  'vfio.unset-container': spec({ ...vfioRead, doc: "VFIO_GROUP_UNSET_CONTAINER: take the device's group out of its container", reads: false, fields: { dev: F.dev() } }),
  'vfio.set-iommu': spec({ ...vfioRead, doc: "VFIO_SET_IOMMU: the container's IOMMU model (type1 v2 or type1)", reads: false, fields: { container: containerField, type: F.oneOf(['type1v2', 'type1'] as const) } }),
  'vfio.device.open': spec({ ...vfioRead, doc: 'VFIO_GROUP_GET_DEVICE_FD: open the device through its group', reads: false, fields: { dev: F.dev() } }),
  'vfio.device.close': spec({ ...vfioRead, doc: "close the device's file", reads: false, fields: { dev: F.dev() } }),
  'vfio.device.info': spec({ ...vfioRead, doc: 'VFIO_DEVICE_GET_INFO: the value is its flags (1 PCI... 2 RESET) with the regions count above bit 32', reads: true, fields: { dev: F.dev() } }),
  'vfio.region.info': spec({ ...vfioRead,
    doc: 'VFIO_DEVICE_GET_REGION_INFO: the value is the size, with the flags (1 read, 2 write, 4 mmap) above bit 48',
    reads: true,
    fields: { dev: F.dev(), region: F.int('region index: 0-5 BARs, 6 ROM, 7 config space, 8 VGA', 0, 8, [0, 1, 6, 7]) },
  }),
  'vfio.region.read': spec({ ...vfioRead, doc: "read a device's region through its VFIO file (pread) or a mapping of it (mmap)", reads: true, fields: vfioAccessFields, problem: vfioAccessProblem, fix: vfioAccessFix }),
  'vfio.region.write': spec({ ...vfioRead,
    signals: true,
    doc: "write a device's region through its VFIO file (pread) or a mapping of it (mmap)",
    reads: false,
    fields: { ...vfioAccessFields, value: F.value() },
    problem: (o) => vfioAccessProblem(o) ?? valueFits(o),
    fix: (o) => valueFix(vfioAccessFix(o)),
  }),
  'vfio.dma.map': spec({ ...vfioRead,
    doc: "VFIO_IOMMU_MAP_DMA: map `size` bytes of the container's user memory from `offset` at an IOVA",
    reads: false,
    fields: { container: containerField, iova: vfioIova, size: F.hex('bytes', 0x10000, [0x1000, 0x2000]), offset: F.hex('offset in the user memory', VFIO_BUFFER - 0x1000, [0, 0x1000]), perm: F.oneOf(['rw', 'r', 'w'] as const) },
    problem: (o) => vfioRangeProblem(o) ?? (o.offset + o.size > VFIO_BUFFER ? `offset + size within the ${VFIO_BUFFER}-byte user memory` : null),
    fix: (o) => vfioRangeFix({ ...o, size: Math.min(o.size, VFIO_BUFFER), offset: Math.min(o.offset, VFIO_BUFFER - Math.min(o.size, VFIO_BUFFER)) }),
  }),
  'vfio.dma.unmap': spec({ ...vfioRead,
    doc: 'VFIO_IOMMU_UNMAP_DMA: the value is the bytes unmapped',
    reads: true,
    fields: { container: containerField, iova: vfioIova, size: F.hex('bytes', 0x10000, [0x1000, 0x2000]) },
    problem: vfioRangeProblem,
    fix: vfioRangeFix,
  }),
  'vfio.reset': spec({ ...vfioRead, signals: true, doc: 'VFIO_DEVICE_RESET of an open device', reads: false, fields: { dev: F.dev() } }),
  'vfio.dma': spec({ ...vfioRead,
    signals: true,
    dialogue: true,
    doc: "edu's DMA engine, driven through its open device's BAR, writes `len` bytes of its buffer at the IOVA; the value is the containers whose memory it reached (bit c for container c)",
    reads: true,
    // 4096, edu's whole buffer, is drawn no more than any other length: Debian's QEMU 7.2 stops on it (corpora/vfio-guest
    // edu-full-buffer-dma-hw-error), and each time costs a guest's boot.
    fields: { dev: F.dev(), iova: vfioIova, len: F.int('bytes', 1, 4096, [4, 64, 4095]) },
    problem: (o) => (o.iova + o.len > VFIO_IOVA_MAX + 1 ? 'iova + len within 2^28' : null),
    fix: (o) => (o.iova + o.len > VFIO_IOVA_MAX + 1 ? { ...o, iova: VFIO_IOVA_MAX + 1 - o.len } : o),
  }),
} as const;

export type OpKind = keyof typeof CATALOG;
export const OP_KINDS = Object.keys(CATALOG) as OpKind[];

type SpecOf<K extends OpKind> = (typeof CATALOG)[K];
type FieldsOf<K extends OpKind> = SpecOf<K> extends OpSpec<infer Fs> ? FieldValues<Fs> : never;

/** One operation: its kind in `op` and the fields its description declares. */
export type Op = { [K in OpKind]: { op: K } & FieldsOf<K> }[OpKind];
export type OpOf<K extends OpKind> = Extract<Op, { op: K }>;

export const specOf = (k: OpKind): OpSpec<Record<string, Field<unknown>>> => CATALOG[k] as unknown as OpSpec<Record<string, Field<unknown>>>;

/** The kinds of one family (the capability they need). */
export type KindsNeeding<C extends Capability> = { [K in OpKind]: SpecOf<K>['needs'] extends C ? K : never }[OpKind];
/** The kinds a root routes through one space. */
export type KindsRoutedIn<S extends RouteSpace> = { [K in OpKind]: SpecOf<K>['space'] extends S ? K : never }[OpKind];

/** Whether an op belongs to a family, as the catalog says; narrows it to that family's ops. */
export const needs = <C extends Capability>(op: Op, c: C): op is OpOf<KindsNeeding<C>> => CATALOG[op.op].needs === c;
/** The space a root routes an op through, or null when it is not a routed access. */
export const routeSpace = (op: Op): RouteSpace | null => CATALOG[op.op].space;
/** Whether a root routes an op through one space; narrows it to those ops. */
export const routedIn = <S extends RouteSpace>(op: Op, s: S): op is OpOf<KindsRoutedIn<S>> => CATALOG[op.op].space === s;
/** A routed access: config, memory, IO, or a device's DMA. */
export const isRouted = (op: Op): op is OpOf<KindsRoutedIn<RouteSpace>> => CATALOG[op.op].space !== null;
/** The property flags of an op, as its description declares them. */
export const reads = (op: Op): boolean => CATALOG[op.op].reads;
export const maySignal = (op: Op): boolean => CATALOG[op.op].signals;
export const mayRemovePins = (op: Op): boolean => CATALOG[op.op].removesPins;
export const isWide = (op: Op): boolean => CATALOG[op.op].wide;
/** The kinds whose execution is a dialogue with the target, and the others (one exchange each, which a target may pipeline). */
export type DialogueKind = { [K in OpKind]: SpecOf<K>['dialogue'] extends true ? K : never }[OpKind];
export type ExchangeKind = Exclude<OpKind, DialogueKind>;
export const isDialogue = (op: Op): op is OpOf<DialogueKind> => CATALOG[op.op].dialogue;
/** The value a write carries (config, memory or IO), or null for any other op. */
export const writeValue = (op: Op): bigint | null => ('value' in op ? op.value : null);
