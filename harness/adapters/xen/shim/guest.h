/*
 * isoroot's toolstack API for Xen's vPCI code (MIT, no Xen code): passing
 * devices through to domains as libxl and passthrough/pci.c do, and what a
 * guest sees; guest.c (shim_host_bar: shim.c). emul.h includes it last.
 */
#ifndef ISOROOT_XEN_GUEST_H
#define ISOROOT_XEN_GUEST_H

/* Host BAR n of a device as the shim built it (kind, address its register
 * holds now, size); false for an unused slot or an unknown device. */
bool shim_host_bar(pci_sbdf_t sbdf, unsigned int n, enum shim_bar_kind *kind,
                   uint64_t *addr, uint64_t *size);
/* The hardware domain gets every frame; a guest what the toolstack grants
 * (guest.c; 4.17 never asks). */
void shim_domain_compat_init(struct domain *d);
/* As the toolstack passes a device through: the guest may map the frames
 * of each memory BAR (libxl_pci.c:1342-1368 in 4.21), then
 * XEN_DOMCTL_assign_device (libxl_pci.c:1432, passthrough/pci.c
 * assign_device: vPCI leaves the old owner, the device moves, vPCI is set
 * up for the new one). The hardware domain gets it as pci_add_device gives
 * it (shim_assign_device). Returns Xen's rc. */
int shim_toolstack_assign(struct domain *d, struct pci_dev *pdev);
/* vPCI leaves the device, which then belongs to nobody; a guest loses the
 * iomem permissions the toolstack granted. */
void shim_toolstack_deassign(struct pci_dev *pdev);
/* The hardware domain resets a device (function-level reset), then tells
 * Xen (PHYSDEVOP_pci_device_reset: vpci_reset_device from 4.18; 4.17 has
 * no such hypercall, -ENOSYS). Returns Xen's rc (0 for a device that
 * belongs to nobody). */
int shim_toolstack_reset(struct pci_dev *pdev);
/* The SBDF the device's owner sees it at: its virtual one for a guest
 * (assign_virtual_sbdf), else the host's. False: no vPCI for it. */
bool shim_guest_sbdf(const struct pci_dev *pdev, pci_sbdf_t *sbdf);

#endif /* ISOROOT_XEN_GUEST_H */
