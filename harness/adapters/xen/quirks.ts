/**
 * Xen vPCI's known departures as variants of the model (quirks): a
 * finding belongs to a known entry of corpora/xen when the model with
 * that entry's quirk explains its trace without a violation.
 */
import type { Quirk } from '../../model/quirk.ts';

export const XEN_QUIRKS: readonly Quirk[] = [
  {
    name: 'xen-msi-address-low-bits',
    describes:
      "vPCI's MSI Message Address handler keeps the whole dword written (xen/drivers/vpci/msi.c address_write: msi->address |= val) and reads it back, so the reserved bits 1:0 read as written where PCI 3.0 §6.8.1.4 has them read 0 (4.17 to 4.22)",
    rules: { msiAddressLowBits: (written) => written & 3 },
  },
];
