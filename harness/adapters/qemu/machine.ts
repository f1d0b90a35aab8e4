/**
 * The QEMU command line for a completed topology: the machine, RAM, one
 * expander bus per extra root (bus_nr = the root's bus number), root
 * ports with their physical slot numbers, and the devices at their slot
 * and function. Devices that start absent (hot-plug candidates) are left
 * out; isoroot plugs them with device_add.
 */
import { physicalSlots, walkDevices, DEFAULT_RAM, type DeviceSpec, type Topology } from '../../topology/types.ts';
import type { Platform } from './platform.ts';
import type { QemuAccel } from './build.ts';

/** RAM beyond the topology's, for the harness: DMA scratch and IOMMU tables (a reserved range to the model). */
export const HARNESS_RAM = 4 * 2 ** 20;
/** Its first part: scratch for DMA data (edu's buffer moves through it); the rest holds IOMMU tables. */
export const SCRATCH_SIZE = 0x10000;

/** The firmware image's file name in QEMU's private directory. */
export const HALT_BIOS = 'halt.bin';

/**
 * A 64 KiB firmware whose reset vector (at 0xfff0, i.e. 0xfffffff0) is
 * cli; hlt; jmp back to hlt. Under TCG QEMU never runs a guest here, but
 * edu's DMA needs virtual time to pass (QMP cont): then no firmware must
 * run, or it would enumerate the bus and assign BARs the model does not
 * know of. With the qtest accelerator no guest code runs at all; the
 * image is loaded all the same, so that both ways map the same ROM (the
 * BIOS shadow and flash are reserved ranges; nothing the target does
 * relies on firmware: the harness programs ECAM, buses and BARs itself).
 */
export function haltBios(): Uint8Array {
  const img = new Uint8Array(0x10000).fill(0xf4);
  img.set([0xfa, 0xf4, 0xeb, 0xfd], 0xfff0);
  return img;
}

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
    case 'iommu-testdev':
      return 'iommu-testdev';
    case 'root-port':
      // chassis and slot must be unique pairs; slot is the Physical Slot Number.
      return `pcie-root-port,chassis=1,slot=${slots.get(d.id)!}`;
    default:
      return d.qdev!;
  }
}

/** `-device` arguments (without the leading flag) for one device placed on `bus`. */
export function deviceArg(d: DeviceSpec, bus: string, slots: Map<string, number>, multifunction: boolean): string {
  return `${driver(d, slots)},id=${d.id},bus=${bus},addr=${hx(d.slot)}.${d.fn}${multifunction ? ',multifunction=on' : ''}`;
}

/** How the machine runs: with the qtest accelerator, or TCG with its CPUs stopped (build.ts). */
export function accelArgs(accel: QemuAccel): string[] {
  // qtest: no CPU runs; the VM is left running (not -S), since virtual time's timers fire on clock_step only while it runs.
  // tcg: -icount sleep=off: while the VM runs, virtual time warps to the next timer as soon as the CPU halts.
  return accel === 'qtest' ? ['-accel', 'qtest'] : ['-accel', 'tcg', '-icount', 'shift=0,sleep=off', '-S'];
}

/** QEMU's arguments for the machine of `t`, of -machine type `machineType` (the platform's alias by default), run with `accel`. */
export function machineArgs(t: Topology, p: Platform, machineType: string = p.machine, accel: QemuAccel = 'tcg'): string[] {
  const main = t.roots[0];
  const mainBus = p.machine === 'q35' ? 'pcie.0' : 'pci.0';
  const ram = (main.ram ?? DEFAULT_RAM) + HARNESS_RAM;
  // On q35, native PCIe hot-plug on every root port: ACPI would take over the ports on the main bus.
  const acpi = p.machine === 'q35' ? ['-global', 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off'] : [];
  // An imported command line's machine (a versioned type, its properties) and its own arguments go as they are.
  const q = t.qemu;
  const machine = q?.machine ?? machineType;
  const args = [...acpi, '-machine', `${machine},vmport=off`, ...accelArgs(accel), ...(q?.defaults === true ? [] : ['-nodefaults']), '-no-user-config', '-display', 'none', '-m', `${ram / 2 ** 20}M`, '-bios', `{dir}/${HALT_BIOS}`];
  // The IOMMU first, so that every PCI device is created behind it.
  // Scalable mode with 20-bit PASIDs and 48-bit addresses (the 7.2 machine type's default is 39), translating through
  // first-stage tables (fsts=on) or second-stage ones: QEMU offers one of them (build.ts scalableIommu says which it has).
  if (main.iommu === true) args.push('-device', `intel-iommu,intremap=off${main.scalable === undefined ? '' : `,scalable-mode=on,pasid-bits=20,aw-bits=48${main.scalable === 'first' ? ',fsts=on' : ''}`}`);
  for (let r = 1; r < t.roots.length; r++) args.push('-device', `${p.expander},id=${expanderBusId(r)},bus_nr=${t.roots[r].bus},bus=${mainBus},addr=${hx(p.expanderSlot(r))}.0`);
  const slots = physicalSlots(t);
  // A slot with several functions needs multifunction=on on function 0; every function gets it, so each shows the
  // Header Type's multi-function bit, as the model's functions of such a slot do.
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
  args.push(...(q?.args ?? []));
  return args;
}

/** What isoroot itself adds to a command line that an imported topology describes, in words for the trace. */
export function addedArgs(t: Topology, p: Platform, machineType: string, accel: QemuAccel): string[] {
  const all = machineArgs(t, p, machineType, accel);
  const ram = (t.roots[0].ram ?? DEFAULT_RAM) / 2 ** 20;
  const own: string[] = [];
  // The flags isoroot sets with their values; the topology's devices, machine, RAM and the input's own arguments are said apart.
  const passed = all.length - (t.qemu?.args.length ?? 0);
  for (let i = 0; i < passed; i++) {
    const a = all[i];
    if (!a.startsWith('-') || ['-device', '-m', '-machine'].includes(a)) continue;
    if (a === '-nodefaults' && t.qemu !== undefined) continue; // the input's own
    const v = all[i + 1];
    own.push(v !== undefined && !v.startsWith('-') && i + 1 < passed ? `${a} ${v}` : a);
  }
  return [
    ...own,
    '-machine …,vmport=off',
    `-m ${ram + HARNESS_RAM / 2 ** 20}M (the topology's ${ram} MiB and ${HARNESS_RAM / 2 ** 20} MiB isoroot keeps above it for DMA scratch and IOMMU tables)`,
    '-qtest, -qmp (isoroot drives QEMU through them)',
  ];
}
