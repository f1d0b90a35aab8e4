/**
 * fast-check arbitraries for topologies: 1–8 roots, bridges and root
 * ports, 1–32 devices, BAR layouts and isolation contracts. Device ids
 * name their kind (ep, edu, td, itd, br, rp, hb) and a number.
 */
import { vfioTopologyArb } from './vfio.ts';
import fc from 'fast-check';
import { SPACE_KINDS, type BarSpec, type CapName, type DeviceSpec, type Personality, type RootSpec, type ScalableStages, type SpaceKind, type Topology } from '../harness/topology/types.ts';
import { barSlots, topologyProblem } from '../harness/topology/validate.ts';
import { FREE, type GenConstraints } from './constraints.ts';

const PREFIX: Record<Personality, string> = { endpoint: 'ep', edu: 'edu', 'pci-testdev': 'td', 'iommu-testdev': 'itd', bridge: 'br', 'root-port': 'rp', 'host-bridge': 'hb', opaque: 'op' };

const barArb: fc.Arbitrary<BarSpec> = fc.oneof(
  fc.record({ kind: fc.constant('mem32' as const), size: fc.constantFrom(0x1000, 0x2000, 0x4000, 0x10000, 0x100000, 0x400000), prefetch: fc.boolean() }),
  fc.record({ kind: fc.constant('mem64' as const), size: fc.constantFrom(0x1000, 0x4000, 0x100000, 0x200000), prefetch: fc.boolean() }),
  fc.record({ kind: fc.constant('io' as const), size: fc.constantFrom(0x10, 0x20, 0x40, 0x100) }),
);

const capsArb: fc.Arbitrary<CapName[]> = fc
  .record({ pm: fc.boolean(), msi: fc.boolean(), msix: fc.boolean(), pcie: fc.boolean(), pasid: fc.boolean(), ats: fc.boolean(), acs: fc.boolean() })
  .map((c) => {
    const out: CapName[] = [];
    if (c.pm) out.push('pm');
    if (c.msi || !c.msix) out.push('msi');
    if (c.msix) out.push('msix');
    if (c.pcie || c.pasid || c.ats || c.acs) out.push('pcie');
    if (c.pasid) out.push('pasid');
    if (c.ats) out.push('ats');
    if (c.acs) out.push('acs');
    return out;
  });

/** A device shape before ids and slots are assigned. */
interface Shape {
  kind: Personality;
  bars: BarSpec[];
  rom: boolean;
  caps: CapName[];
  msiVectors: number;
  fn1: boolean;
  spare: boolean;
  emulated: boolean;
  children: Shape[];
}

const leafKinds = (c: GenConstraints): Personality[] => (['endpoint', 'edu', 'pci-testdev', 'iommu-testdev'] as const).filter((k) => c.personalities.includes(k));
const bridgeKinds = (c: GenConstraints): Personality[] => (['bridge', 'root-port'] as const).filter((k) => c.personalities.includes(k));

function leafShape(c: GenConstraints): fc.Arbitrary<Shape> {
  const kinds = leafKinds(c);
  const allowed = (caps: CapName[]): CapName[] => {
    const kept = caps.filter((x) => c.caps.includes(x));
    // Extended capabilities need the PCIe capability; without it they go too.
    return kept.includes('pcie') ? kept : kept.filter((x) => x !== 'pasid' && x !== 'ats' && x !== 'acs');
  };
  return fc
    .record({
      // The generic endpoint keeps a third of the leaves where QEMU's devices are offered beside it (it carries
      // the capabilities, emulators and PASIDs most isolation checks need).
      kind: kinds.length === 0 ? fc.constant<Personality>('endpoint') : fc.oneof(...kinds.map((k) => ({ arbitrary: fc.constant(k), weight: k === 'endpoint' && kinds.length > 3 ? kinds.length - 1 : 2 }))),
      bars: fc.array(barArb, { minLength: 1, maxLength: 3 }),
      rom: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
      caps: capsArb.map(allowed),
      msiVectors: fc.constantFrom(1, 2, 4),
      fn1: fc.boolean(),
      spare: c.ops.includes('hotplug') ? fc.integer({ min: 0, max: 9 }).map((n) => n === 0) : fc.constant(false),
      emulated: c.ops.includes('emulator') && c.emulatedDevices ? fc.integer({ min: 0, max: 4 }).map((n) => n === 0) : fc.constant(false),
    })
    .map((s) => {
      const bars = [...s.bars];
      let caps = s.caps;
      if (caps.includes('msix') && !bars.some((b) => b.kind !== 'io' && b.size >= 0x2000)) {
        // The MSI-X table needs a memory BAR of 8 KiB or more; without a free BAR slot, drop MSI-X.
        if (barSlots(bars) <= 5) bars.push({ kind: 'mem32', size: 0x4000 });
        else caps = caps.filter((x) => x !== 'msix');
      }
      return { ...s, bars, caps, children: [] };
    });
}

function shapeArb(c: GenConstraints): fc.Arbitrary<Shape> {
  const bk = bridgeKinds(c);
  if (bk.length === 0) return leafShape(c);
  const bridge = fc.record({ kind: fc.constantFrom(...bk), kids: fc.array(leafShape(c), { minLength: 1, maxLength: 3 }) }).map(
    (b): Shape => ({ kind: b.kind, bars: [], rom: false, caps: [], msiVectors: 1, fn1: false, spare: false, emulated: false, children: b.kind === 'root-port' ? b.kids.slice(0, 1) : b.kids }),
  );
  return fc.oneof({ arbitrary: leafShape(c), weight: 4 }, { arbitrary: bridge, weight: 1 });
}

interface RootChoice {
  share: Partial<Record<SpaceKind, boolean>>;
  busBase: number;
  iommu: boolean;
  scalable: ScalableStages | null;
  domains: number;
  contexts: number;
  ecam: boolean;
  hostBridge: boolean;
  shapes: Shape[];
}

function rootArb(c: GenConstraints): fc.Arbitrary<RootChoice> {
  const share = fc.record(
    Object.fromEntries(
      SPACE_KINDS.map((k) => [k, c.contract[k] === 'shared' ? fc.constant(true) : c.contract[k] === 'isolated' ? fc.constant(false) : fc.integer({ min: 0, max: 4 }).map((n) => n === 0)]),
    ) as Record<SpaceKind, fc.Arbitrary<boolean>>,
  );
  return fc.record({
    share,
    busBase: fc.constantFrom(0x00, 0x00, 0x20, 0x40, 0x80),
    iommu: c.ops.includes('dma-map') ? fc.boolean() : fc.constant(false),
    // A target whose PASID contexts are scalable-mode tables mostly gets those.
    scalable: c.scalableIommu.length > 0 ? fc.oneof({ arbitrary: fc.constant(null), weight: 1 }, { arbitrary: fc.constantFrom(...c.scalableIommu), weight: 3 }) : fc.constant(null),
    domains: fc.integer({ min: 1, max: 3 }),
    contexts: c.ops.includes('pasid') ? fc.integer({ min: 0, max: 2 }) : fc.constant(0),
    ecam: !c.vias.includes('ecam') ? fc.constant(false) : !c.vias.includes('cf8') ? fc.constant(true) : fc.integer({ min: 0, max: 5 }).map((n) => n !== 0),
    hostBridge: fc.boolean(),
    shapes: fc.array(shapeArb(c), { minLength: 1, maxLength: 4 }),
  });
}

/** A shape fit for a root other than root 0: as it is, behind a root port, or nothing. */
function onExpander(s: Shape, c: GenConstraints): Shape | null {
  if (c.expanderPersonalities.includes(s.kind)) return s;
  if (s.children.length > 0 || !c.expanderPersonalities.includes('root-port')) return null;
  return { kind: 'root-port', bars: [], rom: false, caps: [], msiVectors: 1, fn1: false, spare: false, emulated: false, children: [{ ...s, fn1: false }] };
}

/** Turns choices into a valid topology: assigns ids, slots, buses, sharing and references. */
function build(choices: RootChoice[], emulators: boolean, c: GenConstraints): Topology {
  let n = 0;
  const id = (k: Personality): string => `${PREFIX[k]}${n++}`;
  const roots: RootSpec[] = [];
  const emuNames = emulators ? ['qemu', 'ioreq1'] : [];
  let devices = 0;
  // Roots that share a config space split bus numbers: give them disjoint 32-bus ranges.
  let nextSharedBus = 0x20;
  const rootZeroShared = choices.some((x, i) => i > 0 && x.share.config === true);
  choices.forEach((ch, r) => {
    const share: Partial<Record<SpaceKind, number>> = {};
    if (r > 0) for (const k of SPACE_KINDS) if (ch.share[k] === true) share[k] = 0;
    const sharesConfig = share.config !== undefined;
    // Root 0 starts at bus 0 when others share its config space, or when the target's roots always do (QEMU's main bus).
    let bus = r === 0 && (rootZeroShared || c.contract.config === 'shared') ? 0 : ch.busBase;
    if (sharesConfig) {
      bus = nextSharedBus;
      nextSharedBus += 0x20;
      if (bus > 0xe0) {
        delete share.config;
        bus = ch.busBase;
      }
    }
    const busLimit = share.config !== undefined || (r === 0 && rootZeroShared) ? bus + 0x1f : 0xff;
    const root: RootSpec = { bus, busLimit, devices: [] };
    if (Object.keys(share).length > 0) root.share = share;
    if (share.config === undefined) {
      // CF8/CFC are one decoder per IO space: a root that shares its IO space reaches config through ECAM.
      if (share.io === undefined && c.vias.includes('cf8')) {
        root.cf8 = true;
        if (!ch.ecam) root.ecam = null;
      }
    }
    if (share.dma === undefined) {
      root.iommu = ch.iommu;
      if (ch.iommu) root.domains = ch.domains;
      if (ch.iommu && ch.scalable !== null) root.scalable = ch.scalable;
    }
    // Where PASID contexts are scalable-mode tables, a root without them has none.
    const contexts = c.scalableIommu.length > 0 && roots.concat(root)[share.dma ?? r].scalable === undefined ? 0 : ch.contexts;
    if (share.pasid === undefined && contexts > 0) root.pasidContexts = contexts;
    roots.push(root);
    const dmaOwner = share.dma ?? r;
    const pasidOwner = share.pasid ?? r;
    const domainsOf = (): number => (roots[dmaOwner].iommu === true ? (roots[dmaOwner].domains ?? 0) : 0);
    const contextsOf = (): number => roots[pasidOwner].pasidContexts ?? 0;
    const make = (s: Shape, slot: number, fnNo: number, withKids: boolean, parentKind?: Personality): DeviceSpec => {
      devices++;
      const d: DeviceSpec = { id: id(s.kind), kind: s.kind, slot, fn: fnNo };
      if (s.kind === 'endpoint') {
        d.bars = s.bars;
        if (s.rom) d.rom = 0x800;
        d.caps = s.caps;
        if (s.caps.includes('msi')) d.msiVectors = s.msiVectors;
        if (s.caps.includes('msix')) d.msixVectors = 8;
      }
      if (s.kind !== 'bridge' && s.kind !== 'root-port' && s.kind !== 'host-bridge') {
        const nd = domainsOf();
        if (nd > 0) d.domain = devices % (nd + 1) === nd ? 0 : devices % nd;
        const nc = contextsOf();
        if (nc > 0) d.pasidContext = devices % nc;
        // Scalable mode: the devices of a context share its RID_PASID entry, so one domain.
        if (nd > 0 && nc > 0 && roots[dmaOwner].scalable !== undefined) d.domain = d.pasidContext! % nd;
        if (s.emulated && emuNames.length > 0) d.emulator = emuNames[devices % emuNames.length];
        // Spares: in a root port's slot (PCIe hot-plug), or on a root bus where the target hot-plugs anywhere.
        if (s.spare && ((withKids && c.hotplugSlots === 'any') || parentKind === 'root-port')) d.present = false;
      }
      if (withKids && s.children.length > 0) d.children = s.children.map((k, i) => make(k, s.kind === 'root-port' ? 0 : i + 1, 0, false, s.kind));
      return d;
    };
    let slot = 1;
    if (ch.hostBridge && c.personalities.includes('host-bridge')) {
      root.devices.push({ id: id('host-bridge'), kind: 'host-bridge', slot: 0, fn: 0 });
      devices++;
    }
    for (const s0 of ch.shapes) {
      if (devices >= c.maxDevices) break;
      const s = r === 0 ? s0 : onExpander(s0, c);
      if (s === null) continue;
      root.devices.push(make(s, slot, 0, true));
      if (s.fn1 && c.multifunction && s.children.length === 0 && devices < c.maxDevices) root.devices.push(make({ ...s, spare: false }, slot, 1, true));
      slot++;
    }
  });
  const t: Topology = { roots };
  if (emuNames.length > 0) t.emulators = emuNames;
  return t;
}

/** Topologies within the constraints; every one passes the topology rules. */
export function topologyArb(c: GenConstraints = FREE): fc.Arbitrary<Topology> {
  // Linux's VFIO is judged on the shapes that decide its groups (generators/vfio.ts).
  if (c.ops.includes('vfio')) return vfioTopologyArb(c);
  return fc
    .record({ roots: fc.array(rootArb(c), { minLength: 1, maxLength: Math.max(1, c.maxRoots) }), emulators: c.ops.includes('emulator') ? fc.boolean() : fc.constant(false) })
    .map(({ roots, emulators }) => {
      const t = build(roots, emulators, c);
      const p = topologyProblem(t);
      if (p !== null) throw new Error(`generated topology broke a rule: ${p.path}: ${p.expected}`);
      return c.prepare(t);
    });
}
