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
  {
    name: 'xen-guest-command-keeps-bits',
    describes:
      "a guest's Command register is Xen's copy (xen/drivers/vpci/header.c cmd_write: header->guest_cmd = cmd; guest_cmd_read returns it), so Special Cycles, Memory Write and Invalidate and VGA Palette Snoop (bits 3-5), which no reserved-preserve mask covers, read back as the guest wrote them though the device implements none of them (PCI 3.0 §6.2.2: they read 0) (4.21, 4.22)",
    rules: { guestCommandKeeps: 0x38 },
  },
  {
    name: 'xen-msix-hole-clash',
    describes:
      "turning memory decode on for a device with MSI-X fails silently when a page of its MSI-X table or PBA is RAM in the domain's p2m, or (for a guest) another device's mapping: modify_decoding (xen/drivers/vpci/header.c) marks the BARs enabled, then vpci_make_msix_hole (msix.c) finds the page taken (-EEXIST, 'clobbers MSIX MMIO area') and returns before writing the Command register, so the device never decodes, its BARs take no writes (bar_write: 'while mapped') and bars_mapped stays false (4.17 to 4.22)",
    rules: { msixHoleClash: true },
  },
  {
    name: 'xen-bar-caches-written',
    describes:
      "the hardware domain's bar_write (xen/drivers/vpci/header.c) caches a memory BAR's address as written, with only the type bits cleared, not the address the BAR decodes (bits below its size read 0); modify_bars then maps from PFN_DOWN(addr) to PFN_DOWN(addr + size - 1): the BAR's pages before the written one are not mapped, pages past its end are, and a range that wraps past 2^64 fails ASSERT(s <= e) in rangeset_add_range (4.17 to 4.22)",
    rules: { barCachesWritten: true },
  },
  {
    name: 'xen-guest-reset-first-free-slot',
    describes:
      "resetting a guest's device moves it to the lowest free slot of the guest's virtual bus: PHYSDEVOP_pci_device_reset runs vpci_reset_device (xen/include/xen/vpci.h), which is vpci_deassign_device (it frees the device's virtual slot) then vpci_assign_device, whose add_virtual_device takes the first free slot (xen/drivers/vpci/vpci.c); with a lower slot free (a device unplugged, or none there) the device leaves its bus, device and function number, and its former number answers nothing (4.21, 4.22)",
    rules: { guestFirstFreeSlot: true },
  },
  {
    name: 'xen-guest-keeps-mappings',
    describes:
      "a guest's p2m keeps its BAR mappings after the device leaves it or is reset: XEN_DOMCTL_deassign_device and PHYSDEVOP_pci_device_reset run vpci_deassign_device (xen/drivers/vpci/vpci.c), which frees vPCI's state without unmapping what modify_bars mapped, and libxl's revocation of iomem permissions unmaps nothing; each place the BAR decoded keeps reaching the host device whenever it decodes memory again (4.21, 4.22)",
    rules: { guestKeepsMappings: true },
  },
  {
    name: 'xen-map-failure-drops-decode',
    describes:
      "the hardware domain's decode enable fails as a whole when one memory BAR cannot be mapped (a 64-bit BAR past the 52-bit physical address width: map_mmio_regions refuses it): vpci_process_pending (xen/drivers/vpci/header.c) writes Command with memory decoding off, so the device's other BARs, which PCI has decoding, decode nothing, though the pages mapped before the failure stay in the p2m; a guest is crashed instead (4.17 to 4.22)",
    rules: { mapFailureDropsDecode: true },
  },
  {
    name: 'xen-internal-handlers-before-ioreq',
    describes:
      "an access reaches an ioreq server only when nothing of Xen's own takes it first: x86 consults its internal handlers (vPCI's CF8/CFC and MMCFG traps, its MSI-X handlers) in hvm_io_intercept before ioreq_server_select (xen/arch/x86/hvm/emulate.c hvmemul_do_io), and an access to a page the p2m maps (a BAR vPCI mapped) never exits; so in a domain with vPCI every config access goes to vPCI, and a BDF a device model registered (XEN_DMOP_map_io_range_to_ioreq_server, type PCI) never receives one; a range claimed over a decoding BAR is the BAR's; the hardware domain's own ports (all but CF8..CFF) never exit (4.17 to 4.22)",
    rules: { emulatorsAfterInternal: true },
  },
];
