/**
 * The capabilities a VFIO user of a device reads from its config space
 * (PCI 3.0 §6.7: the list starts at 0x34 when Status bit 4 is set), for
 * what vfio-user says about interrupts: MSI's Multiple Message Capable
 * (§6.8.1.3) and MSI-X's Table Size (§6.8.2.3). Both ends use it: the
 * server to answer DEVICE_GET_IRQ_INFO, the client to describe a device.
 */
import { capabilityList } from '../../spec/cap-list.ts';

export const CAP_ID = { pm: 0x01, msi: 0x05, pcie: 0x10, msix: 0x11 } as const;

export interface FoundCaps {
  ids: number[];
  msiVectors?: number;
  msixVectors?: number;
  /** Offset of the Power Management capability (its PMCSR at +4 holds the power state). */
  pm?: number;
  /** Offset of the PCI Express capability (its Device Control at +8 starts a function-level reset). */
  pcie?: number;
  /** Interrupt Pin (0x3d): 0 means no INTx. */
  pin: number;
}

export function findCaps(read: (off: number, size: number) => number): FoundCaps {
  const out: FoundCaps = { ids: [], pin: read(0x3d, 1) };
  for (const { id, off: p } of capabilityList((o) => read(o, 1))) {
    out.ids.push(id);
    if (id === CAP_ID.msi) out.msiVectors = 1 << ((read(p + 2, 2) >> 1) & 7);
    if (id === CAP_ID.msix) out.msixVectors = (read(p + 2, 2) & 0x7ff) + 1;
    if (id === CAP_ID.pm) out.pm = p;
    if (id === CAP_ID.pcie) out.pcie = p;
  }
  return out;
}
