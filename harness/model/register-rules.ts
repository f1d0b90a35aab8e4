/**
 * Which rule decides a register's value: the header's registers by offset
 * (PCI 3.0 §6.2, PCI-to-PCI Bridge 1.2 §3.2), the capabilities by where
 * the function has them, everything else by the device's own definition.
 * A finding on a config read names the rule of its first register.
 */
import type { RuleId } from '../spec/rules.ts';
import type { OpKind } from '../ops/catalog.ts';
import type { PciFunction } from './function.ts';
import * as H from './header.ts';
import { PCIE } from './capabilities.ts';

/** The rule of an op's outcome where nothing more specific applies. Exhaustive: a new op kind does not compile without one. */
export const OP_RULES: Record<OpKind, RuleId> = {
  'cfg.read': 'config.routing',
  'cfg.write': 'config.routing',
  'mmio.read': 'decode.bar',
  'mmio.write': 'decode.bar',
  'pio.read': 'decode.bar',
  'pio.write': 'decode.bar',
  'dma.map': 'iommu.map',
  'dma.unmap': 'iommu.map',
  'dma.attach': 'iommu.attach',
  'dma.detach': 'iommu.attach',
  'dma.read': 'dma.translation',
  'dma.write': 'dma.translation',
  'pasid.alloc': 'pasid.context',
  'pasid.free': 'pasid.context',
  'pasid.bind': 'pasid.context',
  'pasid.unbind': 'pasid.context',
  'pasid.invalidate': 'pasid.context',
  'emu.map-bdf': 'emulator.routing',
  'emu.unmap-bdf': 'emulator.routing',
  'emu.map-range': 'emulator.routing',
  'emu.unmap-range': 'emulator.routing',
  'dev.plug': 'lifecycle.hotplug',
  'dev.unplug': 'lifecycle.hotplug',
  'dev.reset': 'lifecycle.reset',
  'root.reset': 'lifecycle.root-reset',
  'clock.step': 'platform.clock',
  'region.read': 'region.access',
  'region.write': 'region.access',
  'vfio.bind': 'vfio.viability',
  'vfio.group.open': 'vfio.group.file',
  'vfio.group.close': 'vfio.group.file',
  'vfio.group.status': 'vfio.viability',
  'vfio.group.members': 'isolation.vfio-group',
  'vfio.container.open': 'vfio.container',
  'vfio.container.close': 'vfio.container',
  'vfio.set-container': 'vfio.container',
  'vfio.unset-container': 'vfio.container',
  'vfio.set-iommu': 'vfio.container',
  'vfio.device.open': 'vfio.device.open',
  'vfio.device.close': 'vfio.device.open',
  'vfio.device.info': 'vfio.reset',
  'vfio.region.info': 'vfio.region',
  'vfio.region.read': 'vfio.region',
  'vfio.region.write': 'vfio.region',
  'vfio.dma.map': 'vfio.dma.map',
  'vfio.dma.unmap': 'vfio.dma.map',
  'vfio.reset': 'vfio.reset',
  'vfio.dma': 'isolation.vfio-container',
};

const TYPE0: [number, number, RuleId][] = [
  [H.VENDOR_ID, 4, 'header.identity'],
  [H.COMMAND, 2, 'header.command'],
  [H.STATUS, 2, 'header.status'],
  [H.REVISION, 4, 'header.identity'],
  [H.CACHE_LINE, 2, 'header.misc'],
  [H.HEADER_TYPE, 1, 'header.identity'],
  [H.BIST, 1, 'header.misc'],
  [H.BAR0, 24, 'header.bar'],
  [0x28, 8, 'header.misc'], // CardBus CIS pointer, subsystem IDs
  [H.ROM_TYPE0, 4, 'header.rom'],
  [H.CAP_PTR, 8, 'header.cap-list'],
  [H.INTERRUPT_LINE, 4, 'header.misc'],
];

const TYPE1: [number, number, RuleId][] = [
  [H.VENDOR_ID, 0x10, 'header.identity'],
  [H.COMMAND, 2, 'header.command'],
  [H.STATUS, 2, 'header.status'],
  [H.CACHE_LINE, 2, 'header.misc'],
  [H.BIST, 1, 'header.misc'],
  [H.BAR0, 8, 'header.bar'],
  [H.PRIMARY_BUS, 4, 'bridge.bus-numbers'],
  [H.IO_BASE, 2, 'bridge.windows'],
  [H.SEC_STATUS, 2, 'header.status'],
  [H.MEM_BASE, 0x14, 'bridge.windows'],
  [H.IO_BASE_UPPER, 4, 'bridge.windows'],
  [H.CAP_PTR, 4, 'header.cap-list'],
  [H.ROM_TYPE1, 4, 'header.rom'],
  [H.INTERRUPT_LINE, 2, 'header.misc'],
  [H.BRIDGE_CONTROL, 2, 'bridge.control'],
];

const inRange = (reg: number, start: number, len: number): boolean => reg >= start && reg < start + len;

/** A header table as a lookup by register byte 0..0x3f (configRule runs on every config access). */
function byByte(table: readonly [number, number, RuleId][]): RuleId[] {
  const out: RuleId[] = [];
  for (let reg = 0; reg < 0x40; reg++) out.push(table.find(([start, len]) => inRange(reg, start, len))?.[2] ?? 'config.read-only');
  return out;
}
const TYPE0_BYTES = byByte(TYPE0);
const TYPE1_BYTES = byByte(TYPE1);

/** The rule a device's own registers follow, by its personality. */
export function deviceRule(fn: PciFunction): RuleId {
  switch (fn.spec.kind) {
    case 'endpoint':
      return 'device.endpoint';
    case 'edu':
      return 'device.edu';
    case 'pci-testdev':
      return 'device.pci-testdev';
    case 'iommu-testdev':
      return 'device.iommu-testdev';
    case 'root-port':
      return 'device.root-port';
    case 'host-bridge':
      return 'device.host-bridge';
    case 'bridge':
      return 'device.bridge';
    case 'opaque':
      return 'device.opaque';
  }
}

/** The rule that decides the value of config register `reg` of `fn`. */
export function configRule(fn: PciFunction, reg: number): RuleId {
  if (reg >= fn.cfg.size) return 'config.size';
  if (reg < 0x40) return (fn.isBridge ? TYPE1_BYTES : TYPE0_BYTES)[reg];
  const c = fn.caps;
  if (c.msi !== undefined && inRange(reg, c.msi.off, c.msi.pending + 4 - c.msi.off)) return 'cap.msi';
  if (c.msix !== undefined && inRange(reg, c.msix.off, 12)) return 'cap.msix';
  if (c.pm !== undefined && inRange(reg, c.pm.off, 8)) return 'cap.pm';
  if (c.pcie !== undefined && inRange(reg, c.pcie.off, PCIE.SIZE)) return 'cap.pcie';
  if (c.pasid !== undefined && inRange(reg, c.pasid.off, 8)) return 'cap.pasid';
  if (c.ats !== undefined && inRange(reg, c.ats.off, 8)) return 'cap.ats';
  if (c.acs !== undefined && inRange(reg, c.acs.off, 8)) return 'cap.acs';
  return deviceRule(fn);
}

/** The rule that decides a value read from a function's region (a BAR or the ROM). */
export function regionRule(fn: PciFunction, region: number, off: number): RuleId {
  const x = fn.caps.msix;
  if (x !== undefined && region === x.bar && off >= x.table && off < x.pba + 0x800) return 'cap.msix';
  return deviceRule(fn);
}
