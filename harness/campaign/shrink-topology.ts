/**
 * Shrinking the topology of a failing scenario: a 3-operation finding
 * should not carry the 8 roots and 27 devices it was generated with. The
 * slots (every function of one device number, with what sits below a
 * bridge there) that no operation names are candidates; delta debugging
 * over them keeps the fewest under which the finding stays, each try
 * confirmed by replaying. Then roots that nothing uses go, the ones after
 * them renumbered in the topology and the operations. Every
 * device keeps the uid it had (its identity shows in register values), so
 * removing one changes nothing else about the others.
 */
import type { Scenario } from '../../generators/sequence.ts';
import type { DeviceSpec, RootSpec, Topology } from '../topology/types.ts';
import { walkDevices } from '../topology/types.ts';
import { ddmin } from '../run/ddmin.ts';
import { slotsOf } from '../model/slots.ts';

/** Replays a topology may cost (each is a run on the target). */
export const TOPOLOGY_SHRINK_BUDGET = 60;

/** A slot: the functions at one device number of one bus (a root's, or a bridge's secondary). */
interface Slot {
  key: string;
  ids: Set<string>;
}

/** The topology with every device's uid written out, as the model numbers them (model/slots.ts). */
function pinUids(t: Topology): Topology {
  const uids = new Map<DeviceSpec, number>(slotsOf(t).map((s) => [s.spec, s.uid]));
  const pin = (d: DeviceSpec): DeviceSpec => ({ ...d, uid: uids.get(d)!, ...(d.children !== undefined ? { children: d.children.map(pin) } : {}) });
  return { ...t, roots: t.roots.map((r) => ({ ...r, devices: r.devices.map(pin) })) };
}

/** The device slots of a topology: the functions at one device number of one bus. */
function slotGroups(t: Topology): Slot[] {
  const slots = new Map<string, Slot>();
  for (const { root, dev, parent } of walkDevices(t)) {
    const key = `${root}/${parent?.id ?? ''}/${dev.slot}`;
    let s = slots.get(key);
    if (s === undefined) slots.set(key, (s = { key, ids: new Set() }));
    s.ids.add(dev.id);
  }
  return [...slots.values()];
}

/** Every device id at or below a device. */
function subtree(d: DeviceSpec, into: Set<string>): Set<string> {
  into.add(d.id);
  for (const c of d.children ?? []) subtree(c, into);
  return into;
}

/** The topology without the devices in `drop` (and what sits below them). */
function without(t: Topology, drop: ReadonlySet<string>): Topology {
  const keep = (ds: DeviceSpec[]): DeviceSpec[] => ds.filter((d) => !drop.has(d.id)).map((d) => (d.children === undefined ? d : { ...d, children: keep(d.children) }));
  return { ...t, roots: t.roots.map((r) => ({ ...r, devices: keep(r.devices) })) };
}

/** Devices the operations name, and every bridge above them. */
function named(t: Topology, ops: Scenario['ops']): Set<string> {
  const ids = new Set<string>();
  for (const op of ops) if ('dev' in op) ids.add(op.dev);
  const needed = new Set<string>();
  for (const { dev } of walkDevices(t)) if ([...subtree(dev, new Set())].some((id) => ids.has(id))) needed.add(dev.id);
  return needed;
}

/** Whether root r is used: by an operation, by a device, or as the owner of a space another root shares. */
function rootUsed(t: Topology, ops: Scenario['ops'], r: number): boolean {
  if (t.roots[r].devices.length > 0) return true;
  if (ops.some((op) => 'root' in op && op.root === r)) return true;
  return t.roots.some((x: RootSpec, i) => i !== r && Object.values(x.share ?? {}).includes(r));
}

/** The scenario without root r: the roots after it move down by one, in the topology (its shares) and in the operations. */
function withoutRoot(sc: Scenario, r: number): Scenario {
  const move = (i: number): number => (i > r ? i - 1 : i);
  const roots = sc.topology.roots.filter((_, i) => i !== r).map((x) => (x.share === undefined ? x : { ...x, share: Object.fromEntries(Object.entries(x.share).map(([k, v]) => [k, move(v)])) }));
  const ops = sc.ops.map((op) => ('root' in op && op.root > r ? { ...op, root: op.root - 1 } : op));
  return { topology: { ...sc.topology, roots }, ops };
}

export async function shrinkTopology(sc: Scenario, fails: (s: Scenario) => Promise<boolean>, budget = TOPOLOGY_SHRINK_BUDGET): Promise<Scenario> {
  let tries = 0;
  // A topology the target will not build (an InputError from its prepare) does not confirm the finding.
  const test = async (t: Topology, ops = sc.ops): Promise<boolean> => tries++ < budget && (await fails({ topology: t, ops }).catch(() => false));
  const pinned = pinUids(sc.topology);
  const needed = named(pinned, sc.ops);
  // The platform's own functions stay: the target brings them whatever the topology says (a guest's agent channel among them).
  const builtin = new Set([...walkDevices(pinned)].filter((w) => w.dev.builtin === true).map((w) => w.dev.id));
  const candidates = slotGroups(pinned).filter((s) => ![...s.ids].some((id) => needed.has(id) || builtin.has(id)));
  const drop = (kept: readonly Slot[]): Set<string> => {
    const out = new Set<string>();
    const keptIds = new Set(kept.flatMap((s) => [...s.ids]));
    for (const s of candidates) if (!kept.includes(s)) for (const id of s.ids) if (!keptIds.has(id)) out.add(id);
    return out;
  };
  let topology = pinned;
  if (candidates.length > 0) {
    if (await test(without(pinned, drop([])))) topology = without(pinned, drop([]));
    else {
      const kept = await ddmin(candidates, (k) => test(without(pinned, drop(k))), Math.max(0, budget - tries));
      const t = without(pinned, drop(kept));
      // ddmin returns what it last confirmed, or its input when nothing smaller failed.
      if (kept.length < candidates.length) topology = t;
    }
  }
  // Roots nothing uses, the last first; root 0 stays (a target's main machine). Later roots move down by one,
  // and the operations that name them with them.
  let ops = sc.ops;
  for (let r = topology.roots.length - 1; r >= 1; r--) {
    if (rootUsed(topology, ops, r)) continue;
    const next = withoutRoot({ topology, ops }, r);
    if (!(await test(next.topology, next.ops))) continue;
    ({ topology, ops } = next);
  }
  if (topology === pinned) return sc;
  return { topology, ops };
}
