/**
 * Reads a topology from untrusted JSON and checks the rules that make it
 * well formed. Errors name the JSON path and what was expected.
 */
import { at } from '../util/errors.ts';
import { JsonReader, type Where } from '../util/json-read.ts';
import {
  BAR_KINDS,
  CAP_NAMES,
  CLOCKS,
  PERSONALITIES,
  SCALABLE_STAGES,
  SPACE_KINDS,
  ROOT_VIEWS,
  isBridge,
  ownerOf,
  walkDevices,
  type BarSpec,
  type CapName,
  type DeviceSpec,
  type IntxRoute,
  type LearnedFunction,
  type QemuLine,
  type OpaqueIdentity,
  type ReservedRange,
  type RootSpec,
  type SpaceKind,
  type Topology,
} from './types.ts';

export const MAX_ROOTS = 16;
const ADDR_LIMIT = 2 ** 52;
const isPow2 = (n: number): boolean => n > 0 && Number.isInteger(Math.log2(n));

export function parseTopology(json: unknown, where: Where): Topology {
  const r = new JsonReader(where);
  const o = r.object('topology', json);
  r.only('topology', o, ['name', 'clock', 'roots', 'emulators', 'qemu']);
  const emulators = o.emulators === undefined ? undefined : r.array('topology.emulators', o.emulators).map((e, i) => r.string(at('topology.emulators', i), e));
  const rootsJson = r.array('topology.roots', o.roots);
  if (rootsJson.length < 1 || rootsJson.length > MAX_ROOTS) r.fail('topology.roots', `1 to ${MAX_ROOTS} roots`);
  const roots = rootsJson.map((x, i) => parseRoot(r, at('topology.roots', i), x));
  const t: Topology = { roots };
  if (typeof o.name === 'string') t.name = o.name;
  if (o.clock !== undefined) t.clock = r.oneOf('topology.clock', o.clock, CLOCKS);
  if (emulators !== undefined) t.emulators = emulators;
  if (o.qemu !== undefined) t.qemu = parseQemuLine(r, 'topology.qemu', o.qemu);
  const problem = topologyProblem(t);
  if (problem !== null) r.fail(problem.path, problem.expected);
  return t;
}

function parseQemuLine(r: JsonReader, path: string, x: unknown): QemuLine {
  const o = r.object(path, x);
  r.only(path, o, ['args', 'machine', 'defaults', 'added']);
  const strings = (k: 'args' | 'added'): string[] => r.array(at(path, k), o[k]).map((v, i) => r.string(at(at(path, k), i), v));
  const q: QemuLine = { args: strings('args') };
  if (o.machine !== undefined) q.machine = r.string(at(path, 'machine'), o.machine);
  if (o.defaults !== undefined) q.defaults = r.bool(at(path, 'defaults'), o.defaults);
  if (o.added !== undefined) q.added = strings('added');
  return q;
}

function parseRoot(r: JsonReader, path: string, x: unknown): RootSpec {
  const o = r.object(path, x);
  r.only(path, o, ['bus', 'busLimit', 'share', 'ram', 'ecam', 'cf8', 'iommu', 'scalable', 'domains', 'pasidContexts', 'reserved', 'intxRouting', 'view', 'devices']);
  const root: RootSpec = {
    bus: r.int(at(path, 'bus'), o.bus, 0, 255),
    busLimit: r.int(at(path, 'busLimit'), o.busLimit, 0, 255),
    devices: r.array(at(path, 'devices'), o.devices).map((d, i) => parseDevice(r, at(at(path, 'devices'), i), d)),
  };
  if (o.share !== undefined) {
    const s = r.object(at(path, 'share'), o.share);
    r.only(at(path, 'share'), s, SPACE_KINDS);
    root.share = {};
    for (const k of Object.keys(s) as SpaceKind[]) root.share[k] = r.int(at(at(path, 'share'), k), s[k], 0, MAX_ROOTS - 1);
  }
  if (o.ram !== undefined) root.ram = r.int(at(path, 'ram'), o.ram, 0x1000, 2 ** 40);
  if (o.ecam !== undefined) root.ecam = o.ecam === null ? null : r.int(at(path, 'ecam'), o.ecam, 0, ADDR_LIMIT - 1);
  if (o.cf8 !== undefined) root.cf8 = r.bool(at(path, 'cf8'), o.cf8);
  if (o.iommu !== undefined) root.iommu = r.bool(at(path, 'iommu'), o.iommu);
  if (o.scalable !== undefined) root.scalable = r.oneOf(at(path, 'scalable'), o.scalable, SCALABLE_STAGES);
  if (o.domains !== undefined) root.domains = r.int(at(path, 'domains'), o.domains, 0, 64);
  if (o.pasidContexts !== undefined) root.pasidContexts = r.int(at(path, 'pasidContexts'), o.pasidContexts, 0, 64);
  if (o.reserved !== undefined) root.reserved = r.array(at(path, 'reserved'), o.reserved).map((x, i) => parseReserved(r, at(at(path, 'reserved'), i), x));
  if (o.intxRouting !== undefined) root.intxRouting = r.array(at(path, 'intxRouting'), o.intxRouting).map((x, i) => parseIntxRoute(r, at(at(path, 'intxRouting'), i), x));
  if (o.view !== undefined) root.view = r.oneOf(at(path, 'view'), o.view, ROOT_VIEWS);
  return root;
}

function parseReserved(r: JsonReader, path: string, x: unknown): ReservedRange {
  const o = r.object(path, x);
  r.only(path, o, ['space', 'base', 'size', 'name', 'pciWins']);
  const space = r.oneOf(at(path, 'space'), o.space, ['memory', 'io'] as const);
  const limit = space === 'io' ? 0x10000 : ADDR_LIMIT;
  const base = r.int(at(path, 'base'), o.base, 0, limit - 1);
  const range: ReservedRange = { space, base, size: r.int(at(path, 'size'), o.size, 1, limit - base), name: r.string(at(path, 'name'), o.name) };
  if (o.pciWins !== undefined) range.pciWins = r.bool(at(path, 'pciWins'), o.pciWins);
  return range;
}

function parseIntxRoute(r: JsonReader, path: string, x: unknown): IntxRoute {
  const o = r.object(path, x);
  r.only(path, o, ['slot', 'lines']);
  const lines = r.array(at(path, 'lines'), o.lines);
  if (lines.length !== 4) r.fail(at(path, 'lines'), 'four lines, for INTA..INTD', o.lines);
  return { slot: r.int(at(path, 'slot'), o.slot, 0, 31), lines: lines.map((l, i) => r.int(at(at(path, 'lines'), i), l, 0, 1023)) };
}

function parseDevice(r: JsonReader, path: string, x: unknown): DeviceSpec {
  const o = r.object(path, x);
  r.only(path, o, ['id', 'kind', 'slot', 'fn', 'bars', 'rom', 'caps', 'msiVectors', 'msixVectors', 'children', 'domain', 'pasidContext', 'emulator', 'present', 'identity', 'learned', 'qdev', 'builtin', 'resetPowerIndicator', 'acs', 'uid']);
  const d: DeviceSpec = {
    id: r.string(at(path, 'id'), o.id),
    kind: r.oneOf(at(path, 'kind'), o.kind, PERSONALITIES),
    slot: r.int(at(path, 'slot'), o.slot, 0, 31),
    fn: r.int(at(path, 'fn'), o.fn ?? 0, 0, 7),
  };
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(d.id)) r.fail(at(path, 'id'), 'an identifier (letter, then letters, digits, - or _; at most 32)', d.id);
  if (o.bars !== undefined)
    d.bars = r.array(at(path, 'bars'), o.bars).map((b, i): BarSpec => {
      const bp = at(at(path, 'bars'), i);
      const bo = r.object(bp, b);
      r.only(bp, bo, ['kind', 'size', 'prefetch']);
      const spec: BarSpec = { kind: r.oneOf(at(bp, 'kind'), bo.kind, BAR_KINDS), size: r.int(at(bp, 'size'), bo.size, 4, 2 ** 40) };
      if (bo.prefetch !== undefined) spec.prefetch = r.bool(at(bp, 'prefetch'), bo.prefetch);
      return spec;
    });
  if (o.rom !== undefined) d.rom = r.int(at(path, 'rom'), o.rom, 2048, 16 * 2 ** 20);
  if (o.caps !== undefined) d.caps = r.array(at(path, 'caps'), o.caps).map((c, i): CapName => r.oneOf(at(at(path, 'caps'), i), c, CAP_NAMES));
  if (o.msiVectors !== undefined) d.msiVectors = r.int(at(path, 'msiVectors'), o.msiVectors, 1, 32);
  if (o.msixVectors !== undefined) d.msixVectors = r.int(at(path, 'msixVectors'), o.msixVectors, 1, 2048);
  if (o.children !== undefined) d.children = r.array(at(path, 'children'), o.children).map((c, i) => parseDevice(r, at(at(path, 'children'), i), c));
  if (o.domain !== undefined) d.domain = r.int(at(path, 'domain'), o.domain, 0, 63);
  if (o.pasidContext !== undefined) d.pasidContext = r.int(at(path, 'pasidContext'), o.pasidContext, 0, 63);
  if (o.emulator !== undefined) d.emulator = r.string(at(path, 'emulator'), o.emulator);
  if (o.present !== undefined) d.present = r.bool(at(path, 'present'), o.present);
  if (o.identity !== undefined) d.identity = parseIdentity(r, at(path, 'identity'), o.identity);
  if (o.learned !== undefined) d.learned = parseLearned(r, at(path, 'learned'), o.learned);
  if (o.qdev !== undefined) d.qdev = r.string(at(path, 'qdev'), o.qdev);
  if (o.builtin !== undefined) d.builtin = r.bool(at(path, 'builtin'), o.builtin);
  if (o.uid !== undefined) d.uid = r.int(at(path, 'uid'), o.uid, 1, 0xffff);
  if (o.acs !== undefined) d.acs = r.bool(at(path, 'acs'), o.acs);
  if (o.resetPowerIndicator !== undefined) d.resetPowerIndicator = r.oneOf(at(path, 'resetPowerIndicator'), o.resetPowerIndicator, ['on', 'off'] as const);
  return d;
}

function parseLearned(r: JsonReader, path: string, x: unknown): LearnedFunction {
  const o = r.object(path, x);
  r.only(path, o, ['config', 'wmask', 'regions', 'irqs']);
  const hexOf = (k: 'config' | 'wmask'): string => {
    const s = r.string(at(path, k), o[k]);
    if (!/^([0-9a-f]{2}){256}$|^([0-9a-f]{2}){4096}$/.test(s)) r.fail(at(path, k), '256 or 4096 bytes as lower-case hex');
    return s;
  };
  const l: LearnedFunction = { config: hexOf('config'), wmask: hexOf('wmask') };
  if (l.config.length !== l.wmask.length) r.fail(at(path, 'wmask'), `as many bytes as the config space (${l.config.length / 2})`);
  const ints = (k: 'regions' | 'irqs', max: number): number[] => r.array(at(path, k), o[k]).map((v, i) => r.int(at(at(path, k), i), v, 0, max));
  if (o.regions !== undefined) l.regions = ints('regions', 2 ** 52);
  if (o.irqs !== undefined) l.irqs = ints('irqs', 2048);
  return l;
}

function parseIdentity(r: JsonReader, path: string, x: unknown): OpaqueIdentity {
  const o = r.object(path, x);
  r.only(path, o, ['vendor', 'device', 'classCode', 'revision', 'headerType']);
  const id: OpaqueIdentity = { vendor: r.int(at(path, 'vendor'), o.vendor, 0, 0xffff), device: r.int(at(path, 'device'), o.device, 0, 0xffff), classCode: r.int(at(path, 'classCode'), o.classCode, 0, 0xffffff) };
  if (o.revision !== undefined) id.revision = r.int(at(path, 'revision'), o.revision, 0, 0xff);
  if (o.headerType !== undefined) id.headerType = r.int(at(path, 'headerType'), o.headerType, 0, 0xff);
  return id;
}

export interface Problem {
  path: string;
  expected: string;
}

/** BAR slots a list of BARs takes: a 64-bit BAR takes two (PCI 3.0 §6.2.5.1). */
export const barSlots = (bars: readonly BarSpec[]): number => bars.reduce((n, b) => n + (b.kind === 'mem64' ? 2 : 1), 0);

/**
 * The cross-field rules of a topology, shared by the file reader and the
 * generators' own self-check. Returns the first problem, or null.
 */
export function topologyProblem(t: Topology): Problem | null {
  const n = t.roots.length;
  const emulators = new Set(t.emulators ?? []);
  for (let i = 0; i < n; i++) {
    const root = t.roots[i];
    const p = `topology.roots[${i}]`;
    if (root.busLimit < root.bus) return { path: `${p}.busLimit`, expected: `busLimit >= bus (${root.bus})` };
    for (const [k, owner] of Object.entries(root.share ?? {}) as [SpaceKind, number][]) {
      if (owner >= n || owner === i) return { path: `${p}.share.${k}`, expected: `the index of another root (0..${n - 1})` };
      if (t.roots[owner].share?.[k] !== undefined) return { path: `${p}.share.${k}`, expected: `a root that owns its ${k} space (root ${owner} shares it too)` };
    }
    const owns = (k: SpaceKind): boolean => ownerOf(t, i, k) === i;
    if (root.scalable !== undefined && root.iommu !== true) return { path: `${p}.scalable`, expected: 'iommu: true (scalable mode is a mode of the IOMMU)' };
    const ownerOnly: [keyof RootSpec, SpaceKind][] = [['ram', 'memory'], ['ecam', 'config'], ['cf8', 'config'], ['iommu', 'dma'], ['scalable', 'dma'], ['domains', 'dma'], ['pasidContexts', 'pasid']];
    for (const [field, k] of ownerOnly)
      if (root[field] !== undefined && !owns(k)) return { path: `${p}.${field}`, expected: `no ${field}: root ${i} shares its ${k} space with root ${ownerOf(t, i, k)}` };
    for (const [j, x] of (root.reserved ?? []).entries()) {
      const space = x.space === 'io' ? 'io' : 'memory';
      if (!owns(space)) return { path: `${p}.reserved[${j}]`, expected: `no ${x.space} range: root ${i} shares its ${space} space with root ${ownerOf(t, i, space)}` };
    }
    const routed = (root.intxRouting ?? []).map((x) => x.slot);
    const twice = routed.findIndex((s, j) => routed.indexOf(s) !== j);
    if (twice >= 0) return { path: `${p}.intxRouting[${twice}].slot`, expected: `one row per slot (slot ${routed[twice]} has two)` };
    if (typeof root.ecam === 'number' && root.ecam % 2 ** 20 !== 0) return { path: `${p}.ecam`, expected: 'an ECAM base aligned to 1 MiB (PCIe Base §7.2.2)' };
    // Roots that share a config space split its bus numbers between them.
    for (let j = 0; j < i; j++) {
      if (ownerOf(t, j, 'config') !== ownerOf(t, i, 'config')) continue;
      const o = t.roots[j];
      if (root.bus <= o.busLimit && o.bus <= root.busLimit)
        return { path: `${p}.bus`, expected: `a bus range disjoint from root ${j}'s [${o.bus}, ${o.busLimit}] (they share a config space)` };
    }
  }
  // One CF8/CFC pair per IO space: the ports are a single decoder.
  const cf8Io = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const root = t.roots[i];
    if (root.cf8 !== true) continue;
    const io = ownerOf(t, i, 'io');
    const prev = cf8Io.get(io);
    if (prev !== undefined) return { path: `topology.roots[${i}].cf8`, expected: `no CF8/CFC: root ${prev} already has them in the same IO space` };
    cf8Io.set(io, i);
  }
  const ids = new Set<string>();
  const uids = new Set<number>();
  const busSlots = new Map<string, string>();
  const contextDomain = new Map<string, { domain: number; id: string }>();
  for (const { root, dev, parent } of walkDevices(t)) {
    const p = `device ${dev.id}`;
    if (ids.has(dev.id)) return { path: p, expected: 'a unique device id' };
    ids.add(dev.id);
    if (dev.uid !== undefined) {
      if (uids.has(dev.uid)) return { path: p, expected: `a unique uid (${dev.uid} is taken)` };
      uids.add(dev.uid);
    }
    const busKey = `${root}/${parent?.id ?? ''}/${dev.slot}.${dev.fn}`;
    if (busSlots.has(busKey)) return { path: `${p}.slot`, expected: `a free slot (${dev.slot}.${dev.fn} is taken by ${busSlots.get(busKey)})` };
    busSlots.set(busKey, dev.id);
    if (parent?.kind === 'root-port' && dev.slot !== 0) return { path: `${p}.slot`, expected: 'slot 0: a root port links to one device (PCIe Base §7.3.1)' };
    if (dev.children !== undefined && !isBridge(dev)) return { path: `${p}.children`, expected: 'no children: only bridge and root-port have a secondary bus' };
    if (dev.acs !== undefined && dev.kind !== 'root-port') return { path: `${p}.acs`, expected: 'no acs: only a root port is built with or without ACS' };
    if (dev.identity !== undefined && dev.kind !== 'opaque') return { path: `${p}.identity`, expected: 'no identity: only an opaque device declares one' };
    if (dev.learned !== undefined && dev.kind !== 'opaque') return { path: `${p}.learned`, expected: 'nothing learned: only an opaque device is learned from the target' };
    if (dev.kind === 'opaque' && (dev.pasidContext !== undefined || dev.emulator !== undefined || (dev.domain !== undefined && dev.learned === undefined)))
      return { path: p, expected: 'an opaque device without pasidContext or emulator, and without domain unless it was learned (the model cannot drive it)' };
    if (dev.kind !== 'endpoint') {
      for (const f of ['bars', 'rom', 'caps'] as const)
        if (dev[f] !== undefined) return { path: `${p}.${f}`, expected: `no ${f}: a ${dev.kind} has fixed ones` };
    }
    const bars = dev.bars ?? [];
    if (barSlots(bars) > 6) return { path: `${p}.bars`, expected: 'at most six BAR slots (a 64-bit BAR takes two)' };
    for (const [bi, b] of bars.entries()) {
      if (!isPow2(b.size)) return { path: `${p}.bars[${bi}].size`, expected: 'a power of two' };
      if (b.kind === 'io' && (b.size < 4 || b.size > 256)) return { path: `${p}.bars[${bi}].size`, expected: 'an IO BAR of 4 to 256 bytes (PCI 3.0 §6.2.5.1)' };
      if (b.kind !== 'io' && b.size < 16) return { path: `${p}.bars[${bi}].size`, expected: 'a memory BAR of at least 16 bytes' };
      if (b.kind === 'mem32' && b.size > 2 ** 31) return { path: `${p}.bars[${bi}].size`, expected: 'a 32-bit BAR of at most 2 GiB' };
      if (b.kind === 'io' && b.prefetch === true) return { path: `${p}.bars[${bi}].prefetch`, expected: 'no prefetch on an IO BAR' };
    }
    if (dev.rom !== undefined && !isPow2(dev.rom)) return { path: `${p}.rom`, expected: 'a power of two' };
    const caps = dev.caps ?? [];
    if (dev.msiVectors !== undefined && (!isPow2(dev.msiVectors) || (dev.kind === 'endpoint' && !caps.includes('msi'))))
      return { path: `${p}.msiVectors`, expected: 'a power of two, with the msi capability' };
    if (dev.msixVectors !== undefined || caps.includes('msix')) {
      if (!caps.includes('msix')) return { path: `${p}.msixVectors`, expected: 'the msix capability' };
      if (msixBar(bars) < 0) return { path: `${p}.caps`, expected: 'a memory BAR of at least 8 KiB to hold the MSI-X table and PBA' };
      if ((dev.msixVectors ?? 1) > 128) return { path: `${p}.msixVectors`, expected: 'at most 128 vectors (table at 0x1000 and PBA at 0x1800 of its BAR)' };
    }
    if ((caps.includes('pasid') || caps.includes('ats') || caps.includes('acs')) && !caps.includes('pcie'))
      return { path: `${p}.caps`, expected: 'pcie with any extended capability (pasid, ats, acs live at 0x100+)' };
    const dmaOwner = t.roots[ownerOf(t, root, 'dma')];
    if (dev.domain !== undefined && dev.domain >= (dmaOwner.domains ?? 0))
      return { path: `${p}.domain`, expected: `a domain index below ${dmaOwner.domains ?? 0} (the domains of root ${ownerOf(t, root, 'dma')})` };
    const pasidOwner = t.roots[ownerOf(t, root, 'pasid')];
    if (dev.pasidContext !== undefined && dev.pasidContext >= (pasidOwner.pasidContexts ?? 0))
      return { path: `${p}.pasidContext`, expected: `a context index below ${pasidOwner.pasidContexts ?? 0}` };
    // Scalable mode: the devices of one context share RID_PASID's entry, so one domain at most.
    if (dmaOwner.scalable !== undefined && dev.pasidContext !== undefined && dev.domain !== undefined) {
      const key = `${ownerOf(t, root, 'dma')}:${ownerOf(t, root, 'pasid')}:${dev.pasidContext}`;
      const other = contextDomain.get(key);
      if (other !== undefined && other.domain !== dev.domain)
        return { path: `${p}.domain`, expected: `domain ${other.domain}, as ${other.id}: devices of one PASID context share its table's RID_PASID entry (VT-d scalable mode)` };
      contextDomain.set(key, { domain: dev.domain, id: dev.id });
    }
    if (dev.emulator !== undefined && !emulators.has(dev.emulator))
      return { path: `${p}.emulator`, expected: `one of the topology's emulators (${[...emulators].join(', ') || 'none declared'})` };
  }
  return null;
}

/** Index in `bars` of the BAR that holds the MSI-X table: the first memory BAR of 8 KiB or more, or -1. */
export function msixBar(bars: readonly BarSpec[]): number {
  return bars.findIndex((b) => b.kind !== 'io' && b.size >= 0x2000);
}
