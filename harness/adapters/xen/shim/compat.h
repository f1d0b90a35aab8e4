/*
 * isoroot's Xen version seams (MIT, no Xen code): everything the shim does
 * differently for the Xen versions it builds, named here and nowhere else.
 * emul.h includes this file after the basic types, locks and PCI register
 * names and before Xen's vpci.h; SHIM_XEN_VERSION comes from the build
 * (major << 8 | minor). Supported: 4.17, 4.21, 4.22.
 *
 * The seams, by name:
 *  SHIM_VPCI_ASSIGN/SHIM_VPCI_DEASSIGN  how a device gets and loses vPCI:
 *      4.17 vpci_add_handlers/vpci_remove_device; from 4.21
 *      vpci_assign_device/vpci_deassign_device, called with the owner's
 *      d->pci_lock write-locked (passthrough/pci.c:1565 and :1533 in 4.21).
 *  SHIM_GUEST_VPCI  domUs get vPCI with a virtual bus (from 4.21): Xen's
 *      CONFIG_HAS_VPCI_GUEST_SUPPORT and has_vpci() true for a domU. No
 *      release ships this: Kconfig selects HAS_VPCI_GUEST_SUPPORT only on
 *      Arm64 with PCI_PASSTHROUGH, where has_vpci() is false (arm
 *      asm/domain.h) and there is no HAS_PCI_MSI; x86 refuses X86_EMU_VPCI
 *      for domUs (x86/domain.c emulation_flags_ok). The shim runs the code
 *      as x86 would with both switched on.
 *  SHIM_PCI_DEV_COMPAT, SHIM_DOMAIN_COMPAT  fields struct pci_dev and struct
 *      domain grew: msi_pos/msix_pos (4.21: msi.c and msix.c no longer look
 *      the capabilities up), ext_cfg (4.22 cap.c), d->pci_lock (4.21), the
 *      virtual slot bitmap and the iomem permissions header.c checks.
 *  pci_find_cap_offset  4.17 takes (seg, bus, dev, fn, cap), later ones
 *      (sbdf, cap); the shim's own code may use either (see below).
 *  pci_find_ext_capability  (sbdf, cap) in 4.21, (pdev, cap) in 4.22.
 *  The vPCI init array: pointers sorted by priority (4.17) or
 *      vpci_capability_t in link order (later): scripts/build-xen-vpci.sh.
 *  vpci.c/header.c/msi.c/msix.c take locks they did not take in 4.17
 *      (d->pci_lock, read_trylock), use read_mmio/write_mmio, %pd, and
 *      domain_crash() a domU whose BARs cannot be mapped (header.c:233-234
 *      in 4.21); the helpers below.
 */
#ifndef ISOROOT_XEN_COMPAT_H
#define ISOROOT_XEN_COMPAT_H

#define SHIM_XEN_421 (SHIM_XEN_VERSION >= SHIM_XEN_VER(4, 21))
#define SHIM_XEN_422 (SHIM_XEN_VERSION >= SHIM_XEN_VER(4, 22))
#define SHIM_GUEST_VPCI SHIM_XEN_421

struct pci_dev;
struct domain;

#if !SHIM_XEN_421 /* ---- 4.17 ------------------------------------------- */

#define SHIM_VPCI_ASSIGN(pdev) vpci_add_handlers(pdev)
#define SHIM_VPCI_DEASSIGN(pdev) vpci_remove_device(pdev)
/* No PHYSDEVOP_pci_device_reset before 4.18: the hypercall fails, and vPCI
 * keeps what it held of the device from before its reset. */
#define SHIM_VPCI_RESET(pdev) ((void)(pdev), -ENOSYS)
#define SHIM_PCI_DEV_COMPAT
#define SHIM_DOMAIN_COMPAT
#define shim_pdev_compat_init(pdev) ((void)(pdev))

#else /* ---- 4.21 and 4.22 ---------------------------------------------- */

#define CONFIG_HAS_VPCI_GUEST_SUPPORT 1
/* IS_ENABLED() of an option the shim has not decided about fails to build. */
#define IS_ENABLED(opt) SHIM_IS_ENABLED_##opt
#define SHIM_IS_ENABLED_CONFIG_X86 1

/* Both take the owner's d->pci_lock for writing (compat.c). */
int shim_vpci_assign(struct pci_dev *pdev);
void shim_vpci_deassign(struct pci_dev *pdev);
#define SHIM_VPCI_ASSIGN(pdev) shim_vpci_assign(pdev)
#define SHIM_VPCI_DEASSIGN(pdev) shim_vpci_deassign(pdev)
/* PHYSDEVOP_pci_device_reset (drivers/pci/physdev.c): vpci_reset_device,
 * the owner's pci_lock write-locked (compat.c). */
int shim_vpci_reset(struct pci_dev *pdev);
#define SHIM_VPCI_RESET(pdev) shim_vpci_reset(pdev)

/* What pci_add_device learns once (passthrough/msi.c pdev_msi_init, and
 * 4.22's ext_cfg: the shim's devices have 4 KiB of config space). */
void shim_pdev_compat_init(struct pci_dev *pdev);
#define SHIM_PCI_DEV_COMPAT                                                 \
    uint8_t msi_pos, msix_pos;          /* 0: no such capability */        \
    bool ext_cfg;                       /* extended config space usable */

/* Xen's DECLARE_BITMAP: longs enough for n bits. */
#define BITS_PER_LONG (8 * sizeof(long))
#define BITS_TO_LONGS(n) (((n) + BITS_PER_LONG - 1) / BITS_PER_LONG)
#define DECLARE_BITMAP(name, n) unsigned long name[BITS_TO_LONGS(n)]
#define SHIM_DOMAIN_COMPAT                                                  \
    rwlock_t pci_lock;                  /* guards pdev_list (4.21) */      \
    DECLARE_BITMAP(vpci_dev_assigned_map, 32); /* virtual slots in use */  \
    struct rangeset *iomem_caps;        /* frames it may map */            \
    bool crashed;                       /* domain_crash() was called */

/* Locks (one thread: a reader count and a writer flag, see emul.h). */
#define rw_is_locked(l) ((l)->readers || (l)->writer)
#define rw_is_write_locked(l) ((l)->writer)
#define read_trylock(l) ((l)->writer ? 0 : ((l)->readers++, 1))
#define pcidevs_locked() false
#define ASSERT_PDEV_LIST_IS_READ_LOCKED(d) \
    ASSERT(pcidevs_locked() || ((d) && rw_is_locked(&(d)->pci_lock)))

/* Capabilities, as xen/drivers/pci/pci.c finds them (compat.c). The
 * shim's own code and 4.17-era callers may still pass (seg, bus, dev, fn,
 * cap): the macro picks by the number of arguments. */
unsigned int shim_cap_offset(pci_sbdf_t sbdf, unsigned int cap);
int shim_cap_offset_bdf(uint16_t seg, uint8_t bus, uint8_t dev, uint8_t func,
                        uint8_t cap);
#define SHIM_SIXTH(a, b, c, d, e, f, ...) f
#define pci_find_cap_offset(...)                                            \
    SHIM_SIXTH(__VA_ARGS__, shim_cap_offset_bdf, -, -, shim_cap_offset, -)  \
        (__VA_ARGS__)
unsigned int pci_find_next_cap_ttl(pci_sbdf_t sbdf, unsigned int pos,
                                   const unsigned int caps[], unsigned int n,
                                   unsigned int *ttl);
#if SHIM_XEN_422
unsigned int pci_find_ext_capability(const struct pci_dev *pdev,
                                     unsigned int cap);
#else
unsigned int pci_find_ext_capability(pci_sbdf_t sbdf, unsigned int cap);
#endif
void pci_intx(const struct pci_dev *pdev, bool enable);
int pci_sanitize_bar_memory(struct rangeset *r);

/* Guests and the toolstack (guest.c). */
extern struct domain *dom_xen;
bool iomem_access_permitted(const struct domain *d, unsigned long s,
                            unsigned long e);
#define XSM_HOOK 0
/* The dummy XSM policy lets the hardware domain's toolstack do this. */
#define xsm_iomem_mapping_vpci(action, d, s, e, map) ((void)(d), 0)
void shim_domain_crash(struct domain *d, const char *file, int line);
/* Where the first domain_crash() of a domain came from, for the agent. */
extern char shim_domain_crash_site[160];
#define domain_crash(d) shim_domain_crash(d, __FILE__, __LINE__)

/* Small helpers 4.21 uses. */
#define PCI_SBDF(s, b, d, f) \
    ((pci_sbdf_t){ .sbdf = (s) << 16 | (b) << 8 | PCI_DEVFN(d, f) })
#define gdprintk(lvl, fmt, ...) gprintk(lvl, fmt, ##__VA_ARGS__)
#define DEV_BUG_PREFIX "PCI device bug: "
#define XFREE(p) do { xfree(p); (p) = NULL; } while ( 0 )
#define ISOLATE_LSB(x) ((x) & -(x))
#define __set_bit(n, p) (((uint8_t *)(p))[(n) / 8] |= 1u << ((n) % 8))
static inline unsigned int find_first_zero_bit(const unsigned long *p,
                                               unsigned int size)
{
    unsigned int n = 0;

    while ( n < size && test_bit(n, p) )
        n++;
    return n;
}

/* MMIO of 1, 2, 4 or 8 bytes (xen/io.h from 4.21). */
static inline unsigned long read_mmio(const volatile void __iomem *mem,
                                      unsigned int size)
{
    switch ( size )
    {
    case 1: return readb(mem);
    case 2: return readw(mem);
    case 4: return readl(mem);
    case 8: return readq(mem);
    }
    ASSERT_UNREACHABLE();
    return ~0UL;
}

static inline void write_mmio(volatile void __iomem *mem, unsigned long data,
                              unsigned int size)
{
    switch ( size )
    {
    case 1: writeb(data, mem); return;
    case 2: writew(data, mem); return;
    case 4: writel(data, mem); return;
    case 8: writeq(data, mem); return;
    }
    ASSERT_UNREACHABLE();
}

/* PCI register fields 4.21 names (PCI Local Bus 3.0 6.2.2-6.2.3, PCIe
 * base spec 7.8.6 Resizable BAR). */
#define  PCI_COMMAND_SPECIAL      0x0008
#define  PCI_COMMAND_INVALIDATE   0x0010
#define  PCI_COMMAND_VGA_PALETTE  0x0020
#define  PCI_COMMAND_PARITY       0x0040
#define  PCI_COMMAND_WAIT         0x0080
#define  PCI_COMMAND_SERR         0x0100
#define  PCI_COMMAND_FAST_BACK    0x0200
#define  PCI_COMMAND_RSVDP_MASK   0xf800    /* bits 15:11 reserved */
/* Status: read-only bits 0 (immediate readiness), 3 (interrupt), 4
 * (capability list), 5 (66 MHz), 7 (fast back-to-back), 10:9 (DEVSEL);
 * write-1-to-clear bits 8 and 15:11; reserved-zero bits 2:1 and 6. */
#define  PCI_STATUS_RO_MASK       0x06b9
#define  PCI_STATUS_RW1C_MASK     0xf900
#define  PCI_STATUS_RSVDZ_MASK    0x0046
#define PCI_EXT_CAP_ID(h)         ((h) & 0xffff)
#define PCI_EXT_CAP_NEXT_MASK     0xfff00000U
#define PCI_EXT_CAP_NEXT(h)       (((h) >> 20) & 0xffc)
#define PCI_EXT_CAP_ID_REBAR      0x15
#define PCI_REBAR_CAP(n)          (4 + 8 * (n))
#define  PCI_REBAR_CAP_SIZES_MASK 0xfffffff0U
#define PCI_REBAR_CTRL(n)         (8 + 8 * (n))
#define  PCI_REBAR_CTRL_BAR_IDX   0x00000007
#define  PCI_REBAR_CTRL_NBAR_MASK 0x000000e0
#define  PCI_REBAR_CTRL_BAR_SIZE  0x00003f00
#define  PCI_REBAR_CTRL_SIZES_MASK 0xffff0000U
#define PCI_REBAR_CTRL_SIZE_BIAS  20        /* size 0 is 1 MiB */
#define PCI_REBAR_CTRL_SIZE(v) \
    (1ULL << (MASK_EXTR(v, PCI_REBAR_CTRL_BAR_SIZE) + PCI_REBAR_CTRL_SIZE_BIAS))
/* MSI pending bits follow the mask bits (64-bit address form +0x14). */
#define msi_pending_bits_reg(cap, is64) ((cap) + ((is64) ? 20 : 16))

#endif /* SHIM_XEN_421 */

#endif /* ISOROOT_XEN_COMPAT_H */
