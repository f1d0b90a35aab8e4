/**
 * dev.plug and dev.unplug on QEMU: PCIe native hot-plug (PCIe Base §6.7)
 * at a root port's slot.
 *
 * - Plug is QMP device_add (through the monitor, with the same device
 *   arguments as the command line) onto the port's bus. QEMU then shows
 *   presence, latches Presence Detect Changed and Attention Button Pressed
 *   and gives the device the slot's power, as the model's plug does; it
 *   refuses a slot whose electromechanical interlock is engaged.
 * - Unplug is the eject of model/slot-eject.ts, as the model does it: QEMU
 *   has no surprise removal (device_del asks the guest through the
 *   attention button unless the slot is already off). The accesses go
 *   through CF8/CFC, and the sequence's CF8 latch is put back after them.
 *
 * After a Slot Control write the target asks QEMU which devices it still
 * holds, so an eject the sequence does itself is seen too.
 */
import { PCIE } from '../../model/capabilities.ts';
import { RP_PCIE } from '../../model/personalities/root-port-layout.ts';
import { ejectWrites } from '../../model/slot-eject.ts';
import { bdf } from '../../topology/bdf.ts';
import { physicalSlots, walkDevices, type DeviceSpec, type Topology } from '../../topology/types.ts';
import { cf8Access, keepingLatch } from './access.ts';
import { deviceArg } from './machine.ts';
import type { QemuProcess } from './process.ts';
import { QmpError } from './qmp.ts';
import { parseValue } from './qtest.ts';

/** pcie-root-port's vendor and device ID (1b36:000c) as one config dword. */
const ROOT_PORT_ID = 0x000c1b36n;
/** Slot Control, and Slot Status above it, in pcie-root-port's config space. */
export const SLOT_CONTROL = RP_PCIE + PCIE.SLTCTL;

export type PlugResult = 'ok' | 'busy' | { refused: string };
export type EjectResult = 'ok' | 'unreachable';

/** Where a hot-pluggable device sits: its root port's BDF and the port's qdev id. */
export interface PortSlot {
  dev: DeviceSpec;
  port: DeviceSpec;
  portBdf: number;
}

export function portSlotOf(t: Topology, id: string): PortSlot | null {
  for (const { root, dev, parent } of walkDevices(t)) {
    if (dev.id !== id) continue;
    if (parent === null || parent.kind !== 'root-port') return null;
    return { dev, port: parent, portBdf: bdf(t.roots[root].bus, parent.slot, parent.fn) };
  }
  return null;
}

/** device_add through the monitor: the same arguments as -device. */
export async function plug(q: QemuProcess, t: Topology, s: PortSlot, timeoutMs: number): Promise<PlugResult> {
  const out = (await q.qmp.hmp(`device_add ${deviceArg(s.dev, s.port.id, physicalSlots(t), false)}`, timeoutMs)).trim();
  if (out === '') return 'ok';
  // Words without a refusal: QEMU warns and plugs (hw/pci/pcie.c, a masked MSI-X vector: "Interrupt Mask set, irq is not generated").
  if ((await presentDevices(q, timeoutMs)).has(s.dev.id)) return 'ok';
  // hw/pci/pcie.c refuses a plug into a locked slot with EBUSY.
  return /electromechanically locked/.test(out) ? 'busy' : { refused: out };
}

/**
 * Ejects whatever is in the port's slot through Slot Control, leaving
 * Slot Control and Command Completed as they were (whether QEMU let the
 * device go, presentDevices tells). 'unreachable': no root port
 * answers at the port's BDF (the sequence routed its bus elsewhere).
 */
export async function eject(q: QemuProcess, s: PortSlot, timeoutMs: number): Promise<EjectResult> {
  const [, id, , slot] = await keepingLatch(q.qtest, [...cf8Access(s.portBdf, 0, 4), ...cf8Access(s.portBdf, SLOT_CONTROL, 4)], timeoutMs);
  if (parseValue(id) !== ROOT_PORT_ID) return 'unreachable';
  const v = Number(parseValue(slot)); // Slot Control, Slot Status above it
  const cmds = ejectWrites(v & 0xffff, v >>> 16).flatMap((w) => cf8Access(s.portBdf, RP_PCIE + w.reg, 2, w.value));
  await keepingLatch(q.qtest, cmds, timeoutMs);
  return 'ok';
}

/**
 * The ids of the devices QEMU holds now. An eject takes a device out of
 * /machine/peripheral at once; its DEVICE_DELETED event waits until the
 * last reference to it is gone, which can be later.
 */
export async function presentDevices(q: QemuProcess, timeoutMs: number): Promise<Set<string>> {
  const r = await q.qmp.execute('qom-list', { path: '/machine/peripheral' }, timeoutMs);
  if (!Array.isArray(r)) throw new QmpError('qom-list', 'Protocol', 'expected a list of properties');
  return new Set(r.flatMap((p: unknown) => (typeof p === 'object' && p !== null && typeof (p as { name?: unknown }).name === 'string' && String((p as { type?: unknown }).type).startsWith('child<') ? [(p as { name: string }).name] : [])));
}
