/*
 * isoroot's version-specific hypervisor services for Xen's vPCI code (MIT,
 * no Xen code): what Xen 4.21 and later call that 4.17 did not, or call in
 * another form. See compat.h for the seams; for 4.17 this file is empty.
 */
#include "emul.h"

#if SHIM_XEN_421

/* passthrough/pci.c takes the owner's pci_lock for writing around
 * vpci_assign_device and vpci_deassign_device (assign_device,
 * deassign_device, pci_add_device in 4.21), drivers/pci/physdev.c around
 * vpci_reset_device (PHYSDEVOP_pci_device_reset). */
static int with_pci_lock(struct pci_dev *pdev, int (*call)(struct pci_dev *))
{
    struct domain *d = pdev->domain;
    int rc;

    write_lock(&d->pci_lock);
    rc = call(pdev);
    write_unlock(&d->pci_lock);
    return rc;
}

int shim_vpci_assign(struct pci_dev *pdev)
{
    return with_pci_lock(pdev, vpci_assign_device);
}

static int deassign(struct pci_dev *pdev)
{
    vpci_deassign_device(pdev);
    return 0;
}

void shim_vpci_deassign(struct pci_dev *pdev)
{
    with_pci_lock(pdev, deassign);
}

int shim_vpci_reset(struct pci_dev *pdev)
{
    return with_pci_lock(pdev, vpci_reset_device);
}

/* Once per device, as pci_add_device does: where MSI and MSI-X are (msi.c
 * and msix.c read these instead of walking the list), and whether the
 * extended config space is reachable (always: 4 KiB per function here). */
void shim_pdev_compat_init(struct pci_dev *pdev)
{
    pdev->msi_pos = shim_cap_offset(pdev->sbdf, PCI_CAP_ID_MSI);
    pdev->msix_pos = shim_cap_offset(pdev->sbdf, PCI_CAP_ID_MSIX);
    pdev->ext_cfg = true;
}

/* ---- Capability lists (PCI Local Bus 3.0 6.7, PCIe base spec 7.6) ------ */
/* The 4.17-form walker lives in shim.c (renamed by compat.h's macro). */
unsigned int shim_cap_offset(pci_sbdf_t sbdf, unsigned int cap)
{
    return shim_cap_offset_bdf(sbdf.seg, sbdf.bus, sbdf.dev, sbdf.fn, cap);
}

static bool cap_wanted(unsigned int id, const unsigned int caps[],
                       unsigned int n)
{
    for ( unsigned int i = 0; i < n; i++ )
        if ( caps[i] == id )
            return true;
    return !n;                          /* no list: any capability */
}

/* From the pointer at `pos`, the next capability whose ID is in caps[]
 * (any when n is 0), spending one of *ttl per hop. Returns the pointer as
 * read (callers mask its low bits), 0 at the end of the list. */
unsigned int pci_find_next_cap_ttl(pci_sbdf_t sbdf, unsigned int pos,
                                   const unsigned int caps[], unsigned int n,
                                   unsigned int *ttl)
{
    for ( ; *ttl; --*ttl )
    {
        unsigned int ptr = pci_conf_read8(sbdf, pos);
        unsigned int id;

        if ( ptr < 0x40 )
            break;
        id = pci_conf_read8(sbdf, (ptr & ~3) + PCI_CAP_LIST_ID);
        if ( id == 0xff )
            break;
        if ( cap_wanted(id, caps, n) )
        {
            --*ttl;
            return ptr;
        }
        pos = (ptr & ~3) + PCI_CAP_LIST_NEXT;
    }
    return 0;
}

/* Extended capabilities: a chain of dword headers from 0x100; an all-zero
 * or all-ones first header means none. 480 hops at most (8 bytes each). */
static unsigned int ext_cap(pci_sbdf_t sbdf, unsigned int cap)
{
    unsigned int pos = PCI_CFG_SPACE_SIZE;

    for ( unsigned int hop = 0; hop < 480; hop++ )
    {
        uint32_t h = pci_conf_read32(sbdf, pos);

        if ( !h || h == ~0u )
            break;
        if ( PCI_EXT_CAP_ID(h) == cap )
            return pos;
        pos = PCI_EXT_CAP_NEXT(h);
        if ( pos < PCI_CFG_SPACE_SIZE )
            break;
    }
    return 0;
}

#if SHIM_XEN_422
/* 4.22 asks the device whether its extended space is reachable first. */
unsigned int pci_find_ext_capability(const struct pci_dev *pdev,
                                     unsigned int cap)
{
    return pdev->ext_cfg ? ext_cap(pdev->sbdf, cap) : 0;
}
#else
unsigned int pci_find_ext_capability(pci_sbdf_t sbdf, unsigned int cap)
{
    return ext_cap(sbdf, cap);
}
#endif

/* Command.INTx Disable, set or cleared (msi.c/msix.c for a domU enabling
 * MSI or MSI-X). */
void pci_intx(const struct pci_dev *pdev, bool enable)
{
    uint16_t cmd = pci_conf_read16(pdev->sbdf, PCI_COMMAND);

    cmd = enable ? cmd & ~PCI_COMMAND_INTX_DISABLE
                 : cmd | PCI_COMMAND_INTX_DISABLE;
    pci_conf_write16(pdev->sbdf, PCI_COMMAND, cmd);
}

/* x86 takes the e820 map's regions out of what a BAR may map (x86/pci.c).
 * The shim's host has no e820 entries: nothing to take out. */
int pci_sanitize_bar_memory(struct rangeset *r)
{
    return 0;
}

#endif /* SHIM_XEN_421 */
