/** Where each device of a topology sits: its root, its parent bridge, its uid and whether it is multi-function. */
import type { PciFunction } from './function.ts';
import type { PortPlacement } from './personalities/root-port.ts';
import { physicalSlots, walkDevices, type DeviceSpec, type Topology } from '../topology/types.ts';

/** Where a device sits in the topology and, while present, its function. */
export interface DeviceSlot {
  spec: DeviceSpec;
  root: number;
  parent: DeviceSpec | null;
  uid: number;
  multifunction: boolean;
  /** A root port's slot number; null for other kinds. */
  port: PortPlacement | null;
  fn: PciFunction | null;
  /** The last instance, kept after unplug so its mapping history stays queryable. */
  last: PciFunction | null;
}

export type SlotInfo = Pick<DeviceSlot, 'spec' | 'root' | 'parent' | 'uid' | 'multifunction' | 'port'>;
const slotCache = new WeakMap<Topology, SlotInfo[]>();

/**
 * Where each device of a topology sits, its uid (its spec's, else 1-based in walk order)
 * and whether it shares its slot (multi-function). Computed once per topology.
 * A root port gets its Physical Slot Number.
 */
export function slotsOf(t: Topology): SlotInfo[] {
  const hit = slotCache.get(t);
  if (hit !== undefined) return hit;
  const walked = [...walkDevices(t)];
  const slotCount = new Map<string, number>();
  const key = (root: number, parent: DeviceSpec | null, slot: number): string => `${root}/${parent?.id ?? ''}/${slot}`;
  for (const { root, dev, parent } of walked) slotCount.set(key(root, parent, dev.slot), (slotCount.get(key(root, parent, dev.slot)) ?? 0) + 1);
  const slots = physicalSlots(t);
  const port = (dev: DeviceSpec): PortPlacement | null => (dev.kind === 'root-port' ? { slot: slots.get(dev.id)! } : null);
  const out = walked.map(({ root, dev, parent }, i) => ({ spec: dev, root, parent, uid: dev.uid ?? i + 1, multifunction: (slotCount.get(key(root, parent, dev.slot)) ?? 1) > 1, port: port(dev) }));
  slotCache.set(t, out);
  return out;
}
