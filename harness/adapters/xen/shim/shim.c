/*
 * isoroot's user-space surroundings for Xen's vPCI code (MIT, no Xen code).
 *
 * Supplies what the Xen objects leave undefined (`nm -u`): host PCI config
 * space backed by emulated devices, a p2m that records instead of mapping,
 * x86 MSI/MSI-X hooks that record, softirq/preemption with knobs, and a small
 * driver API (see the end of emul.h). Single-threaded.
 */
#include <stdarg.h>
#include "emul.h"

struct vcpu *current;
struct domain *hardware_domain;
struct domain *domain_list;
int system_state = SYS_STATE_active;    /* run-time: BAR changes are deferred */
struct shim_knobs shim_knobs;

void shim_assert_failed(const char *what, const char *file, int line)
{
    fprintf(stderr, "(XEN) Assertion '%s' failed at %s:%d\n", what, file, line);
    abort();
}

/* ---- printk: printf plus Xen's %pp (pci_sbdf_t *), %pv (vcpu *) and %pd
 * (domain *) ------------------------------------------------------------- */
void printk(const char *fmt, ...)
{
    char spec[32], out[1024];
    size_t n = 0;
    va_list ap;

    va_start(ap, fmt);
    while ( *fmt && n < sizeof(out) - 1 )
    {
        const char *start = fmt;
        size_t len;

        if ( *fmt != '%' )
        {
            out[n++] = *fmt++;
            continue;
        }
        /* Copy one conversion: flags, width, precision, length, type. */
        fmt++;
        fmt += strspn(fmt, "-+ #0");
        fmt += strspn(fmt, "0123456789");
        if ( *fmt == '.' )
            fmt += 1 + strspn(fmt + 1, "0123456789");
        fmt += strspn(fmt, "hlzjt");
        if ( !*fmt )
            break;
        len = fmt - start + 1;
        if ( len >= sizeof(spec) )
            break;
        memcpy(spec, start, len);
        spec[len] = '\0';

        char *dst = out + n;
        size_t room = sizeof(out) - n;
        int w = 0;
        bool is_long = strchr(spec, 'l') || strchr(spec, 'z') ||
                       strchr(spec, 'j') || strchr(spec, 't');

        switch ( *fmt++ )
        {
        case 'd': case 'i':
            w = is_long ? snprintf(dst, room, spec, va_arg(ap, long))
                        : snprintf(dst, room, spec, va_arg(ap, int));
            break;
        case 'u': case 'x': case 'X': case 'o':
            w = is_long ? snprintf(dst, room, spec, va_arg(ap, unsigned long))
                        : snprintf(dst, room, spec, va_arg(ap, unsigned int));
            break;
        case 'c':
            w = snprintf(dst, room, spec, va_arg(ap, int));
            break;
        case 's':
            w = snprintf(dst, room, spec, va_arg(ap, const char *));
            break;
        case '%':
            w = snprintf(dst, room, "%%");
            break;
        case 'p':
            if ( *fmt == 'p' )          /* %pp: a PCI SBDF */
            {
                const pci_sbdf_t *s = va_arg(ap, const pci_sbdf_t *);

                fmt++;
                w = snprintf(dst, room, "%04x:%02x:%02x.%u",
                             s->seg, s->bus, s->dev, s->fn);
            }
            else if ( *fmt == 'v' )     /* %pv: a vCPU as d<dom>v<vcpu> */
            {
                const struct vcpu *v = va_arg(ap, const struct vcpu *);

                fmt++;
                w = v ? snprintf(dst, room, "d%uv%u", v->domain->domain_id,
                                 v->vcpu_id)
                      : snprintf(dst, room, "d?v?");
            }
            else if ( *fmt == 'd' )     /* %pd: a domain as d<dom> */
            {
                const struct domain *d = va_arg(ap, const struct domain *);

                fmt++;
                w = snprintf(dst, room, "d%u", d ? d->domain_id : ~0u);
            }
            else
                w = snprintf(dst, room, spec, va_arg(ap, void *));
            break;
        default:
            w = snprintf(dst, room, "%s", spec);
            break;
        }
        if ( w > 0 )
            n = (size_t)w < room ? n + w : sizeof(out) - 1;
    }
    va_end(ap);
    out[n] = '\0';
    fputs(out, stderr);
}

/* ---- Emulated host PCI devices ------------------------------------------- */
/* Each function is 4 KiB of config bytes plus a write mask per byte: a write
 * changes only masked bits, so BAR sizing reads back the size mask. */
/* What a BAR decodes: sparse storage, one 4 KiB page allocated on first use. */
struct hostpage {
    uint64_t idx;                       /* page number within the BAR */
    uint8_t *mem;
};
struct hostbar {
    enum shim_bar_kind kind;
    uint64_t size;
    struct hostpage *pages;
    unsigned int nr_pages, cap_pages;
};
struct hostdev {
    pci_sbdf_t sbdf;
    uint8_t cfg[PCI_CFG_SPACE_EXP_SIZE];
    uint8_t wmask[PCI_CFG_SPACE_EXP_SIZE];
    uint8_t w1c[PCI_CFG_SPACE_EXP_SIZE];  /* write 1 to clear */
    uint8_t cfg_reset[PCI_CFG_SPACE_EXP_SIZE]; /* as firmware left it */
    unsigned int cfg_size;              /* 256 (conventional) or 4096 */
    uint32_t tag;
    bool regfile;                       /* see struct shim_endpoint */
    uint64_t rom;                       /* expansion ROM bytes, 0: none */
    /* Per BAR and the ROM (slot 6): decoding, where, and since when. */
    bool placed[PCI_HEADER_NORMAL_NR_BARS + 1];
    uint64_t pbase[PCI_HEADER_NORMAL_NR_BARS + 1];
    uint64_t seq[PCI_HEADER_NORMAL_NR_BARS + 1];                       /* first dword of each page: tag | N */
    struct hostbar bars[PCI_HEADER_NORMAL_NR_BARS];
};
#define MAX_HOSTDEVS 64
static struct hostdev *hostdevs[MAX_HOSTDEVS];
static unsigned int nr_hostdevs;
static LIST_HEAD(alldevs);                   /* every struct pci_dev */
static unsigned long ro_map[65536 / (8 * sizeof(unsigned long))]; /* seg 0 */

static struct hostdev *hostdev_find(pci_sbdf_t sbdf)
{
    for ( unsigned int i = 0; i < nr_hostdevs; i++ )
        if ( hostdevs[i]->sbdf.sbdf == sbdf.sbdf )
            return hostdevs[i];
    return NULL;
}

static struct hostdev *bar_find(bool io, uint64_t addr, unsigned int len,
                                unsigned int *bar, uint64_t *off);
static uint64_t bar_base(const struct hostdev *h, unsigned int n);
static void host_placements(struct hostdev *h);
static uint8_t *bar_page(struct hostdev *h, unsigned int n, uint64_t idx);
static void page_reset(const struct hostdev *h, unsigned int n, uint8_t *mem);

static void host_put(struct hostdev *h, unsigned int reg, unsigned int len,
                     uint32_t val, uint32_t wmask)
{
    for ( unsigned int i = 0; i < len; i++ )
    {
        h->cfg[reg + i] = val >> (8 * i);
        h->wmask[reg + i] = wmask >> (8 * i);
    }
}

/* Absent devices and out-of-range registers read as all ones, as on PCI. */
static uint32_t host_read(pci_sbdf_t sbdf, unsigned int reg, unsigned int len)
{
    struct hostdev *h = hostdev_find(sbdf);
    uint32_t v = 0;

    if ( !h || reg + len > h->cfg_size )
        return ~0u >> (32 - 8 * len);
    for ( unsigned int i = 0; i < len; i++ )
        v |= (uint32_t)h->cfg[reg + i] << (8 * i);
    return v;
}

static void host_write(pci_sbdf_t sbdf, unsigned int reg, unsigned int len,
                       uint32_t val)
{
    struct hostdev *h = hostdev_find(sbdf);

    if ( shim_knobs.trace )
        printk("[host] %pp write %#x/%u = %#x\n", &sbdf, reg, len, val);
    if ( !h || reg + len > h->cfg_size )
        return;
    for ( unsigned int i = 0; i < len; i++, val >>= 8 )
        h->cfg[reg + i] = ((h->cfg[reg + i] & ~h->wmask[reg + i]) |
                           (val & h->wmask[reg + i])) &
                          ~(val & h->w1c[reg + i]);
    host_placements(h);
}

void shim_host_set(pci_sbdf_t sbdf, unsigned int reg, unsigned int len,
                   uint32_t val)
{
    struct hostdev *h = hostdev_find(sbdf);

    if ( h && reg + len <= PCI_CFG_SPACE_EXP_SIZE )
    {
        for ( unsigned int i = 0; i < len; i++ )
            h->cfg[reg + i] = val >> (8 * i);
        host_placements(h);
    }
}

/* A function-level reset as the hardware domain's kernel does it (reset,
 * then its saved config restored): registers back to what firmware left,
 * BAR contents gone. */
void shim_host_reset(pci_sbdf_t sbdf)
{
    struct hostdev *h = hostdev_find(sbdf);

    if ( !h )
        return;
    memcpy(h->cfg, h->cfg_reset, sizeof(h->cfg));
    /* The BARs' contents are lost; their pages stay, as MMIO does: a
     * mapping Xen holds (msix.c's ioremap of a table page) stays valid. */
    for ( unsigned int n = 0; n < PCI_HEADER_NORMAL_NR_BARS; n++ )
        for ( unsigned int i = 0; i < h->bars[n].nr_pages; i++ )
            page_reset(h, n, h->bars[n].pages[i].mem);
    host_placements(h);
}

uint8_t pci_conf_read8(pci_sbdf_t s, unsigned int reg) { return host_read(s, reg, 1); }
uint16_t pci_conf_read16(pci_sbdf_t s, unsigned int reg) { return host_read(s, reg, 2); }
uint32_t pci_conf_read32(pci_sbdf_t s, unsigned int reg) { return host_read(s, reg, 4); }
void pci_conf_write8(pci_sbdf_t s, unsigned int reg, uint8_t v) { host_write(s, reg, 1, v); }
void pci_conf_write16(pci_sbdf_t s, unsigned int reg, uint16_t v) { host_write(s, reg, 2, v); }
void pci_conf_write32(pci_sbdf_t s, unsigned int reg, uint32_t v) { host_write(s, reg, 4, v); }

uint32_t shim_host_read(pci_sbdf_t sbdf, unsigned int reg, unsigned int len)
{
    return host_read(sbdf, reg, len);
}

/* 4.17 semantics: d == NULL searches every device, else only d's. */
struct pci_dev *pci_get_pdev(const struct domain *d, pci_sbdf_t sbdf)
{
    struct pci_dev *pdev;

    list_for_each_entry ( pdev, &alldevs, alldevs_list )
        if ( pdev->sbdf.sbdf == sbdf.sbdf && (!d || pdev->domain == d) )
            return pdev;
    return NULL;
}

const unsigned long *pci_get_ro_map(uint16_t seg)
{
    return seg ? NULL : ro_map;
}

void shim_set_readonly(pci_sbdf_t sbdf, bool ro)
{
    unsigned long bit = 1UL << (sbdf.bdf % (8 * sizeof(long)));

    if ( sbdf.seg )
        return;
    if ( ro )
        ro_map[sbdf.bdf / (8 * sizeof(long))] |= bit;
    else
        ro_map[sbdf.bdf / (8 * sizeof(long))] &= ~bit;
}

/* Size a memory (or ROM) BAR the standard way: write ones, read back which
 * address bits stick, restore. Returns how many BAR registers it spans. */
unsigned int pci_size_mem_bar(pci_sbdf_t sbdf, unsigned int pos,
                              uint64_t *paddr, uint64_t *psize,
                              unsigned int flags)
{
    bool rom = flags & PCI_BAR_ROM;
    uint32_t amask = rom ? (uint32_t)PCI_ROM_ADDRESS_MASK
                         : (uint32_t)PCI_BASE_ADDRESS_MEM_MASK;
    uint32_t lo = pci_conf_read32(sbdf, pos), hi = 0;
    bool wide = !rom && (lo & PCI_BASE_ADDRESS_MEM_TYPE_MASK) ==
                        PCI_BASE_ADDRESS_MEM_TYPE_64;
    uint64_t sticky;

    if ( wide && (flags & PCI_BAR_LAST) )
    {
        /* The upper half would lie outside the header: unusable. */
        printk(XENLOG_WARNING "%pp: 64-bit BAR at %#x in last slot\n",
               &sbdf, pos);
        *psize = 0;
        return 1;
    }
    pci_conf_write32(sbdf, pos, ~0u);
    sticky = pci_conf_read32(sbdf, pos) & amask;
    if ( wide )
    {
        hi = pci_conf_read32(sbdf, pos + 4);
        pci_conf_write32(sbdf, pos + 4, ~0u);
        sticky |= (uint64_t)pci_conf_read32(sbdf, pos + 4) << 32;
        pci_conf_write32(sbdf, pos + 4, hi);
    }
    else if ( sticky )
        sticky |= ~0ULL << 32;          /* 32-bit BAR: upper bits "fixed" */
    pci_conf_write32(sbdf, pos, lo);

    if ( paddr )
        *paddr = (lo & amask) | ((uint64_t)hi << 32);
    *psize = sticky ? ~sticky + 1 : 0;
    return wide ? 2 : 1;
}

/* Walk the capability list from the pointer at `pos`; 48 hops at most, so a
 * looping list ends (64..255 holds at most 48 dword-aligned capabilities). */
int pci_find_next_cap(uint16_t seg, uint8_t bus, unsigned int devfn,
                      uint8_t pos, int cap)
{
    pci_sbdf_t s = shim_sbdf(seg, bus, PCI_SLOT(devfn), PCI_FUNC(devfn));

    for ( unsigned int hop = 0; hop < 48; hop++ )
    {
        uint8_t at = pci_conf_read8(s, pos);
        uint8_t id;

        if ( at < 0x40 )
            return 0;
        at &= ~3;
        id = pci_conf_read8(s, at + PCI_CAP_LIST_ID);
        if ( id == 0xff )
            return 0;
        if ( id == cap )
            return at;
        pos = at + PCI_CAP_LIST_NEXT;
    }
    return 0;
}

int pci_find_cap_offset(uint16_t seg, uint8_t bus, uint8_t dev, uint8_t func,
                        uint8_t cap)
{
    if ( !(pci_conf_read16(shim_sbdf(seg, bus, dev, func), PCI_STATUS) &
           PCI_STATUS_CAP_LIST) )
        return 0;
    return pci_find_next_cap(seg, bus, PCI_DEVFN(dev, func),
                             PCI_CAPABILITY_LIST, cap);
}

/* x86 (4.17 arch/x86/pci.c) asks whether the BAR lies in a memory hole of
 * the e820 map: here, above the RAM pages the agent declared. */
unsigned long shim_e820_ram_pages;

bool pci_check_bar(const struct pci_dev *pdev, mfn_t start, mfn_t end)
{
    return !shim_knobs.bar_outside_hole &&
           mfn_x(start) >= shim_e820_ram_pages;
}

/* x86 lets the MSI code veto/adjust control writes; nothing to add here. */
int pci_msi_conf_write_intercept(struct pci_dev *pdev, unsigned int reg,
                                 unsigned int size, uint32_t *data)
{
    return 0;
}

/* ---- p2m: record every request in d->p2m (the caller inspects it) -------- */
static int p2m_request(struct domain *d, int op, unsigned long gfn,
                       unsigned long nr, unsigned long mfn)
{
    struct shim_p2m_op *o;

    if ( d->p2m.nr == d->p2m.cap )
    {
        d->p2m.cap = d->p2m.cap ? 2 * d->p2m.cap : 16;
        d->p2m.ops = realloc(d->p2m.ops, d->p2m.cap * sizeof(*d->p2m.ops));
        if ( !d->p2m.ops )
            abort();
    }
    o = &d->p2m.ops[d->p2m.nr++];
    *o = (struct shim_p2m_op){ .op = op, .gfn = gfn, .mfn = mfn, .nr = nr,
                               .done = nr, .rc = 0 };
    /* x86 returns 0 when all is done, >0 pages done so far, <0 on error. A
     * frame past the 52 bits of physical address x86 can have is refused
     * (p2m_set_entry: -EINVAL beyond the p2m's maximum gfn). */
    if ( gfn + nr > (1UL << (52 - PAGE_SHIFT)) || gfn + nr < gfn )
    {
        o->done = 0;
        o->rc = -EINVAL;
    }
    else if ( shim_knobs.p2m_error < 0 )
    {
        o->done = 0;
        o->rc = shim_knobs.p2m_error;
    }
    else if ( shim_knobs.p2m_partial && nr > shim_knobs.p2m_partial )
    {
        o->done = shim_knobs.p2m_partial;
        o->rc = o->done;
    }
    return o->rc;
}

int map_mmio_regions(struct domain *d, gfn_t gfn, unsigned long nr, mfn_t mfn)
{
    return p2m_request(d, SHIM_P2M_MAP, gfn_x(gfn), nr, mfn_x(mfn));
}

int unmap_mmio_regions(struct domain *d, gfn_t gfn, unsigned long nr, mfn_t mfn)
{
    return p2m_request(d, SHIM_P2M_UNMAP, gfn_x(gfn), nr, mfn_x(mfn));
}

int p2m_remove_identity_entry(struct domain *d, unsigned long gfn)
{
    int rc = shim_knobs.p2m_error;

    shim_knobs.p2m_error = 0;           /* one page: no partial progress */
    p2m_request(d, SHIM_P2M_REMOVE_IDENTITY, gfn, 1, gfn);
    shim_knobs.p2m_error = rc;
    return 0;
}

/* The current state of a gfn is the last recorded change that covers it. */
mfn_t get_gfn_query(struct domain *d, unsigned long gfn, p2m_type_t *t)
{
    for ( unsigned int i = d->p2m.nr; i--; )
    {
        const struct shim_p2m_op *o = &d->p2m.ops[i];

        if ( gfn < o->gfn || gfn - o->gfn >= o->done )
            continue;
        *t = o->op == SHIM_P2M_MAP ? p2m_mmio_direct : p2m_invalid;
        return _mfn(o->op == SHIM_P2M_MAP ? o->mfn + (gfn - o->gfn)
                                          : INVALID_MFN_RAW);
    }
    if ( gfn < d->ram_pages )
    {
        *t = p2m_ram_rw;
        return _mfn(gfn);
    }
    *t = p2m_invalid;
    return _mfn(INVALID_MFN_RAW);
}

void put_gfn(struct domain *d, unsigned long gfn) { }

void shim_p2m_clear(struct domain *d)
{
    d->p2m.nr = 0;
}

/* ---- softirqs and preemption ---------------------------------------------- */
static unsigned int preempt_calls;

void raise_softirq(unsigned int nr) { }      /* the driver loops instead */
void process_pending_softirqs(void) { }

bool general_preempt_check(void)
{
    return shim_knobs.preempt_every &&
           ++preempt_calls % shim_knobs.preempt_every == 0;
}

/* ---- x86 MSI / MSI-X hooks: record instead of binding pirqs --------------- */
static int next_pirq = 100;

void vpci_msi_arch_init(struct vpci_msi *msi)
{
    msi->arch = (struct vpci_arch_msi){ .pirq = -1 };
}

int vpci_msi_arch_enable(struct vpci_msi *msi, const struct pci_dev *pdev,
                         unsigned int vectors)
{
    msi->arch.pirq = next_pirq;
    next_pirq += vectors;
    msi->arch.enables++;
    return 0;
}

void vpci_msi_arch_disable(struct vpci_msi *msi, const struct pci_dev *pdev)
{
    msi->arch.pirq = -1;
}

void vpci_msi_arch_update(struct vpci_msi *msi, const struct pci_dev *pdev)
{
    msi->arch.updates++;
}

void vpci_msi_arch_mask(struct vpci_msi *msi, const struct pci_dev *pdev,
                        unsigned int entry, bool mask)
{
    msi->arch.masks++;
}

void vpci_msi_arch_print(const struct vpci_msi *msi)
{
    printk("  pirq: %d\n", msi->arch.pirq);
}

void vpci_msix_arch_init_entry(struct vpci_msix_entry *entry)
{
    entry->arch = (struct vpci_arch_msix_entry){ .pirq = -1 };
}

int vpci_msix_arch_enable_entry(struct vpci_msix_entry *entry,
                                const struct pci_dev *pdev, paddr_t table_base)
{
    entry->arch.pirq = next_pirq++;
    entry->arch.enables++;
    return 0;
}

/* -ENOENT for an entry never set up, which msix.c expects and ignores. */
int vpci_msix_arch_disable_entry(struct vpci_msix_entry *entry,
                                 const struct pci_dev *pdev)
{
    if ( entry->arch.pirq < 0 )
        return -ENOENT;
    entry->arch.pirq = -1;
    entry->arch.disables++;
    return 0;
}

void vpci_msix_arch_mask_entry(struct vpci_msix_entry *entry,
                               const struct pci_dev *pdev, bool mask)
{
    entry->arch.masks++;
}

/* Returning 0 means "still holding the vPCI lock", as vpci_dump_msi wants. */
int vpci_msix_arch_print(const struct vpci_msix *msix)
{
    for ( unsigned int i = 0; i < msix->max_entries; i++ )
        printk("  %u: pirq %d%s\n", i, msix->entries[i].arch.pirq,
               msix->entries[i].masked ? " masked" : "");
    return 0;
}

/* ---- MMIO handlers and mappings ------------------------------------------- */
#if SHIM_XEN_421
/* Xen crashes the domain and carries on; so does the shim, and says so. */
char shim_domain_crash_site[160];

void shim_domain_crash(struct domain *d, const char *file, int line)
{
    if ( !d->crashed )
        snprintf(shim_domain_crash_site, sizeof(shim_domain_crash_site),
                 "d%u crashed by domain_crash() at %s:%d", d->domain_id, file,
                 line);
    printk(XENLOG_ERR "domain_crash called from %s:%d\n", file, line);
    printk(XENLOG_ERR "Domain %u reported crashed by domain %u on cpu#0\n",
           d->domain_id, current ? current->domain->domain_id : 0);
    d->crashed = true;
}
#endif

/* As x86's hvm_next_io_handler: the slot after the last, until the table
 * is full; the registration that finds it full crashes the domain (and
 * Xen counts on: a later one would be handed a slot past the table, which
 * the shim reports as the memory corruption it is). */
void register_mmio_handler(struct domain *d, const struct hvm_mmio_ops *ops)
{
    unsigned int i = d->io_handler_count++;

    if ( i == NR_IO_HANDLERS )
    {
#if SHIM_XEN_421
        /* Named after the Xen code the shim stands for (4.22.0's line). */
        shim_domain_crash(d, "xen/arch/x86/hvm/intercept.c", 259);
        return;
#else
        shim_assert_failed("hvm_next_io_handler: NR_IO_HANDLERS full, "
                           "domain_crash()", __FILE__, __LINE__);
#endif
    }
    if ( i > NR_IO_HANDLERS )
        shim_assert_failed("hvm_next_io_handler: a handler slot past "
                           "d->arch.hvm.io_handler[NR_IO_HANDLERS]",
                           __FILE__, __LINE__);
    d->mmio[d->nr_mmio++] = ops;
}

/* A mapping of one page of a host memory BAR (as its register holds it,
 * decoding on or off, as a CPU mapping is) is that page's storage, so what
 * Xen reads or writes through it (msix.c: PBA and the rest of the table's
 * pages) is what the device holds. Anything else gets a zeroed page. */
void __iomem *ioremap(paddr_t pa, size_t len)
{
    unsigned int n;
    uint64_t off;
    struct hostdev *h = NULL;

    for ( unsigned int d = 0; !h && !PAGE_OFFSET(pa) && len == PAGE_SIZE &&
                              d < nr_hostdevs; d++ )
        for ( n = 0; n < PCI_HEADER_NORMAL_NR_BARS; n++ )
        {
            const struct hostbar *b = &hostdevs[d]->bars[n];
            uint64_t base = bar_base(hostdevs[d], n);

            if ( (b->kind == SHIM_BAR_MEM32 || b->kind == SHIM_BAR_MEM64) &&
                 pa >= base && pa - base < b->size )
            {
                h = hostdevs[d];
                off = pa - base;
                break;
            }
        }
    if ( h )
        return bar_page(h, n, PFN_DOWN(off));
    return calloc(1, len);
}

void iounmap(void __iomem *va)
{
    for ( unsigned int d = 0; d < nr_hostdevs; d++ )
        for ( unsigned int n = 0; n < PCI_HEADER_NORMAL_NR_BARS; n++ )
            for ( unsigned int i = 0; i < hostdevs[d]->bars[n].nr_pages; i++ )
                if ( hostdevs[d]->bars[n].pages[i].mem == va )
                    return;             /* device storage stays */
    free(va);
}

/* ---- Driver API ------------------------------------------------------------ */
pci_sbdf_t shim_sbdf(unsigned int seg, unsigned int bus, unsigned int dev,
                     unsigned int fn)
{
    return (pci_sbdf_t){ .sbdf = seg << 16 | bus << 8 | PCI_DEVFN(dev, fn) };
}


static bool pow2(uint64_t v) { return v && !(v & (v - 1)); }

struct pci_dev *shim_add_endpoint_spec(pci_sbdf_t sbdf,
                                       const struct shim_endpoint *e)
{
    struct hostdev *h;
    struct pci_dev *pdev;
    unsigned int next_cap = PCI_CAPABILITY_LIST;

    if ( nr_hostdevs == MAX_HOSTDEVS || hostdev_find(sbdf) ||
         e->msi_vectors > 32 || (e->msi_vectors && !pow2(e->msi_vectors)) ||
         e->msix_vectors > 2048 )
        return NULL;
    for ( unsigned int i = 0; i < PCI_HEADER_NORMAL_NR_BARS; i++ )
    {
        const struct shim_bar_spec *b = &e->bar[i];
        uint64_t max = b->kind == SHIM_BAR_MEM64 ? 1ULL << 38
                     : b->kind == SHIM_BAR_MEM32 ? 1ULL << 31 : 256;

        if ( b->kind == SHIM_BAR_NONE )
            continue;
        if ( b->kind > SHIM_BAR_IO || !pow2(b->size) ||
             b->size < (b->kind == SHIM_BAR_IO ? 4 : 16) || b->size > max ||
             (b->addr & (b->size - 1)) ||
             (b->kind == SHIM_BAR_IO && b->prefetchable) ||
             (b->kind != SHIM_BAR_MEM64 && b->addr + b->size - 1 > UINT32_MAX) )
            return NULL;
        /* A 64-bit BAR takes the next slot too. */
        if ( b->kind == SHIM_BAR_MEM64 &&
             (i + 1 == PCI_HEADER_NORMAL_NR_BARS ||
              e->bar[i + 1].kind != SHIM_BAR_NONE) )
            return NULL;
        if ( b->kind == SHIM_BAR_MEM64 )
            i++;
    }
    if ( e->msix_vectors &&
         (e->msix_bar >= PCI_HEADER_NORMAL_NR_BARS ||
          (e->bar[e->msix_bar].kind != SHIM_BAR_MEM32 &&
           e->bar[e->msix_bar].kind != SHIM_BAR_MEM64) ||
          (e->msix_bar && e->bar[e->msix_bar - 1].kind == SHIM_BAR_MEM64) ||
          e->bar[e->msix_bar].size < SHIM_MSIX_PBA_OFFSET(e->msix_vectors) +
                                     ROUNDUP(DIV_ROUND_UP(e->msix_vectors, 8), 8)) )
        return NULL;

    h = xzalloc(struct hostdev);
    pdev = xzalloc(struct pci_dev);
    h->sbdf = sbdf;
    h->tag = e->tag;

    /* Type 0 header; zero mask = read-only. */
    host_put(h, PCI_VENDOR_ID, 2, e->vendor, 0);
    host_put(h, PCI_DEVICE_ID, 2, e->device, 0);
    host_put(h, PCI_COMMAND, 2, 0,
             PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
             PCI_COMMAND_INTX_DISABLE);
    host_put(h, PCI_CLASS_REVISION, 4, 0xff000001, 0);  /* class ff: other */
    for ( unsigned int i = 0; i < PCI_HEADER_NORMAL_NR_BARS; i++ )
    {
        const struct shim_bar_spec *b = &e->bar[i];
        unsigned int reg = PCI_BASE_ADDRESS_0 + 4 * i;
        uint64_t amask = ~(b->size - 1);
        uint32_t pref = b->prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0;

        h->bars[i].kind = b->kind;
        h->bars[i].size = b->size;
        switch ( b->kind )
        {
        case SHIM_BAR_NONE:
            break;                      /* reads 0, nothing writable */
        case SHIM_BAR_IO:
            host_put(h, reg, 4, (uint32_t)b->addr | PCI_BASE_ADDRESS_SPACE_IO,
                     (uint32_t)amask & ~3u);
            break;
        case SHIM_BAR_MEM32:
            host_put(h, reg, 4,
                     (uint32_t)b->addr | PCI_BASE_ADDRESS_MEM_TYPE_32 | pref,
                     (uint32_t)amask & (uint32_t)PCI_BASE_ADDRESS_MEM_MASK);
            break;
        case SHIM_BAR_MEM64:
            host_put(h, reg, 4,
                     (uint32_t)b->addr | PCI_BASE_ADDRESS_MEM_TYPE_64 | pref,
                     (uint32_t)amask & (uint32_t)PCI_BASE_ADDRESS_MEM_MASK);
            host_put(h, reg + 4, 4, b->addr >> 32, amask >> 32);
            i++;                        /* the upper half: no storage */
            break;
        }
    }
    host_put(h, PCI_SUBSYSTEM_VENDOR_ID, 4,
             (uint32_t)e->device << 16 | e->vendor, 0);
    host_put(h, PCI_INTERRUPT_LINE, 1, 0, 0xff);
    host_put(h, PCI_INTERRUPT_PIN, 1, 1, 0);
    if ( e->other_cap )
    {
        /* One vPCI does not handle, to see what a guest is shown; past
         * MSI (0x40..0x57) and MSI-X (0x60..0x6b). */
        host_put(h, next_cap, 1, 0x70, 0);
        next_cap = 0x70 + PCI_CAP_LIST_NEXT;
        host_put(h, 0x70 + PCI_CAP_LIST_ID, 1, e->other_cap, 0);
    }
    if ( e->msi_vectors )
    {
        /* MSI at 0x40: 64-bit, per-vector masking, log2(vectors) capable. */
        unsigned int cap = 0x40, v = e->msi_vectors;
        uint16_t ctl = PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT |
                       MASK_INSR(fls(v) - 1, PCI_MSI_FLAGS_QMASK);

        host_put(h, next_cap, 1, cap, 0);
        next_cap = cap + PCI_CAP_LIST_NEXT;
        host_put(h, cap + PCI_CAP_LIST_ID, 1, PCI_CAP_ID_MSI, 0);
        host_put(h, msi_control_reg(cap), 2, ctl,
                 PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
        host_put(h, msi_lower_address_reg(cap), 4, 0, 0xfffffffc);
        host_put(h, msi_upper_address_reg(cap), 4, 0, 0xffffffff);
        host_put(h, msi_data_reg(cap, 1), 2, 0, 0xffff);
        host_put(h, msi_mask_bits_reg(cap, 1), 4, 0,
                 (uint32_t)((1ULL << v) - 1));
        /* Xen reads this once when it learns of the device. */
        pdev->msi_maxvec = multi_msi_capable(ctl);
    }
    if ( e->msix_vectors )
    {
        /* MSI-X at 0x60: table size read-only, enable and mask-all
         * writable; table at offset 0 of the BAR, PBA after it. */
        unsigned int cap = 0x60;

        host_put(h, next_cap, 1, cap, 0);
        next_cap = cap + PCI_CAP_LIST_NEXT;
        host_put(h, cap + PCI_CAP_LIST_ID, 1, PCI_CAP_ID_MSIX, 0);
        host_put(h, msix_control_reg(cap), 2, e->msix_vectors - 1,
                 PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
        host_put(h, msix_table_offset_reg(cap), 4, 0 | e->msix_bar, 0);
        host_put(h, msix_pba_offset_reg(cap), 4,
                 SHIM_MSIX_PBA_OFFSET(e->msix_vectors) | e->msix_bar, 0);
    }
    if ( next_cap != PCI_CAPABILITY_LIST )
    {
        host_put(h, PCI_STATUS, 2, PCI_STATUS_CAP_LIST, 0);
        host_put(h, next_cap, 1, 0, 0);         /* end of the list */
    }
    if ( e->image )
    {
        memset(h->cfg, 0, sizeof(h->cfg));
        memset(h->wmask, 0, sizeof(h->wmask));
        memset(h->w1c, 0, sizeof(h->w1c));
        memcpy(h->cfg, e->image, e->image_len);
        memcpy(h->wmask, e->image_wmask, e->image_len);
        memcpy(h->w1c, e->image_w1c, e->image_len);
        /* BARs firmware placed (a nonzero addr) keep the image's type bits. */
        for ( unsigned int i = 0; i < PCI_HEADER_NORMAL_NR_BARS; i++ )
        {
            const struct shim_bar_spec *b = &e->bar[i];
            unsigned int reg = PCI_BASE_ADDRESS_0 + 4 * i;
            uint32_t lo;

            if ( b->kind == SHIM_BAR_NONE || !b->addr )
                continue;
            memcpy(&lo, h->cfg + reg, 4);
            lo = (lo & (b->kind == SHIM_BAR_IO ? 3u : 0xfu)) | (uint32_t)b->addr;
            memcpy(h->cfg + reg, &lo, 4);
            if ( b->kind == SHIM_BAR_MEM64 )
            {
                uint32_t hi = b->addr >> 32;

                memcpy(h->cfg + reg + 4, &hi, 4);
            }
        }
    }
    h->regfile = e->regfile;
    h->rom = e->rom;
    /* A conventional function has 256 bytes; beyond them reads all ones
     * (PCIe Base §7.2.2.2 for ECAM). Without an image: PCIe-sized. */
    h->cfg_size = e->image ? e->image_len : PCI_CFG_SPACE_EXP_SIZE;
    memcpy(h->cfg_reset, h->cfg, sizeof(h->cfg));
    hostdevs[nr_hostdevs++] = h;
    host_placements(h);
    if ( e->image )
    {
        /* What Xen reads once when it learns of the device. */
        int pos = pci_find_cap_offset(sbdf.seg, sbdf.bus, sbdf.dev, sbdf.fn,
                                      PCI_CAP_ID_MSI);

        pdev->msi_maxvec = pos ? multi_msi_capable(
            host_read(sbdf, msi_control_reg(pos), 2)) : 0;
    }

    pdev->sbdf = sbdf;
    INIT_LIST_HEAD(&pdev->domain_list);
    list_add_tail(&pdev->alldevs_list, &alldevs);
    return pdev;
}

struct pci_dev *shim_add_endpoint(pci_sbdf_t sbdf, uint16_t vendor,
                                  uint16_t device, uint32_t bar_size,
                                  uint32_t bar_addr, unsigned int msi_vectors)
{
    struct shim_endpoint e = {
        .vendor = vendor, .device = device, .msi_vectors = msi_vectors,
        .tag = 0x15000000,
        .bar[0] = { .kind = SHIM_BAR_MEM32, .size = bar_size,
                    .addr = bar_addr & ~(bar_size - 1) },
    };

    return shim_add_endpoint_spec(sbdf, &e);
}

/* ---- What the BARs decode ---------------------------------------------- */
/* The storage page `idx` of BAR n, allocated (first dword: the tag) on
 * first use. */
static uint8_t *bar_page(struct hostdev *h, unsigned int n, uint64_t idx)
{
    struct hostbar *b = &h->bars[n];
    uint8_t *mem;

    for ( unsigned int i = 0; i < b->nr_pages; i++ )
        if ( b->pages[i].idx == idx )
            return b->pages[i].mem;
    if ( b->nr_pages == b->cap_pages )
    {
        b->cap_pages = b->cap_pages ? 2 * b->cap_pages : 8;
        b->pages = realloc(b->pages, b->cap_pages * sizeof(*b->pages));
        if ( !b->pages )
            abort();
    }
    mem = malloc(PAGE_SIZE);
    if ( !mem )
        abort();
    page_reset(h, n, mem);
    b->pages[b->nr_pages++] = (struct hostpage){ idx, mem };
    return mem;
}

/* A BAR page as it comes out of reset: zero, but for its identity dword. */
static void page_reset(const struct hostdev *h, unsigned int n, uint8_t *mem)
{
    memset(mem, 0, PAGE_SIZE);
    if ( h->bars[n].size >= 4 )
    {
        uint32_t id = h->tag | n;

        memcpy(mem, &id, 4);
    }
}

/* The address BAR n of h holds now (its register), or ~0 when unused. */
static uint64_t bar_base(const struct hostdev *h, unsigned int n)
{
    uint32_t lo = host_read(h->sbdf, PCI_BASE_ADDRESS_0 + 4 * n, 4);

    switch ( h->bars[n].kind )
    {
    case SHIM_BAR_IO:
        return lo & ~3u;
    case SHIM_BAR_MEM32:
        return lo & (uint32_t)PCI_BASE_ADDRESS_MEM_MASK;
    case SHIM_BAR_MEM64:
        return (lo & (uint32_t)PCI_BASE_ADDRESS_MEM_MASK) |
               (uint64_t)host_read(h->sbdf, PCI_BASE_ADDRESS_0 + 4 * n + 4,
                                   4) << 32;
    default:
        return ~0ULL;
    }
}

/* The BAR of kind io/memory whose register decodes [addr, addr + len);
 * decode: only when Command.IO/MEM is set. */
/* Where BAR n (6: the ROM) of h decodes now, if it does: its register's
 * address while Command enables its space (the ROM: and its enable bit). */
static bool bar_placed(const struct hostdev *h, unsigned int n, uint64_t *base,
                       uint64_t *size)
{
    uint16_t cmd = host_read(h->sbdf, PCI_COMMAND, 2);

    if ( n == PCI_HEADER_NORMAL_NR_BARS )
    {
        uint32_t reg = host_read(h->sbdf, PCI_ROM_ADDRESS, 4);

        *base = reg & PCI_ROM_ADDRESS_MASK;
        *size = h->rom;
        return h->rom && (reg & PCI_ROM_ADDRESS_ENABLE) &&
               (cmd & PCI_COMMAND_MEMORY);
    }
    *base = bar_base(h, n);
    *size = h->bars[n].size;
    return h->bars[n].kind != SHIM_BAR_NONE &&
           (cmd & (h->bars[n].kind == SHIM_BAR_IO ? PCI_COMMAND_IO
                                                  : PCI_COMMAND_MEMORY));
}

/* A BAR that moved or began to decode is the newest decoder of its range:
 * where decoders overlap (the host's hardware leaves that undefined), the
 * newest answers, as in the model (harness/model/function.ts
 * recomputeDecode). */
static uint64_t decode_clock;

static void host_placements(struct hostdev *h)
{
    for ( unsigned int n = 0; n <= PCI_HEADER_NORMAL_NR_BARS; n++ )
    {
        uint64_t base, size;
        bool on = bar_placed(h, n, &base, &size);

        if ( on && (!h->placed[n] || h->pbase[n] != base) )
            h->seq[n] = ++decode_clock;
        h->placed[n] = on;
        h->pbase[n] = base;
    }
}

/* The decoding BAR (6: the ROM) of kind io/memory that takes the whole of
 * [addr, addr + len): the newest where several do. */
bool (*shim_decode_prefer)(pci_sbdf_t sbdf, unsigned int bar, uint64_t base);

static struct hostdev *bar_find(bool io, uint64_t addr, unsigned int len,
                                unsigned int *bar, uint64_t *off)
{
    struct hostdev *best = NULL;
    uint64_t best_seq = 0;

    for ( unsigned int d = 0; d < nr_hostdevs; d++ )
    {
        struct hostdev *h = hostdevs[d];

        for ( unsigned int n = 0; n <= PCI_HEADER_NORMAL_NR_BARS; n++ )
        {
            uint64_t base, size;

            if ( !bar_placed(h, n, &base, &size) ||
                 (n < PCI_HEADER_NORMAL_NR_BARS &&
                  (h->bars[n].kind == SHIM_BAR_IO) != io) ||
                 (n == PCI_HEADER_NORMAL_NR_BARS && io) ||
                 addr < base || addr - base >= size ||
                 len > size - (addr - base) )
                continue;
            /* Preferred decoders rank above all others (top bit). */
            uint64_t rank = h->seq[n] |
                ((shim_decode_prefer && !io &&
                  shim_decode_prefer(h->sbdf, n, base)) ? 1ULL << 63 : 0);

            if ( best && rank < best_seq )
                continue;
            best = h;
            best_seq = rank;
            *bar = n;
            *off = addr - base;
        }
    }
    return best;
}

/* The last write's doorbell and INTx withdrawal (regfile devices). */
static bool rang, acked;
static uint32_t rang_vector;

bool shim_host_doorbell(uint32_t *vector, bool *ack)
{
    *vector = rang_vector;
    *ack = acked;
    return rang;
}

uint8_t *shim_host_bar_byte(pci_sbdf_t sbdf, unsigned int n, uint64_t off)
{
    struct hostdev *h = hostdev_find(sbdf);

    if ( !h || n >= PCI_HEADER_NORMAL_NR_BARS || off >= h->bars[n].size )
        return NULL;
    return bar_page(h, n, PFN_DOWN(off)) + PAGE_OFFSET(off);
}

/* isoroot's endpoint register file (struct shim_endpoint.regfile): whether
 * byte o of the file takes a written value. */
static bool regfile_writable(uint64_t o)
{
    return o >= 4 && !(o >= 8 && o < 0x10);
}

bool shim_host_bar(pci_sbdf_t sbdf, unsigned int n, enum shim_bar_kind *kind,
                  uint64_t *addr, uint64_t *size)
{
    const struct hostdev *h = hostdev_find(sbdf);

    if ( !h || n >= PCI_HEADER_NORMAL_NR_BARS ||
         h->bars[n].kind == SHIM_BAR_NONE )
        return false;
    *kind = h->bars[n].kind;
    *addr = bar_base(h, n);
    *size = h->bars[n].size;
    return true;
}

bool shim_host_access(bool io, uint64_t addr, unsigned int len, bool write,
                      uint64_t *val, pci_sbdf_t *sbdf, unsigned int *bar,
                      uint64_t *off)
{
    struct hostdev *h;
    uint8_t *mem;
    uint64_t v = 0;

    rang = acked = false;
    if ( !write )
        *val = ~0ULL >> (64 - 8 * len);
    if ( !len || len > 8 || PFN_DOWN(addr) != PFN_DOWN(addr + len - 1) )
        return false;
    h = bar_find(io, addr, len, bar, off);
    if ( !h )
        return false;
    *sbdf = h->sbdf;
    if ( *bar == PCI_HEADER_NORMAL_NR_BARS )
    {
        /* isoroot's endpoint ROM: 0x55 0xaa, then (uid * 7 + offset) & 0xff
         * (personalities/endpoint.ts romByte); read-only. */
        unsigned int uid = (h->tag >> 8) & 0xffff;

        for ( unsigned int i = 0; !write && i < len; i++ )
        {
            uint64_t o = *off + i;

            v |= (uint64_t)(o == 0 ? 0x55 : o == 1 ? 0xaa : (uid * 7 + o) & 0xff)
                 << (8 * i);
        }
        if ( !write )
            *val = v;
        return true;
    }
    if ( h->regfile && *off + len > min(h->bars[*bar].size, (uint64_t)PAGE_SIZE) )
    {
        /* Past the register file: reads zero, writes go nowhere. */
        if ( !write )
            *val = 0;
        return true;
    }
    mem = bar_page(h, *bar, PFN_DOWN(*off)) + PAGE_OFFSET(*off);
    for ( unsigned int i = 0; i < len; i++ )
    {
        uint64_t o = PAGE_OFFSET(*off + i);

        if ( !write )
            v |= (uint64_t)mem[i] << (8 * i);
        else if ( h->regfile && o >= 8 && o < 0x0c )
            acked = true;
        else if ( h->regfile ? regfile_writable(o) : o >= 4 )
        {
            mem[i] = *val >> (8 * i);   /* the tag is read-only */
            rang |= h->regfile && o >= 4 && o < 8;
        }
    }
    if ( rang )
        memcpy(&rang_vector, mem - PAGE_OFFSET(*off) + 4, 4);
    if ( !write )
        *val = v;
    return true;
}

bool shim_cfg_read(struct vcpu *v, pci_sbdf_t sbdf, unsigned int reg,
                   unsigned int len, unsigned long *val)
{
    struct vcpu *saved = current;
    bool ok;

    current = v;
    ok = vpci_ecam_read(sbdf, reg, len, val);
    current = saved;
    return ok;
}

/* A vCPU runs vpci_process_pending() before resuming the guest, until it
 * says nothing is left; each round here is one such resume attempt. */
bool shim_cfg_write(struct vcpu *v, pci_sbdf_t sbdf, unsigned int reg,
                    unsigned int len, unsigned long val, unsigned int *rounds)
{
    struct vcpu *saved = current;
    unsigned int n = 1;
    bool ok;

    current = v;
    ok = vpci_ecam_write(sbdf, reg, len, val);
    while ( vpci_process_pending(v) )
        if ( ++n > 1000000 )
            shim_assert_failed("vpci_process_pending makes no progress",
                               __FILE__, __LINE__);
    current = saved;
    if ( rounds )
        *rounds = n;
    return ok;
}

static int mmio_access(struct vcpu *v, unsigned long addr, unsigned int len,
                       unsigned long *rval, unsigned long wval)
{
    struct vcpu *saved = current;
    int rc = X86EMUL_UNHANDLEABLE;

    current = v;
    for ( unsigned int i = 0; i < v->domain->nr_mmio; i++ )
    {
        const struct hvm_mmio_ops *ops = v->domain->mmio[i];

        if ( !ops->check(v, addr) )
            continue;
        rc = rval ? ops->read(v, addr, len, rval)
                  : ops->write(v, addr, len, wval);
        break;
    }
    current = saved;
    return rc;
}

int shim_mmio_read(struct vcpu *v, unsigned long addr, unsigned int len,
                   unsigned long *val)
{
    *val = ~0UL;
    return mmio_access(v, addr, len, val, 0);
}

int shim_mmio_write(struct vcpu *v, unsigned long addr, unsigned int len,
                    unsigned long val)
{
    return mmio_access(v, addr, len, NULL, val);
}
