/**
 * Generated ops stay within what the target carries out: hot-plug only
 * where the target hot-plugs (Capabilities.hotplugSlots), and PASID-tagged
 * DMA only on a target that has PASIDs. Raw ops and mutations (a perturbed
 * field, a device swapped for another root's) can step outside; the op is
 * dropped or its PASID tag removed.
 */
import { needs, routedIn, type Op } from '../harness/ops/catalog.ts';
import { walkDevices, type Topology } from '../harness/topology/types.ts';
import type { GenConstraints } from './constraints.ts';

const pluggable = new WeakMap<Topology, Set<string>>();

/** Devices alone in a root port's slot: where PCIe native hot-plug reaches. */
function portSlotDevices(t: Topology): Set<string> {
  let s = pluggable.get(t);
  if (s === undefined) {
    s = new Set([...walkDevices(t)].filter((w) => w.parent?.kind === 'root-port' && (w.parent.children ?? []).length === 1).map((w) => w.dev.id));
    pluggable.set(t, s);
  }
  return s;
}

/** The devices hot-plug reaches on this target; null: every one. */
export function hotplugReach(t: Topology, c: GenConstraints): ReadonlySet<string> | null {
  return c.hotplugSlots === 'root-port' ? portSlotDevices(t) : null;
}

export function withinReach(t: Topology, c: GenConstraints, ops: readonly Op[]): Op[] {
  const pasid = c.ops.includes('pasid-dma');
  const slots = hotplugReach(t, c);
  const out: Op[] = [];
  for (const op of ops) {
    if (needs(op, 'hotplug') && slots !== null && !slots.has(op.dev)) continue;
    if (routedIn(op, 'dma') && op.pasid !== undefined && !pasid) {
      const { pasid: _, ...rest } = op;
      out.push(rest);
      continue;
    }
    out.push(op);
  }
  return out;
}
