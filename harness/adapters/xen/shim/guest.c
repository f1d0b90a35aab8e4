/*
 * isoroot's guest domains and toolstack for Xen's vPCI code (MIT, no Xen
 * code): the iomem permissions header.c checks before it maps a BAR, what
 * the toolstack (libxl) and passthrough/pci.c do when a device is passed
 * through or taken back, domain_crash(), dom_xen, and the virtual SBDF a
 * guest sees a device at; and the domain builder and device assignment
 * (shim_domain_create, shim_assign_device) that both domain kinds go
 * through. Guests have vPCI from Xen 4.21 (compat.h:
 * SHIM_GUEST_VPCI); with 4.17 only the hardware domain goes through here.
 */
#include "emul.h"

/* Xen's own domain, owner of hidden devices (none here). vpci_read/write
 * and header.c's modify_bars look at its device list for the hardware
 * domain. */
static struct domain dom_xen_s = {
    .domain_id = 0x7ff2,                /* DOMID_XEN */
    .pdev_list = LIST_HEAD_INIT(dom_xen_s.pdev_list),
};
struct domain *dom_xen = &dom_xen_s;

/* The frames a domain may map (Xen's d->iomem_caps): every frame of a
 * 52-bit physical address space for the hardware domain, as Xen's dom0
 * build grants; nothing for a guest until the toolstack grants it. */
void shim_domain_compat_init(struct domain *d)
{
#if SHIM_XEN_421
    rwlock_init(&d->pci_lock);
    d->iomem_caps = rangeset_new(d, "I/O Memory", RANGESETF_prettyprint_hex);
    if ( !d->iomem_caps )
        abort();
    if ( is_hardware_domain(d) &&
         rangeset_add_range(d->iomem_caps, 0, PFN_DOWN(1UL << 52) - 1) )
        abort();
    d->has_vpci = d->has_vpci || SHIM_GUEST_VPCI;
#endif
}

#if SHIM_XEN_421
bool iomem_access_permitted(const struct domain *d, unsigned long s,
                            unsigned long e)
{
    return rangeset_contains_range(d->iomem_caps, s, e);
}

/* What the toolstack reads from sysfs (the host BARs as dom0's kernel
 * sized them): each memory BAR's frames, rounded up to whole pages from
 * its start as libxl does; permit or revoke them all. */
static int iomem_bars(struct domain *d, const struct pci_dev *pdev,
                      bool permit)
{
    for ( unsigned int n = 0; n < PCI_HEADER_NORMAL_NR_BARS; n++ )
    {
        enum shim_bar_kind kind;
        uint64_t addr, size;
        unsigned long s, e;
        int rc;

        if ( !shim_host_bar(pdev->sbdf, n, &kind, &addr, &size) ||
             (kind != SHIM_BAR_MEM32 && kind != SHIM_BAR_MEM64) || !addr )
            continue;                   /* io BARs: ioport permissions */
        s = PFN_DOWN(addr);
        e = s + DIV_ROUND_UP(size, PAGE_SIZE) - 1;
        rc = permit ? rangeset_add_range(d->iomem_caps, s, e)
                    : rangeset_remove_range(d->iomem_caps, s, e);
        if ( rc )
            return rc;
    }
    return 0;
}
#endif /* SHIM_XEN_421 */

int shim_toolstack_assign(struct domain *d, struct pci_dev *pdev)
{
#if SHIM_XEN_421
    if ( !is_hardware_domain(d) )
    {
        int rc = iomem_bars(d, pdev, true);

        if ( rc )
            return rc;
    }
#endif
    return shim_assign_device(d, pdev);
}

/* libxl revokes the permissions, then XEN_DOMCTL_deassign_device takes vPCI
 * off the device, which goes to dom_io (quarantine, Xen's default): to
 * nobody, here. */
void shim_toolstack_deassign(struct pci_dev *pdev)
{
    struct domain *d = pdev->domain;
    struct vcpu *saved = current;

    if ( !d )
        return;
#if SHIM_XEN_421
    if ( !is_hardware_domain(d) )
        iomem_bars(d, pdev, false);
#endif
    current = hardware_domain ? hardware_domain->vcpu[0] : d->vcpu[0];
    SHIM_VPCI_DEASSIGN(pdev);
    current = saved;
    list_del_init(&pdev->domain_list);
    pdev->domain = NULL;
}

bool shim_guest_sbdf(const struct pci_dev *pdev, pci_sbdf_t *sbdf)
{
    if ( !pdev->vpci )
        return false;
    *sbdf = pdev->sbdf;
#if SHIM_GUEST_VPCI
    if ( !is_hardware_domain(pdev->domain) )
        *sbdf = pdev->vpci->guest_sbdf;
#endif
    return true;
}

/* ---- The domain builder and the assignment of devices (pci_add_device,
 * XEN_DOMCTL_assign_device): what the toolstack drives. ---------------- */
struct domain *shim_domain_create(unsigned int domid, bool hardware,
                                  unsigned int nr_vcpus)
{
    struct domain *d = xzalloc(struct domain), **tail = &domain_list;

    if ( !d || !nr_vcpus || nr_vcpus > SHIM_MAX_VCPUS )
        abort();
    d->domain_id = domid;
    d->is_hardware = hardware;
    d->has_vpci = hardware;     /* 4.17 x86 gives vPCI to PVH dom0 only */
    d->max_vcpus = nr_vcpus;
    d->io_handler_count = SHIM_BUILDER_IO_HANDLERS(hardware);
    INIT_LIST_HEAD(&d->pdev_list);
    INIT_LIST_HEAD(&d->arch.hvm.msix_tables);
    rangeset_domain_initialise(d);
    ioreq_domain_init(d);                 /* its ioreq servers: none yet */
    shim_domain_compat_init(d);
    for ( unsigned int i = 0; i < nr_vcpus; i++ )
    {
        d->vcpu[i] = xzalloc(struct vcpu);
        d->vcpu[i]->vcpu_id = i;
        d->vcpu[i]->domain = d;
    }
    while ( *tail )
        tail = &(*tail)->next_in_list;
    *tail = d;
    if ( hardware )
        hardware_domain = d;
    return d;
}

/* Everything vPCI does on the toolstack's behalf runs as dom0's vCPU 0. */
static struct vcpu *toolstack_vcpu(struct domain *fallback)
{
    return hardware_domain ? hardware_domain->vcpu[0] : fallback->vcpu[0];
}

int shim_assign_device(struct domain *d, struct pci_dev *pdev)
{
    struct vcpu *saved = current;
    int rc;

    current = toolstack_vcpu(d);
    shim_pdev_compat_init(pdev);
    if ( pdev->domain )
    {
        SHIM_VPCI_DEASSIGN(pdev);
        list_del_init(&pdev->domain_list);
    }
    pdev->domain = d;
    list_add_tail(&pdev->domain_list, &d->pdev_list);
    rc = SHIM_VPCI_ASSIGN(pdev);
    if ( rc )
    {
        /* As pci_add_device does: an unusable device belongs to nobody. */
        list_del_init(&pdev->domain_list);
        pdev->domain = NULL;
    }
    current = saved;
    return rc;
}

/* What the hardware domain does to reset a device it lends (Linux's
 * xen-pciback, pcistub_reset_device_state): a function-level reset, then
 * PHYSDEVOP_pci_device_reset, so that vPCI sets the device up again from
 * its registers (vpci_reset_device; -ENOSYS before 4.18: vPCI keeps what
 * it held). A device that belongs to nobody is only reset. */
int shim_toolstack_reset(struct pci_dev *pdev)
{
    struct vcpu *saved = current;
    int rc;

    shim_host_reset(pdev->sbdf);
    if ( !pdev->domain )
        return 0;
    current = toolstack_vcpu(pdev->domain);
    rc = SHIM_VPCI_RESET(pdev);
    current = saved;
    return rc;
}
