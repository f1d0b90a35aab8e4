/**
 * Which function a configuration request reaches: the root of the config
 * space whose bus range holds the bus, then type 0 on its root bus, or
 * forwarding by the bridge whose secondary..subordinate range holds the bus
 * (PCI-to-PCI Bridge 1.2 §3.1.2.1; each bridge says whether it takes the
 * request, and root ports answer as QEMU's bus walk does).
 */
import type { Bus } from './bus.ts';
import type { PciFunction } from './function.ts';
import type { Bridge } from './personalities/bridge.ts';
import type { Status } from '../ops/observation.ts';
import { ownerOf, type Topology } from '../topology/types.ts';

/** The root of config space `owner` whose bus range holds `bus`, or -1. */
export function rootForBus(t: Topology, owner: number, bus: number): number {
  for (let r = 0; r < t.roots.length; r++) if (ownerOf(t, r, 'config') === owner && bus >= t.roots[r].bus && bus <= t.roots[r].busLimit) return r;
  return -1;
}

/**
 * The root a config request for `bus` enters under QEMU's bus walk
 * (hw/pci/pci.c pci_find_bus_nr, a known bug's quirk): the children of
 * bus 0 are tried newest first (the main root's ports, created after the
 * expanders, then the expanders from the last), and the first whose
 * number is the bus, or whose bridges' secondary..subordinate range holds
 * it, takes the request, whether or not the bus is below it. -1: none.
 */
export function claimedRoot(t: Topology, rootBuses: readonly Bus[], owner: number, bus: number): number {
  if (ownerOf(t, 0, 'config') !== owner) return rootForBus(t, owner, bus);
  if (bus === t.roots[0].bus) return 0;
  const claims = (b: Bus): boolean => b.functions().some((f) => f.isBridge && (f as Bridge).forwards(bus, true));
  const ports = rootBuses[0].functions().filter((f) => f.isBridge).reverse();
  if (ports.some((f) => (f as Bridge).forwards(bus, true))) return 0;
  for (let r = t.roots.length - 1; r > 0; r--) if (ownerOf(t, r, 'config') === owner && (bus === t.roots[r].bus || claims(rootBuses[r]))) return r;
  return -1;
}

/**
 * The function at (bus, devfn) below root r, or why nobody answers: 'ur' on
 * a root bus or a PCIe link (PCIe Base §7.3.1: a link carries device 0
 * only), 'ma' on a conventional bus (PCI 3.0 §3.3.3.1).
 */
export function routeConfig(t: Topology, rootBuses: readonly Bus[], r: number, bus: number, devfn: number): PciFunction | Status {
  if (bus === t.roots[r].bus) return rootBuses[r].at(devfn) ?? 'ur';
  // A root sharing another's config space is entered through its bridges' ranges (QEMU's expander buses).
  const expander = ownerOf(t, r, 'config') !== r;
  let cur = rootBuses[r];
  for (let depth = 0; depth < 256; depth++) {
    let next: Bridge | null = null;
    const byNumber = !(expander && cur.upstream === null);
    for (const f of cur.functions()) {
      if (f.isBridge && (f as Bridge).forwards(bus, byNumber)) {
        next = f as Bridge;
        break;
      }
    }
    if (next === null) return cur.link || cur.upstream === null ? 'ur' : 'ma';
    if (next.secondaryBus === bus) {
      const sb = next.secondary;
      if (sb.link && devfn >> 3 !== 0) return 'ur';
      return sb.at(devfn) ?? (sb.link ? 'ur' : 'ma');
    }
    cur = next.secondary;
  }
  return 'ur';
}
