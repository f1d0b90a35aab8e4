/**
 * A device's VFIO regions as vfio-pci reports them
 * (VFIO_DEVICE_GET_REGION_INFO, drivers/vfio/pci/vfio_pci_core.c): a BAR's
 * size with read and write, and mmap for memory BARs; the ROM read-only;
 * config space as large as Linux found it (256 bytes for a conventional
 * function, PCI 3.0 §6.1). No VGA region (EINVAL) without a VGA device.
 */
import type { DeviceSpec } from '../../topology/types.ts';

export const REGION_READ = 1;
export const REGION_WRITE = 2;
export const REGION_MMAP = 4;

export interface RegionInfo {
  size: number;
  flags: number;
  kind: 'mem' | 'io' | 'rom' | 'config' | 'none';
}

/** The BARs of the kinds the vfio-guest target builds (QEMU's hw/misc/edu.c, hw/misc/pci-testdev.c). */
const BARS: Partial<Record<DeviceSpec['kind'], { kind: 'mem' | 'io'; size: number }[]>> = {
  edu: [{ kind: 'mem', size: 0x100000 }],
  'pci-testdev': [
    { kind: 'mem', size: 0x1000 },
    { kind: 'io', size: 0x100 },
  ],
};

const CONFIG_SIZE: Partial<Record<DeviceSpec['kind'], number>> = { edu: 0x100, 'pci-testdev': 0x100 };

/**
 * Region `index` of a device the model knows, or null where vfio-pci refuses the index (EINVAL); size 0 for an empty
 * one. `pcie`: the device is a PCI Express function (a virtio device below a root port is; QEMU's virtio-pci on a
 * root bus or behind a PCIe-to-PCI bridge is conventional), whose config space Linux sizes at 4 KiB (PCIe Base §7.2).
 */
export function regionInfo(d: DeviceSpec, index: number, pcie = false): RegionInfo | null {
  if (index >= 8) return null;
  if (index === 7) return { size: pcie ? 0x1000 : (CONFIG_SIZE[d.kind] ?? 0x100), flags: REGION_READ | REGION_WRITE, kind: 'config' };
  if (index === 6) return { size: 0, flags: 0, kind: 'none' };
  const bar = BARS[d.kind]?.[index];
  if (bar === undefined) return { size: 0, flags: 0, kind: 'none' };
  return bar.kind === 'mem' ? { size: bar.size, flags: REGION_READ | REGION_WRITE | REGION_MMAP, kind: 'mem' } : { size: bar.size, flags: REGION_READ | REGION_WRITE, kind: 'io' };
}
