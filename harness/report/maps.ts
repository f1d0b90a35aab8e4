/**
 * Address maps at a finding's failing step, for pictures: each root's
 * memory and IO space (every decoder's claim, bridge windows, RAM, ECAM,
 * the CF8 ports) and its DMA domains (IOVA mappings), with the accessed
 * address and the colliding, leaking or misrouted ranges marked.
 */
import { Model } from '../model/model.ts';
import { regionName, type Delivery, type Observation } from '../ops/observation.ts';
import { ownerOf, type Topology } from '../topology/types.ts';
import { formatBdf } from '../topology/bdf.ts';
import { hex } from '../util/hex.ts';
import { IO_WINDOW, MEM_WINDOW, PREF_WINDOW, type Bridge } from '../model/personalities/bridge.ts';
import { routedIn, writeValue, type Op } from '../ops/catalog.ts';
import { configMechanisms, lowerConfig } from '../bus/config-access.ts';
import type { Step } from '../trace/format.ts';

export type Mark = 'collision' | 'leak' | 'misroute' | 'divergence' | 'crash' | 'hang' | 'protocol';
export type RangeKind = 'ram' | 'ecam' | 'cf8' | 'bar' | 'reserved' | 'window' | 'mapping' | 'ghost';

export interface MapRange {
  start: number;
  end: number;
  label: string;
  kind: RangeKind;
  mark?: Mark;
}

export interface MapPoint {
  addr: number;
  label: string;
  mark: Mark | 'access';
}

export interface SpaceMap {
  title: string;
  space: 'memory' | 'io' | 'dma';
  ranges: MapRange[];
  points: MapPoint[];
}

const regionOf = (name: string | undefined): number => (name === 'rom' ? 6 : name !== undefined && name.startsWith('bar') ? Number(name[3]) : -1);

/** The state after steps[0..index-1], then the failing step itself: returns the model and its prediction. */
function replay(topology: Topology, steps: readonly Step[], index: number): { m: Model; predicted: Observation } {
  const m = new Model(topology);
  for (let i = 0; i < index; i++) m.apply(steps[i].op);
  const predicted = steps[index] !== undefined ? m.apply(steps[index].op) : { status: 'ok' as const };
  return { m, predicted };
}

function sharedWith(t: Topology, owner: number, kind: 'memory' | 'io' | 'dma'): number[] {
  return t.roots.map((_, r) => r).filter((r) => ownerOf(t, r, kind) === owner);
}

export function addressMaps(topology: Topology, steps: readonly Step[], index: number, kind: Mark): SpaceMap[] {
  const { m, predicted } = replay(topology, steps, index);
  const op: Op | undefined = steps[index]?.op;
  const observed: Observation | undefined = steps[index]?.obs;
  const maps: SpaceMap[] = [];
  const t = topology;

  const access = accessOf(t, op, predicted);
  for (const sk of ['memory', 'io'] as const) {
    for (let owner = 0; owner < t.roots.length; owner++) {
      const users = sharedWith(t, owner, sk === 'memory' ? 'memory' : 'io');
      if (users.length === 0) continue;
      const sp = m.spaceOf(users[0], sk);
      if (sp.owner !== owner) continue;
      const ranges: MapRange[] = sp.flat.claims.map((c) => ({
        start: c.s,
        end: c.e,
        kind: c.d.kind,
        label: c.d.kind === 'bar' ? `${c.d.fn!.id} ${regionName(c.d.region)}` : c.d.kind === 'ram' ? 'RAM' : c.d.kind === 'ecam' ? `ECAM r${c.d.root}` : c.d.kind === 'reserved' ? (c.d.name ?? 'reserved') : 'CF8/CFC',
      }));
      for (const { bus } of sp.buses)
        for (const f of bus.functions())
          if (f.isBridge)
            for (const [w, name] of sk === 'io' ? ([[IO_WINDOW, 'IO window']] as const) : ([[MEM_WINDOW, 'mem window'], [PREF_WINDOW, 'pref window']] as const)) {
              const p = (f as Bridge).placements[w];
              if (p !== null && p !== undefined) ranges.push({ start: p.base, end: p.base + p.size - 1, kind: 'window', label: `${f.id} ${name}` });
            }
      const title = `${sk === 'memory' ? 'memory' : 'IO'} space of root ${owner}${users.length > 1 ? ` (shared by roots ${users.join(', ')})` : ''}`;
      const map: SpaceMap = { title, space: sk, ranges, points: [] };
      if (access !== null && access.space === sk && users.includes(access.root)) {
        // The accessed address, in the colour of the finding.
        map.points.push({ addr: access.addr, label: access.label, mark: kind });
        // Every decoder claiming the accessed address: overlaps are the collision.
        const at = ranges.filter((r) => r.kind === 'bar' && r.start <= access.addr && access.addr <= r.end);
        if (kind === 'collision' && at.length >= 2) for (const r of at) r.mark = 'collision';
      }
      markDelivery(map, m, observed?.to, predicted.to, access, kind, users, sk);
      maps.push(map);
    }
  }
  for (let owner = 0; owner < t.roots.length; owner++) {
    if (ownerOf(t, owner, 'dma') !== owner) continue;
    const domains = m.domainsOf(owner);
    if (domains.length === 0) continue;
    const users = sharedWith(t, owner, 'dma');
    const ranges: MapRange[] = domains.flatMap((d) => d.mappings().map((mp) => ({ start: mp.iova, end: mp.iova + mp.size - 1, kind: 'mapping' as const, label: `domain ${d.index}: → ${hex(mp.gpa)} ${mp.perm}` })));
    const map: SpaceMap = { title: `DMA (IOVA) of root ${owner}'s domains${users.length > 1 ? ` (shared by roots ${users.join(', ')})` : ''}`, space: 'dma', ranges, points: [] };
    if (op !== undefined && routedIn(op, 'dma')) {
      const s = m.devices.get(op.dev);
      if (s !== undefined && users.includes(s.root)) map.points.push({ addr: op.iova, label: `${op.op} ${op.dev}${op.pasid !== undefined ? ` pasid ${op.pasid}` : ''}`, mark: kind === 'leak' ? 'leak' : 'access' });
    }
    maps.push(map);
  }
  return maps;
}

function accessOf(t: Topology, op: Op | undefined, predicted: Observation): { root: number; space: 'memory' | 'io'; addr: number; label: string } | null {
  if (op === undefined) return null;
  if (routedIn(op, 'config')) {
    // A config access goes through a place on the map: the ECAM window, or the CONFIG_DATA port (its last bus access).
    const m = configMechanisms(t, op.root);
    const lowered = lowerConfig(m, op.via, op.bdf, op.reg, op.size, writeValue(op));
    if (typeof lowered === 'string') return null;
    const at = lowered[lowered.length - 1];
    return { root: m.owner, space: at.space, addr: at.addr, label: `${op.op} ${formatBdf(op.bdf)} via ${op.via === 'ecam' ? 'ECAM' : 'CF8/CFC'}` };
  }
  if (routedIn(op, 'memory')) return { root: op.root, space: 'memory', addr: op.addr, label: `${op.op} ${hex(op.addr)}` };
  if (routedIn(op, 'io')) return { root: op.root, space: 'io', addr: op.port, label: `${op.op} ${hex(op.port)}` };
  if (routedIn(op, 'dma') && predicted.to?.region === 'ram' && predicted.to.offset !== undefined) {
    return { root: predicted.to.root, space: 'memory', addr: predicted.to.offset, label: `DMA by ${op.dev} → ${hex(predicted.to.offset)}` };
  }
  return null;
}

/**
 * Where the target delivered the access, when that is not where the model
 * says: the range it reached is marked; for a stale mapping, its old
 * placement is drawn as a ghost.
 */
function markDelivery(map: SpaceMap, m: Model, to: Delivery | undefined, want: Delivery | undefined, access: ReturnType<typeof accessOf>, kind: Mark, users: number[], sk: 'memory' | 'io'): void {
  if (to === undefined || access === null || access.space !== sk) return;
  if (to.region === 'ram' && want?.region === 'ram' && to.root !== want.root && users.includes(to.root)) {
    map.points.push({ addr: to.offset ?? access.addr, label: `landed in root ${to.root}'s RAM`, mark: kind });
    return;
  }
  if (to.dev === undefined || (to.dev === want?.dev && to.region === want?.region)) return;
  const fn = m.fnOf(to.dev);
  if (fn === null || !users.includes(fn.root)) return;
  const region = regionOf(to.region);
  const hit = map.ranges.find((r) => r.kind === 'bar' && r.label === `${to.dev} ${to.region}`);
  if (hit !== undefined) hit.mark = kind;
  if (!m.decodesNow(to.dev, region, access.addr)) {
    for (const h of fn.history.get(region) ?? [])
      if (h.base <= access.addr && access.addr < h.base + h.size) map.ranges.push({ start: h.base, end: h.base + h.size - 1, kind: 'ghost', label: `${to.dev} ${to.region} (old placement)`, mark: kind });
  }
  if (to.root !== access.root) map.points.push({ addr: access.addr, label: `answered by ${to.dev} of root ${to.root}`, mark: kind });
}
