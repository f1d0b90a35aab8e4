/*
 * isoroot's services for Xen's own xen/common/ioreq.c (MIT, no Xen code):
 * ioreq pages, event channels, and the x86 arch hooks of
 * arch/x86/hvm/ioreq.c as far as ioreq server creation, ranges and
 * selection need them. See ioreq-emul.h for what is left out.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include "emul.h"

/* ---- Pages and event channels ------------------------------------------- */
struct page_info *alloc_domheap_page(struct domain *d, unsigned int flags)
{
    struct page_info *pg = xzalloc(struct page_info);

    (void)d; (void)flags;
    if ( pg && !(pg->va = aligned_alloc(PAGE_SIZE, PAGE_SIZE)) )
    {
        xfree(pg);
        return NULL;
    }
    return pg;
}

bool get_page_and_type(struct page_info *pg, struct domain *d,
                       unsigned long type)
{
    (void)pg; (void)d; (void)type;
    return true;
}

/* ioreq.c drops the allocation reference, then the type reference: the
 * second frees. */
void put_page_alloc_ref(struct page_info *pg) { (void)pg; }

void put_page_and_type(struct page_info *pg)
{
    free(pg->va);
    xfree(pg);
}

void *__map_domain_page_global(const struct page_info *pg) { return pg->va; }
void unmap_domain_page_global(const void *va) { (void)va; }

static int next_port = 1;

int alloc_unbound_xen_event_channel(struct domain *ld, unsigned int lvcpu,
                                    domid_t remote_domid, void *notification)
{
    (void)ld; (void)lvcpu; (void)remote_domid; (void)notification;
    return next_port++;
}

void free_xen_event_channel(struct domain *d, int port) { (void)d; (void)port; }
void notify_via_xen_event_channel(struct domain *ld, int lport)
{
    (void)ld; (void)lport;
}

int xasprintf(char **out, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(out, fmt, ap);
    va_end(ap);
    return n < 0 ? -ENOMEM : 0;
}

/* ---- x86 arch hooks (arch/x86/hvm/ioreq.c) ------------------------------- */
/* The legacy gfn pages (HVM_PARAM_IOREQ_PFN) are never asked for: the shim's
 * emulators take no pages (XEN_DMOP_get_ioreq_server_info is not issued). */
int arch_ioreq_server_map_pages(struct ioreq_server *s) { (void)s; return 0; }
void arch_ioreq_server_unmap_pages(struct ioreq_server *s) { (void)s; }
void arch_ioreq_server_enable(struct ioreq_server *s) { (void)s; }
void arch_ioreq_server_disable(struct ioreq_server *s) { (void)s; }
void arch_ioreq_server_destroy(struct ioreq_server *s) { (void)s; }
bool arch_ioreq_server_destroy_all(struct domain *d) { (void)d; return true; }
void arch_ioreq_domain_init(struct domain *d) { (void)d; }
bool arch_ioreq_complete_mmio(void) { return false; }

/* Only p2m_ioreq_server pages could be claimed: not offered. */
int arch_ioreq_server_map_mem_type(struct domain *d, struct ioreq_server *s,
                                   uint32_t flags)
{
    (void)d; (void)s; (void)flags;
    return -EOPNOTSUPP;
}

void arch_ioreq_server_map_mem_type_completed(struct domain *d,
                                              struct ioreq_server *s,
                                              uint32_t flags)
{
    (void)d; (void)s; (void)flags;
}

/* As x86 classifies an access for the servers' rangesets
 * (arch_ioreq_server_get_type_addr): a CONFIG_DATA port access while
 * CONFIG_ADDRESS is enabled is a PCI config access of segment 0, keyed by
 * SBDF << 32 | register (the register's low two bits from the port); any
 * other port access is a port, and a memory access an address. The AMD
 * extended CF8 register bits are left out (no such CPU here). */
bool arch_ioreq_server_get_type_addr(const struct domain *d, const ioreq_t *p,
                                     uint8_t *type, uint64_t *addr)
{
    uint32_t cf8 = d->pci_cf8;

    if ( p->type != IOREQ_TYPE_COPY && p->type != IOREQ_TYPE_PIO )
        return false;
    if ( p->type == IOREQ_TYPE_PIO && (p->addr & ~3) == 0xcfc &&
         (cf8 & 0x80000000u) )
    {
        pci_sbdf_t sbdf = { .sbdf = 0 };

        sbdf.bus = (cf8 >> 16) & 0xff;
        sbdf.devfn = (cf8 >> 8) & 0xff;
        *type = XEN_DMOP_IO_RANGE_PCI;
        *addr = (uint64_t)sbdf.sbdf << 32 | (cf8 & 0xfc) | (p->addr & 3);
    }
    else
    {
        *type = p->type == IOREQ_TYPE_PIO ? XEN_DMOP_IO_RANGE_PORT
                                          : XEN_DMOP_IO_RANGE_MEMORY;
        *addr = p->addr;
    }
    return true;
}
