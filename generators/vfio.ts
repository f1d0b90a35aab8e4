/**
 * Topologies and sequences for Linux's VFIO (a target whose ops are the
 * 'vfio' family): the PCI shapes that decide IOMMU groups (root ports
 * with and without ACS, PCIe-to-PCI and conventional bridges, functions
 * sharing a slot, expander roots), with a device a kernel driver holds,
 * and sequences of a VFIO user's work on them: assigning groups to
 * containers, mapping, DMA, unmapping, resets, and the misuses the kernel
 * must refuse (a second open, a second container, a driver coming back).
 */
import fc from 'fast-check';
import type { Op } from '../harness/ops/catalog.ts';
import { VFIO_BUFFER, VFIO_CONTAINERS } from '../harness/ops/catalog.ts';
import { walkDevices, type DeviceSpec, type RootSpec, type Topology } from '../harness/topology/types.ts';
import type { GenConstraints } from './constraints.ts';

type Leaf = 'edu' | 'pci-testdev' | 'rng';
const leafArb: fc.Arbitrary<Leaf> = fc.constantFrom<Leaf>('edu', 'edu', 'pci-testdev', 'rng');
type Shape =
  | { kind: 'port'; acs: boolean; below: Leaf | { bridge: 'pcie-pci-bridge' | 'pci-bridge'; leaves: Leaf[] } }
  | { kind: 'leaf'; leaf: Leaf }
  | { kind: 'pair'; leaves: [Leaf, Leaf] }
  | { kind: 'bridge'; bridge: 'pcie-pci-bridge' | 'pci-bridge'; leaves: Leaf[] };

const bridgeArb = fc.constantFrom('pcie-pci-bridge' as const, 'pci-bridge' as const);
const shapeArb = (acsOptional: boolean): fc.Arbitrary<Shape> => fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('port' as const), acs: acsOptional ? fc.boolean() : fc.constant(true), below: fc.oneof(leafArb, fc.record({ bridge: bridgeArb, leaves: fc.array(leafArb, { minLength: 1, maxLength: 3 }) })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leaf' as const), leaf: leafArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pair' as const), leaves: fc.tuple(leafArb, leafArb) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bridge' as const), bridge: bridgeArb, leaves: fc.array(leafArb, { minLength: 1, maxLength: 3 }) }) },
);

export function vfioTopologyArb(c: GenConstraints): fc.Arbitrary<Topology> {
  return fc
    .record({ main: fc.array(shapeArb(c.acsOptional), { minLength: 1, maxLength: 5 }), expanders: fc.array(fc.array(c.acsOptional ? fc.boolean() : fc.constant(true), { minLength: 1, maxLength: 2 }), { maxLength: Math.min(2, c.maxRoots - 1) }) })
    .map(({ main, expanders }) => {
      let n = 0;
      const id = (p: string): string => `${p}${n++}`;
      const leaf = (l: Leaf, slot: number, fn = 0): DeviceSpec =>
        l === 'rng' ? { id: id('rng'), kind: 'opaque', qdev: 'virtio-rng-pci', slot, fn } : { id: id(l === 'edu' ? 'edu' : 'td'), kind: l, slot, fn };
      const below = (bridge: 'pcie-pci-bridge' | 'pci-bridge', leaves: Leaf[], slot: number): DeviceSpec => ({ id: id(bridge === 'pci-bridge' ? 'pb' : 'p2p'), kind: 'bridge', qdev: bridge, slot, fn: 0, children: leaves.map((l, i) => leaf(l, i + 1)) });
      const devices: DeviceSpec[] = [];
      main.forEach((s, i) => {
        const slot = 3 + i;
        if (s.kind === 'leaf') devices.push(leaf(s.leaf, slot));
        else if (s.kind === 'pair') devices.push(leaf(s.leaves[0], slot, 0), leaf(s.leaves[1], slot, 1));
        else if (s.kind === 'bridge') devices.push(below(s.bridge, s.leaves, slot));
        else devices.push({ id: id('rp'), kind: 'root-port', slot, fn: 0, ...(s.acs ? {} : { acs: false }), children: [typeof s.below === 'string' ? leaf(s.below, 0) : below(s.below.bridge, s.below.leaves, 0)] });
      });
      const roots: RootSpec[] = [{ bus: 0, busLimit: 0x3f, devices }];
      // An expander's root ports each lead to one endpoint (a bridge there would take Linux's SHPC driver, which holds it).
      expanders.forEach((ports, r) => {
        roots.push({ bus: 0x40 + 0x20 * r, busLimit: 0x5f + 0x20 * r, devices: ports.map((acs, i) => ({ id: id('xrp'), kind: 'root-port' as const, slot: i, fn: 0, ...(acs ? {} : { acs: false }), children: [{ id: id('edu'), kind: 'edu' as const, slot: 0, fn: 0 }] })) });
      });
      return c.prepare({ roots });
    });
}

/** The devices a VFIO user may take (endpoints), and the ones a kernel driver holds at boot. */
function endpoints(t: Topology): { all: string[]; edus: string[]; known: string[] } {
  const all: string[] = [];
  const edus: string[] = [];
  const known: string[] = [];
  for (const { dev } of walkDevices(t)) {
    if (dev.builtin === true || dev.kind === 'root-port' || dev.kind === 'bridge') continue;
    all.push(dev.id);
    if (dev.kind === 'edu') edus.push(dev.id);
    if (dev.kind !== 'opaque') known.push(dev.id);
  }
  return { all, edus, known };
}

const PAGE = 0x1000;

/** A device's group assigned to a container, as a VFIO user does it (Documentation/driver-api/vfio.rst's example), and the device opened. */
function assigned(d: string, c: number, type: 'type1v2' | 'type1', open: boolean): Op[] {
  return [
    { op: 'vfio.bind', dev: d, driver: 'vfio-pci' },
    { op: 'vfio.group.open', dev: d },
    { op: 'vfio.container.open', container: c },
    { op: 'vfio.set-container', dev: d, container: c },
    { op: 'vfio.set-iommu', container: c, type },
    ...(open ? [{ op: 'vfio.device.open', dev: d } as Op] : []),
  ];
}
const pageArb = fc.integer({ min: 0, max: 0x1ff }).map((p) => 0x100000 + p * PAGE);

export function vfioSequenceArb(t: Topology): fc.Arbitrary<Op[]> {
  const { all, edus, known } = endpoints(t);
  if (all.length === 0) return fc.constant([]);
  const dev = fc.constantFrom(...all);
  // Region accesses go to devices whose regions the model knows (edu, pci-testdev), not to virtio's.
  const regionDev = known.length > 0 ? fc.constantFrom(...known) : null;
  const edu = edus.length > 0 ? fc.constantFrom(...edus) : dev;
  const container = fc.integer({ min: 0, max: VFIO_CONTAINERS - 1 });
  const assign = fc.tuple(dev, container, fc.constantFrom('type1v2' as const, 'type1v2' as const, 'type1' as const), fc.boolean()).map(([d, c, type, open]) => assigned(d, c, type, open));
  const map = fc.tuple(container, pageArb, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: VFIO_BUFFER / PAGE - 4 }), fc.constantFrom('rw' as const, 'rw' as const, 'r' as const, 'w' as const)).map(([c, iova, pages, off, perm]): Op[] => [{ op: 'vfio.dma.map', container: c, iova, size: pages * PAGE, offset: off * PAGE, perm }]);
  const unmap = fc.tuple(container, pageArb, fc.integer({ min: 1, max: 4 })).map(([c, iova, pages]): Op[] => [{ op: 'vfio.dma.unmap', container: c, iova, size: pages * PAGE }]);
  const dma = fc.tuple(edu, pageArb, fc.integer({ min: -8, max: 0x1fff }), fc.integer({ min: 1, max: 4095 })).map(([d, page, delta, len]): Op[] => [{ op: 'vfio.dma', dev: d, iova: Math.max(0, page + delta), len }]);
  const look = fc.tuple(dev, regionDev ?? dev, fc.integer({ min: 0, max: 8 })).map(([d, rd, region]): Op[] => [{ op: 'vfio.group.members', dev: d }, { op: 'vfio.group.status', dev: d }, { op: 'vfio.device.info', dev: d }, ...(regionDev === null ? [] : [{ op: 'vfio.region.info', dev: rd, region } as Op])]);
  // Region accesses where the kernel answers for itself: identity and edu's own registers, never edu's DMA registers (0x80+:
  // a bad range there stops QEMU, hw/misc/edu.c edu_check_range, which is QEMU's to answer, not the kernel's).
  const access = fc.tuple(regionDev ?? dev, fc.constantFrom(0, 7, 7, 1), fc.constantFrom(0, 4, 8, 0x20, 0x3c, 0x40, 0x100, 0xffc), fc.constantFrom(1, 2, 4), fc.constantFrom('pread' as const, 'mmap' as const), fc.option(fc.bigInt({ min: 0n, max: 0xffffffffn }), { nil: undefined })).map(([d, region, offset, size, via, value]): Op[] => {
    const off = offset - (offset % size);
    if (value === undefined) return [{ op: 'vfio.region.read', dev: d, region, offset: off, size, via }];
    // Writes keep the Command register's decode bits (offset 4) on: a driver does, and the model follows only Memory Space.
    const v = region === 7 && off <= 4 && off + size > 4 ? value | (6n << BigInt(8 * (4 - off))) : value;
    return [{ op: 'vfio.region.write', dev: d, region, offset: off, size, via, value: v & ((1n << BigInt(8 * size)) - 1n) }];
  });
  const misuse = fc.tuple(dev, container, container).map(([d, c1, c2]): Op[] => [
    { op: 'vfio.group.open', dev: d },
    { op: 'vfio.set-container', dev: d, container: c2 },
    { op: 'vfio.unset-container', dev: d },
    { op: 'vfio.set-iommu', container: c1, type: 'type1v2' },
    { op: 'vfio.device.open', dev: d },
  ]);
  const drivers = fc.tuple(dev, fc.constantFrom('vfio-pci' as const, 'native' as const, 'none' as const)).map(([d, driver]): Op[] => [{ op: 'vfio.bind', dev: d, driver }]);
  const closing = fc.tuple(dev, container).chain(([d, c]) => fc.subarray<Op>([{ op: 'vfio.device.close', dev: d }, { op: 'vfio.unset-container', dev: d }, { op: 'vfio.group.close', dev: d }, { op: 'vfio.container.close', container: c }], { minLength: 1 }));
  const reset = (regionDev ?? dev).map((d): Op[] => (regionDev === null ? [] : [{ op: 'vfio.reset', dev: d }]));
  // The seed's isolation scenario: a device's DMA into its container's mapping, another device's DMA from another
  // container to the same IOVA, then the mapping unmapped and the first DMA again (it must fault and land nowhere).
  const isolation = fc
    .tuple(edu, edu, container, container, pageArb, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 1, max: 4095 }), fc.constantFrom('rw' as const, 'w' as const, 'r' as const), fc.boolean())
    .map(([a, b, ca, cb, iova, pages, skew, len, perm, unmapAll]): Op[] => {
      const at = Math.min(iova + skew, iova + pages * PAGE - 1);
      return [
        ...assigned(a, ca, 'type1v2', true),
        ...(b !== a ? assigned(b, cb, 'type1v2', true) : []),
        { op: 'vfio.dma.map', container: ca, iova, size: pages * PAGE, offset: 0, perm },
        { op: 'vfio.dma', dev: a, iova: at, len },
        { op: 'vfio.dma', dev: b, iova: at, len },
        { op: 'vfio.dma.unmap', container: ca, iova: unmapAll ? iova : iova + PAGE * (pages - 1), size: unmapAll ? pages * PAGE : PAGE },
        { op: 'vfio.dma', dev: a, iova: at, len },
      ];
    });
  const body = fc.oneof(
    { weight: 4, arbitrary: isolation },
    { weight: 5, arbitrary: assign },
    { weight: 4, arbitrary: map },
    { weight: 5, arbitrary: dma },
    { weight: 2, arbitrary: unmap },
    { weight: 2, arbitrary: look },
    ...(regionDev === null ? [] : [{ weight: 2, arbitrary: access }]),
    { weight: 2, arbitrary: misuse },
    { weight: 2, arbitrary: drivers },
    { weight: 2, arbitrary: closing },
    { weight: 1, arbitrary: reset },
  );
  return fc.array(body, { minLength: 1, maxLength: 12 }).map((parts) => parts.flat());
}
