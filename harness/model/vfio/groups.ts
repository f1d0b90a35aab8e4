/**
 * IOMMU groups as Linux forms them for PCI devices (drivers/iommu/iommu.c
 * pci_device_group; Documentation/driver-api/vfio.rst "Groups, Devices,
 * and IOMMUs"): the smallest sets of devices the IOMMU can tell apart,
 * given what the topology lets a device's DMA reach without the IOMMU
 * seeing it. Devices are taken in the order Linux probes them (a bridge
 * before what is below it), and a device:
 *  1. joins the group of the highest bridge between it and the root whose
 *     path to the root does not have ACS isolation (PCIe Base §6.12.1.1:
 *     Source Validation, Request and Completion Redirect, Upstream
 *     Forwarding) — conventional and PCIe-to-PCI bridges never have it,
 *     so everything behind one shares its group;
 *  2. else joins a function of its own slot when both are functions of a
 *     multi-function device without ACS (PCIe Base §6.12.1.2);
 *  3. else has a group of its own.
 */
import type { RuleId } from '../../spec/rules.ts';
import { walkDevices, type DeviceSpec, type Topology } from '../../topology/types.ts';

/** What a device is to Linux's group rules. */
export interface GroupNode {
  id: string;
  /** The bridge its bus hangs from; null on a root bus. */
  parent: string | null;
  /** Its bus, as a key (the root, and the bridge above): functions of one slot share it. */
  bus: string;
  slot: number;
  /** The function sits in a slot with several functions (Header Type bit 7). */
  multifunction: boolean;
  /** pci_acs_enabled for this device with SV, RR, CR and UF required. */
  acs: boolean;
}

export interface Group {
  members: string[];
  /** Why these devices are together (or alone). */
  rule: RuleId;
}

/**
 * Whether Linux finds ACS enabled on a device: a root port built with
 * ACS (Linux turns its controls on at enumeration, pci_std_enable_acs);
 * any other device of ours has no ACS capability, and for a
 * single-function endpoint the question never arises (§6.12.1.2 makes
 * ACS optional there, and Linux asks only of multi-function ones).
 * Conventional PCI-PCI bridges and PCIe-to-PCI bridges never have it
 * (drivers/pci/pci.c pci_acs_enabled).
 */
export function acsOf(d: DeviceSpec): boolean {
  if (d.kind === 'root-port') return d.acs !== false;
  return false;
}

/** The devices of a topology as the group rules see them, in probe order. */
export function groupNodes(t: Topology): GroupNode[] {
  const all = [...walkDevices(t)].filter((w) => w.dev.present !== false);
  const busOf = (root: number, parent: DeviceSpec | null): string => `${root}/${parent?.id ?? ''}`;
  const perSlot = new Map<string, number>();
  for (const w of all) {
    const k = `${busOf(w.root, w.parent)}/${w.dev.slot}`;
    perSlot.set(k, (perSlot.get(k) ?? 0) + 1);
  }
  // walkDevices goes depth first, parents first: the order Linux adds (and groups) devices in.
  return all.map(({ root, dev, parent }) => {
    const headerMf = dev.identity?.headerType !== undefined && (dev.identity.headerType & 0x80) !== 0;
    return {
      id: dev.id,
      parent: parent?.id ?? null,
      bus: busOf(root, parent),
      slot: dev.slot,
      multifunction: headerMf || (perSlot.get(`${busOf(root, parent)}/${dev.slot}`) ?? 1) > 1,
      acs: acsOf(dev),
    };
  });
}

/** The groups of a topology's present devices, in the order Linux creates them. */
export function predictGroups(t: Topology): Group[] {
  const nodes = groupNodes(t);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const groupOf = new Map<string, Group>();
  const groups: Group[] = [];
  // pci_acs_path_enabled: every device from `n` up to the root bus has ACS.
  const acsPath = (n: GroupNode): boolean => {
    for (let p: GroupNode | undefined = n; p !== undefined; p = p.parent === null ? undefined : byId.get(p.parent)) if (!p.acs) return false;
    return true;
  };
  for (const n of nodes) {
    // 1. Up the path: the first bridge (going up) whose own path to the root is isolated stops the walk;
    //    below it, the highest bridge's group takes the device.
    let joined: Group | undefined;
    for (let b = n.parent === null ? undefined : byId.get(n.parent); b !== undefined; b = b.parent === null ? undefined : byId.get(b.parent)) {
      if (acsPath(b)) break;
      joined = groupOf.get(b.id);
      if (joined !== undefined) break;
    }
    if (joined !== undefined) {
      joined.members.push(n.id);
      joined.rule = 'vfio.group.no-acs';
      groupOf.set(n.id, joined);
      continue;
    }
    // 2. A multi-function device without ACS: its functions share a group.
    if (n.multifunction && !n.acs) {
      const peer = nodes.find((m) => m !== n && m.bus === n.bus && m.slot === n.slot && m.multifunction && !m.acs && groupOf.has(m.id));
      if (peer !== undefined) {
        const g = groupOf.get(peer.id)!;
        g.members.push(n.id);
        g.rule = 'vfio.group.multifunction';
        groupOf.set(n.id, g);
        continue;
      }
    }
    // 3. A group of its own.
    const g: Group = { members: [n.id], rule: 'vfio.group.isolated' };
    groups.push(g);
    groupOf.set(n.id, g);
  }
  return groups;
}
