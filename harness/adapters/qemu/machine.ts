/**
 * The QEMU command line for a completed topology: the machine, RAM, one
 * expander bus per extra root (bus_nr = the root's bus number), root
 * ports with their physical slot numbers, and the devices at their slot
 * and function. Devices that start absent (hot-plug candidates) are left
 * out; isoroot plugs them with device_add.
 */
import { physicalSlots, walkDevices, DEFAULT_RAM, type DeviceSpec, type Topology } from '../../topology/types.ts';
import type { Platform } from './platform.ts';

/** QEMU's id of the bus of expander root r (the expander device's own id). */
export const expanderBusId = (r: number): string => `isoroot-r${r}`;

const hx = (n: number): string => '0x' + n.toString(16);

/** The -device driver and its device-specific properties. */
function driver(d: DeviceSpec, slots: Map<string, number>): string {
  switch (d.kind) {
    case 'edu':
      return 'edu';
    case 'pci-testdev':
      return 'pci-testdev';
    case 'root-port':
      // chassis and slot must be unique pairs; slot is the Physical Slot Number.
      return `pcie-root-port,chassis=1,slot=${slots.get(d.id)!}`;
    default:
      return d.qdev!;
  }
}

/** `-device` arguments (without the leading flag) for one device placed on `bus`. */
export function deviceArg(d: DeviceSpec, bus: string, slots: Map<string, number>, multifunction: boolean): string {
  return `${driver(d, slots)},id=${d.id},bus=${bus},addr=${hx(d.slot)}.${d.fn}${multifunction && d.fn === 0 ? ',multifunction=on' : ''}`;
}

export function machineArgs(t: Topology, p: Platform): string[] {
  const main = t.roots[0];
  const mainBus = p.machine === 'q35' ? 'pcie.0' : 'pci.0';
  const args = ['-machine', `${p.machine},vmport=off`, '-accel', 'tcg', '-nodefaults', '-no-user-config', '-display', 'none', '-S', '-m', `${(main.ram ?? DEFAULT_RAM) / 2 ** 20}M`];
  for (let r = 1; r < t.roots.length; r++) args.push('-device', `${p.expander},id=${expanderBusId(r)},bus_nr=${t.roots[r].bus},bus=${mainBus},addr=${hx(p.expanderSlot(r))}.0`);
  const slots = physicalSlots(t);
  // A slot with several functions needs multifunction=on on function 0.
  const fnsInSlot = new Map<string, number>();
  const key = (bus: string, d: DeviceSpec): string => `${bus}/${d.slot}`;
  const busOf = (root: number, parent: DeviceSpec | null): string => (parent !== null ? parent.id : root === 0 ? mainBus : expanderBusId(root));
  const placed = [...walkDevices(t)].filter(({ dev }) => dev.builtin !== true);
  for (const { root, dev, parent } of placed) fnsInSlot.set(key(busOf(root, parent), dev), (fnsInSlot.get(key(busOf(root, parent), dev)) ?? 0) + 1);
  for (const { root, dev, parent } of placed) {
    if (dev.present === false) continue;
    const bus = busOf(root, parent);
    args.push('-device', deviceArg(dev, bus, slots, (fnsInSlot.get(key(bus, dev)) ?? 1) > 1));
  }
  return args;
}
