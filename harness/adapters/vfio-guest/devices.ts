/**
 * Where the guest's kernel put the topology's devices: each found by its
 * sysfs path, i.e. the chain of device.function numbers from its root bus
 * (pci0000:<root bus>/0000:..:SS.F/…), never by a bus or group number,
 * which move with the firmware and with every device added.
 */
import { walkDevices, type DeviceSpec, type Topology } from '../../topology/types.ts';

/** One device as the agent's scan reports it. */
export interface Scanned {
  path: string;
  bdf: string;
  group: number | null;
  driver: string | null;
  id: string;
}

export function parseScan(words: readonly string[]): Scanned[] {
  return words.map((w) => {
    const [path, group, driver, id] = w.split(',');
    return { path, bdf: path.split('/').pop()!, group: group === '-' ? null : Number(group), driver: driver === '-' ? null : driver, id };
  });
}

const hx2 = (n: number): string => n.toString(16).padStart(2, '0');

/** The sysfs chain of `dev`: its root bus, then slot.fn of each device down to it. */
export function chainOf(t: Topology): Map<string, { root: string; fns: string[] }> {
  const out = new Map<string, { root: string; fns: string[] }>();
  const byId = new Map<string, DeviceSpec>();
  for (const { root, dev, parent } of walkDevices(t)) {
    byId.set(dev.id, dev);
    const above = parent === null ? { root: `pci0000:${hx2(t.roots[root].bus)}`, fns: [] } : out.get(parent.id)!;
    out.set(dev.id, { root: above.root, fns: [...above.fns, `${hx2(dev.slot)}.${dev.fn}`] });
  }
  return out;
}

/** Topology id → the scanned device at its place; devices not found are absent. */
export function placeDevices(t: Topology, scan: readonly Scanned[]): Map<string, Scanned> {
  const key = (root: string, fns: readonly string[]): string => `${root}/${fns.join('/')}`;
  const byChain = new Map<string, Scanned>();
  for (const s of scan) {
    const parts = s.path.split('/');
    byChain.set(key(parts[0], parts.slice(1).map((p) => p.slice(-4))), s);
  }
  const out = new Map<string, Scanned>();
  for (const [id, c] of chainOf(t)) {
    const s = byChain.get(key(c.root, c.fns));
    if (s !== undefined) out.set(id, s);
  }
  return out;
}
