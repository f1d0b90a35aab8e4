/**
 * A topology as the vfio-guest target builds it in a q35 guest: the main
 * root's chipset functions, an expander host function per extra root
 * (pxb-pcie), and the agent's virtio-serial channel come with the machine;
 * the rest must be kinds the guest has (edu, pci-testdev, root ports with
 * or without ACS, pcie-pci-bridge and pci-bridge, and virtio devices that
 * Linux's own virtio-pci driver takes).
 */
import { InputError } from '../../util/errors.ts';
import { canonicalTopology } from '../../topology/canonical.ts';
import { topologyProblem } from '../../topology/validate.ts';
import { walkDevices, type DeviceSpec, type Personality, type Topology } from '../../topology/types.ts';
import { Q35, expanderHostId } from '../qemu/platform.ts';

export const VFIO_GUEST_PERSONALITIES: readonly Personality[] = ['edu', 'pci-testdev', 'root-port', 'bridge', 'opaque'];
/** QEMU's bridges, by the qdev a bridge names. */
export const BRIDGE_QDEVS = ['pcie-pci-bridge', 'pci-bridge'] as const;
/** Devices with a driver in Debian's cloud kernel (virtio-pci), for groups that a kernel driver makes not viable. */
export const NATIVE_QDEVS = ['virtio-rng-pci'] as const;
/** The agent's channel: a virtio-serial device on the main root, in a slot no expander takes. */
export const CHANNEL: DeviceSpec = { id: 'vfio-guest-channel', kind: 'opaque', slot: 0x17, fn: 0, builtin: true, qdev: 'virtio-serial-pci', identity: { vendor: 0x1af4, device: 0x1003, classCode: 0x078000 } };
export const MAX_GUEST_ROOTS = 8;

const fail = (path: string, expected: string): never => {
  throw new InputError(`topology for vfio-guest: ${path}`, expected);
};

function checkDevice(d: DeviceSpec, path: string, place: 'main' | 'expander' | 'below', acsOptional: boolean): void {
  if (d.builtin === true) return;
  if (d.acs === false && !acsOptional) fail(`${path}.acs`, "nothing: this QEMU's pcie-root-port has no disable-acs property (QEMU 11 dropped it; Debian's 7.2 has it)");
  if (!VFIO_GUEST_PERSONALITIES.includes(d.kind)) fail(`${path}.kind`, `one of ${VFIO_GUEST_PERSONALITIES.join(', ')}`);
  if (d.kind === 'bridge' && !(BRIDGE_QDEVS as readonly string[]).includes(d.qdev ?? '')) fail(`${path}.qdev`, `the bridge's QEMU device: ${BRIDGE_QDEVS.join(' or ')}`);
  if (d.kind === 'opaque' && !(NATIVE_QDEVS as readonly string[]).includes(d.qdev ?? '')) fail(`${path}.qdev`, `one of ${NATIVE_QDEVS.join(', ')} (a device the guest kernel drives)`);
  if ((d.kind === 'edu' || d.kind === 'pci-testdev' || d.kind === 'root-port') && d.qdev !== undefined) fail(`${path}.qdev`, `no qdev: a ${d.kind} is QEMU's own`);
  if (d.present === false) fail(`${path}.present`, 'present: the guest has no hot-plug');
  if (d.emulator !== undefined || d.domain !== undefined || d.pasidContext !== undefined) fail(path, 'no emulator, domain or PASID context: VFIO containers are made by the operations');
  if (place === 'expander' && d.kind !== 'root-port') fail(`${path}.kind`, 'a root port: a pxb-pcie expander root takes only root ports');
  if (d.kind === 'root-port' && place === 'below') fail(`${path}.kind`, 'a root port on a root bus');
}

/** Completes and checks a topology for the guest; throws InputError naming what it cannot build. */
export function prepareGuestTopology(t: Topology, acsOptional = true): Topology {
  if (t.roots.length > MAX_GUEST_ROOTS) fail('roots', `at most ${MAX_GUEST_ROOTS} roots (the main root and 7 pxb-pcie expanders)`);
  if ((t.emulators ?? []).length > 0) fail('emulators', 'none');
  t.roots.forEach((root, r) => {
    if (r === 0 && root.bus !== 0) fail('roots[0].bus', "0: the machine's main root bus");
    if (r > 0 && root.bus === 0) fail(`roots[${r}].bus`, "the expander's bus_nr, 1..255");
    if (root.iommu === false) fail(`roots[${r}].iommu`, 'absent or true: the guest has intel-iommu');
    if (root.scalable !== undefined || (root.pasidContexts ?? 0) > 0) fail(`roots[${r}]`, 'no scalable mode or PASID contexts: the guest kernel has no PASID support for VFIO (no iommufd)');
  });
  for (const { root, dev, parent } of walkDevices(t)) checkDevice(dev, `device ${dev.id}`, parent !== null ? 'below' : root === 0 ? 'main' : 'expander', acsOptional);
  const main = t.roots[0];
  const own = main.devices.filter((d) => d.builtin !== true);
  const mustHave: DeviceSpec[] = [...Q35.builtins, CHANNEL, ...t.roots.slice(1).map((_, i) => ({ id: expanderHostId(i + 1), kind: 'opaque' as const, slot: Q35.expanderSlot(i + 1), fn: 0, builtin: true, identity: Q35.expanderHost }))];
  const taken = new Map(mustHave.map((b) => [b.slot, b.id]));
  for (const d of own) {
    const who = taken.get(d.slot);
    if (who !== undefined) fail(`device ${d.id}.slot`, `a slot the machine leaves free (slot ${d.slot} holds ${who})`);
  }
  const roots = t.roots.map((root, r) => {
    const { ram: _ram, reserved: _res, intxRouting: _i, ecam: _e, cf8: _c, ...rest } = root;
    return r === 0 ? { ...rest, iommu: true, devices: [...own, ...mustHave] } : rest;
  });
  const out: Topology = { ...t, roots };
  const problem = topologyProblem(out);
  if (problem !== null) fail(problem.path, problem.expected);
  return canonicalTopology(out);
}
