/*
 * isoroot's emulation header for building Xen's vPCI code in user space.
 *
 * Written for isoroot (MIT). It contains no Xen code: it declares, from the
 * outside, the hypervisor surroundings that Xen's vPCI code (the .c files
 * of xen/drivers/vpci) and xen/common/rangeset.c expect.
 * scripts/build-xen-vpci.sh copies those Xen files into a build folder,
 * deletes their #include lines and makes this header their first line.
 * Single-threaded, x86-64 host, x86 hypervisor semantics (PVH hardware
 * domain, identity-mapped BARs; from 4.21 guests with vPCI, compat.h).
 */
#ifndef ISOROOT_XEN_EMUL_H
#define ISOROOT_XEN_EMUL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Version seams ------------------------------------------------------
 * The build passes SHIM_XEN_VERSION = major << 8 | minor (from xen/Makefile).
 * Written for 4.17, 4.21 and 4.22; every difference is named in compat.h
 * (included below, before Xen's vpci.h).
 */
#define SHIM_XEN_VER(maj, min) (((maj) << 8) | (min))
#ifndef SHIM_XEN_VERSION
#define SHIM_XEN_VERSION SHIM_XEN_VER(4, 17)
#endif
#if SHIM_XEN_VERSION != SHIM_XEN_VER(4, 17) && \
    SHIM_XEN_VERSION != SHIM_XEN_VER(4, 21) && \
    SHIM_XEN_VERSION != SHIM_XEN_VER(4, 22)
#error "isoroot's Xen shim is written for Xen 4.17, 4.21 and 4.22 (compat.h)"
#endif

/* The Kconfig options a Xen x86 build with vPCI has; __XEN__ unhides the
 * full struct vpci in vpci.h (it hides it for Xen's own vpci.c-only test). */
#define __XEN__ 1
#define CONFIG_HAS_VPCI 1
#define CONFIG_HAS_PCI_MSI 1
#define CONFIG_64BIT 1

/* ---- Compiler annotations ------------------------------------------------ */
#define cf_check                /* CET-IBT marker: meaningless here */
#define __init
#define __iomem
#define __must_check __attribute__((__warn_unused_result__))
/* vPCI's init array: header entries go to .data.vpci.<priority>; the build's
 * linker script sorts them between __start_vpci_array and __end_vpci_array. */
#define __used_section(s) __attribute__((__used__, __section__(s)))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define fallthrough __attribute__((__fallthrough__))
#define __read_mostly
#define smp_wmb() __asm__ __volatile__("" ::: "memory")
#define rcu_dereference(p) (p)

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define min(a, b) ({ __typeof__(a) a_ = (a); __typeof__(b) b_ = (b); \
                     a_ < b_ ? a_ : b_; })
#define max(a, b) ({ __typeof__(a) a_ = (a); __typeof__(b) b_ = (b); \
                     a_> b_ ? a_ : b_; })
#define min_t(t, a, b) min((t)(a), (t)(b))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ROUNDUP(x, a) (((x) + (a) - 1) & ~((a) - 1))
#define IS_ALIGNED(x, a) (!((x) & ((a) - 1)))
/* Field insert/extract by mask: multiply/divide by the mask's lowest bit. */
#define MASK_EXTR(v, m) (((v) & (m)) / ((m) & -(m)))
#define MASK_INSR(v, m) (((v) * ((m) & -(m))) & (m))

/* Bit helpers on a little-endian host: bit n of any word array is bit n%8
 * of byte n/8, so these work for Xen's uint32_t and unsigned long maps. */
static inline int fls(unsigned int x) { return x ? 32 - __builtin_clz(x) : 0; }
#define ffs(x) __builtin_ffs(x)
#define test_bit(n, p) ((((const uint8_t *)(p))[(n) / 8] >> ((n) % 8)) & 1)
#define __clear_bit(n, p) (((uint8_t *)(p))[(n) / 8] &= ~(1u << ((n) % 8)))

/* ---- Failure: Xen's debug-build checks abort, so a fuzzer sees them ------- */
void shim_assert_failed(const char *what, const char *file, int line)
    __attribute__((__noreturn__));
#define ASSERT(p) \
    do { if ( !(p) ) shim_assert_failed(#p, __FILE__, __LINE__); } while (0)
#define ASSERT_UNREACHABLE() shim_assert_failed("unreachable", __FILE__, __LINE__)
#define BUG_ON(p) \
    do { if ( p ) shim_assert_failed("BUG_ON(" #p ")", __FILE__, __LINE__); } while (0)

/* ---- Logging: printk understands Xen's %pp (SBDF) and %pv (vCPU) --------- */
void printk(const char *fmt, ...);
#define XENLOG_ERR       "(XEN) error: "
#define XENLOG_WARNING   "(XEN) warning: "
#define XENLOG_DEBUG     "(XEN) debug: "
#define XENLOG_G_WARNING "(XEN) guest warning: "
#define gprintk(lvl, fmt, ...) printk(lvl "%pv " fmt, current, ##__VA_ARGS__)

/* ---- Memory ---------------------------------------------------------------- */
#define xmalloc(t) ((t *)malloc(sizeof(t)))
#define xzalloc(t) ((t *)calloc(1, sizeof(t)))
#define xzalloc_flex_struct(t, fld, n) \
    ((t *)calloc(1, sizeof(t) + (n) * sizeof(((t *)0)->fld[0])))
#define xfree(p) free(p)
#define safe_strcpy(d, s) snprintf(d, sizeof(d), "%s", s)

#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PFN_DOWN(a) ((a) >> PAGE_SHIFT)
#define PAGE_OFFSET(a) ((unsigned long)(a) & (PAGE_SIZE - 1))
#define round_pgdown(a) ((a) & ~(PAGE_SIZE - 1))

/* MMIO accessors; ioremap hands out ordinary memory. */
#define readb(p) (*(const volatile uint8_t *)(p))
#define readw(p) (*(const volatile uint16_t *)(p))
#define readl(p) (*(const volatile uint32_t *)(p))
#define readq(p) (*(const volatile uint64_t *)(p))
#define writeb(v, p) (*(volatile uint8_t *)(p) = (v))
#define writew(v, p) (*(volatile uint16_t *)(p) = (v))
#define writel(v, p) (*(volatile uint32_t *)(p) = (v))
#define writeq(v, p) (*(volatile uint64_t *)(p) = (v))

/* ---- Basic types ------------------------------------------------------------ */
typedef bool bool_t;
typedef uint64_t paddr_t;
/* Frame numbers are structs, as in Xen's debug builds, so gfn/mfn mix-ups
 * fail to compile. */
typedef struct { unsigned long m; } mfn_t;
typedef struct { unsigned long g; } gfn_t;
static inline mfn_t _mfn(unsigned long m) { return (mfn_t){ m }; }
static inline gfn_t _gfn(unsigned long g) { return (gfn_t){ g }; }
static inline unsigned long mfn_x(mfn_t m) { return m.m; }
static inline unsigned long gfn_x(gfn_t g) { return g.g; }
#define INVALID_MFN_RAW (~0UL)
#define PRI_mfn "05lx"

/* Segment/bus/device/function as one 32-bit value (x86 bitfields are LSB
 * first): fn 2:0, dev 7:3 (together devfn), bus 15:8, seg 31:16. */
typedef union {
    uint32_t sbdf;
    struct {
        union {
            uint16_t bdf;
            struct {
                union {
                    uint8_t devfn;
                    struct { uint8_t fn : 3, dev : 5; };
                };
                uint8_t bus;
            };
        };
        uint16_t seg;
    };
} pci_sbdf_t;
#define PCI_SLOT(devfn) (((devfn) >> 3) & 0x1f)
#define PCI_FUNC(devfn) ((devfn) & 7)
#define PCI_DEVFN(d, f) ((((d) & 0x1f) << 3) | ((f) & 7))

/* ---- Locks: one thread, so a lock is a counter. Taking a held spinlock is
 * a deadlock in Xen, hence an assertion here. ------------------------------- */
typedef struct { int held; } spinlock_t;
typedef struct { int readers, writer; } rwlock_t;
#define spin_lock_init(l) ((l)->held = 0)
#define spin_lock(l) do { ASSERT(!(l)->held); (l)->held = 1; } while (0)
#define spin_unlock(l) do { ASSERT((l)->held); (l)->held = 0; } while (0)
#define spin_trylock(l) ((l)->held ? 0 : ((l)->held = 1))
#define spin_is_locked(l) ((l)->held != 0)
#define rwlock_init(l) ((l)->readers = (l)->writer = 0)
#define read_lock(l) do { ASSERT(!(l)->writer); (l)->readers++; } while (0)
#define read_unlock(l) do { ASSERT((l)->readers); (l)->readers--; } while (0)
#define write_lock(l) \
    do { ASSERT(!(l)->writer && !(l)->readers); (l)->writer = 1; } while (0)
#define write_unlock(l) do { ASSERT((l)->writer); (l)->writer = 0; } while (0)
#define rcu_read_lock(l) ((void)0)
#define rcu_read_unlock(l) ((void)0)

/* Xen's list and rangeset headers, copied unmodified by the build. */
#include "list.h"
#include "rangeset.h"

/* ---- PCI registers (PCI Local Bus 3.0, PCIe base spec) -------------------- */
#define PCI_VENDOR_ID             0x00
#define PCI_DEVICE_ID             0x02
#define PCI_COMMAND               0x04
#define  PCI_COMMAND_IO           0x0001
#define  PCI_COMMAND_MEMORY       0x0002
#define  PCI_COMMAND_MASTER       0x0004
#define  PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS                0x06
#define  PCI_STATUS_INTERRUPT     0x0008
#define  PCI_STATUS_CAP_LIST      0x0010
#define PCI_CLASS_REVISION        0x08
#define PCI_HEADER_TYPE           0x0e
#define  PCI_HEADER_TYPE_NORMAL   0
#define  PCI_HEADER_TYPE_BRIDGE   1
#define PCI_HEADER_NORMAL_NR_BARS 6
#define PCI_HEADER_BRIDGE_NR_BARS 2
#define PCI_BASE_ADDRESS_0        0x10
#define  PCI_BASE_ADDRESS_SPACE         0x01
#define  PCI_BASE_ADDRESS_SPACE_IO      0x01
#define  PCI_BASE_ADDRESS_SPACE_MEMORY  0x00
#define  PCI_BASE_ADDRESS_MEM_TYPE_MASK 0x06
#define  PCI_BASE_ADDRESS_MEM_TYPE_32   0x00
#define  PCI_BASE_ADDRESS_MEM_TYPE_64   0x04
#define  PCI_BASE_ADDRESS_MEM_PREFETCH  0x08
#define  PCI_BASE_ADDRESS_MEM_MASK      (~0x0fUL)
#define PCI_SUBSYSTEM_VENDOR_ID   0x2c
#define PCI_ROM_ADDRESS           0x30
#define PCI_ROM_ADDRESS1          0x38  /* type 1 (bridge) header */
#define  PCI_ROM_ADDRESS_ENABLE   0x01
#define  PCI_ROM_ADDRESS_MASK     (~0x7ffUL)
#define PCI_CAPABILITY_LIST       0x34
#define PCI_INTERRUPT_LINE        0x3c
#define PCI_INTERRUPT_PIN         0x3d
#define PCI_CAP_LIST_ID           0
#define PCI_CAP_LIST_NEXT         1
#define PCI_CAP_ID_MSI            0x05
#define PCI_CAP_ID_MSIX           0x11
#define PCI_CFG_SPACE_SIZE        256
#define PCI_CFG_SPACE_EXP_SIZE    4096

/* MSI capability: control at +2, address at +4, [upper address at +8],
 * data after the address, mask bits after the data (+4 padding). */
#define PCI_MSI_FLAGS_ENABLE      0x0001
#define PCI_MSI_FLAGS_QMASK       0x000e   /* multiple message capable */
#define PCI_MSI_FLAGS_QSIZE       0x0070   /* multiple message enable */
#define PCI_MSI_FLAGS_64BIT       0x0080
#define PCI_MSI_FLAGS_MASKBIT     0x0100
#define msi_control_reg(cap)          ((cap) + 2)
#define msi_lower_address_reg(cap)    ((cap) + 4)
#define msi_upper_address_reg(cap)    ((cap) + 8)
#define msi_data_reg(cap, is64)       ((cap) + ((is64) ? 12 : 8))
#define msi_mask_bits_reg(cap, is64)  ((cap) + ((is64) ? 16 : 12))
#define msi_pending_bits_reg(cap, is64) ((cap) + ((is64) ? 20 : 16))
#define is_64bit_address(ctl)         (!!((ctl) & PCI_MSI_FLAGS_64BIT))
#define is_mask_bit_support(ctl)      (!!((ctl) & PCI_MSI_FLAGS_MASKBIT))
#define multi_msi_capable(ctl)        (1u << MASK_EXTR(ctl, PCI_MSI_FLAGS_QMASK))

/* MSI-X capability: control at +2, table and PBA offset/BIR at +4 and +8. */
#define PCI_MSIX_FLAGS_QSIZE      0x07ff
#define PCI_MSIX_FLAGS_MASKALL    0x4000
#define PCI_MSIX_FLAGS_ENABLE     0x8000
#define PCI_MSIX_BIRMASK          0x7u
#define PCI_MSIX_ENTRY_SIZE       16
#define PCI_MSIX_ENTRY_LOWER_ADDR_OFFSET  0
#define PCI_MSIX_ENTRY_UPPER_ADDR_OFFSET  4
#define PCI_MSIX_ENTRY_DATA_OFFSET        8
#define PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET 12
#define PCI_MSIX_VECTOR_BITMASK   0x1
#define msix_control_reg(cap)         ((cap) + 2)
#define msix_table_offset_reg(cap)    ((cap) + 4)
#define msix_pba_offset_reg(cap)      ((cap) + 8)
#define msix_table_size(ctl)          (((ctl) & PCI_MSIX_FLAGS_QSIZE) + 1)

/* pci_size_mem_bar() flags. */
#define PCI_BAR_VF   (1u << 0)
#define PCI_BAR_LAST (1u << 1)
#define PCI_BAR_ROM  (1u << 2)

/* ---- x86 arch state vpci.h embeds: what the MSI hooks record -------------- */
struct vpci_arch_msi {
    int pirq;                   /* -1: nothing bound */
    unsigned int enables, updates, masks;   /* hook call counts */
};
struct vpci_arch_msix_entry {
    int pirq;
    unsigned int enables, disables, masks;
};

struct pci_dev;
struct vpci;
struct vcpu;
struct domain;
#include "compat.h"
#include "vpci.h"
#if SHIM_XEN_VERSION >= SHIM_XEN_VER(4, 22)
#include "private.h"                    /* xen/drivers/vpci/private.h */
#endif

/* What ioreq.c's structures need (ioreq-emul.h, first part). */
#include "ioreq-emul.h"

/* ---- Devices, vCPUs, domains ----------------------------------------------- */
struct pci_dev {
    struct list_head alldevs_list;      /* shim's list of every pdev */
    struct list_head domain_list;       /* owner's pdev_list */
    struct domain *domain;              /* NULL until assigned */
    union {
        struct { uint8_t devfn, bus; uint16_t seg; };
        pci_sbdf_t sbdf;
    };
    uint8_t msi_maxvec;                 /* from the MSI capability */
    bool ignore_bars;                   /* e.g. bridges Xen won't size */
    struct vpci *vpci;
    SHIM_PCI_DEV_COMPAT
};

struct vcpu {
    unsigned int vcpu_id;
    struct domain *domain;
    struct vpci_vcpu vpci;              /* pending BAR {un}map work */
    SHIM_IOREQ_VCPU
};

/* One p2m change as the x86 p2m was asked for it. */
struct shim_p2m_op {
    enum { SHIM_P2M_MAP, SHIM_P2M_UNMAP, SHIM_P2M_REMOVE_IDENTITY } op;
    unsigned long gfn, mfn, nr;         /* nr = what was asked */
    unsigned long done;                 /* pages actually (un)mapped */
    int rc;                             /* what the p2m returned */
};

struct hvm_mmio_ops {
    int (*check)(struct vcpu *v, unsigned long addr);
    int (*read)(struct vcpu *v, unsigned long addr, unsigned int len,
                unsigned long *val);
    int (*write)(struct vcpu *v, unsigned long addr, unsigned int len,
                 unsigned long val);
};
#define X86EMUL_OKAY          0
#define X86EMUL_UNHANDLEABLE  1
#define X86EMUL_RETRY         3

#define SHIM_MAX_VCPUS 4
/* x86's per-domain table of port and MMIO handlers (asm/hvm/io.h), shared
 * by what the domain builder registers and what vPCI registers, and never
 * emptied (intercept.c hvm_next_io_handler). */
#define NR_IO_HANDLERS 32
/* What x86's domain builder registers before vPCI does (4.22.0), with no
 * legacy devices: g2m ports (hvm.c:671), vPCI's CF8/CFC ports (672), the
 * ioreq CF8 latch (ioreq.c:325), the debug console port (hvm.c:706), the
 * local APIC (vlapic.c:1713); a PVH hardware domain has an IO-APIC too
 * (vioapic.c:736). The MMCFG handler (io.c:530) is the agent's `mmcfg`. */
#define SHIM_BUILDER_IO_HANDLERS(hardware) ((hardware) ? 6 : 5)
struct domain {
    unsigned int domain_id;
    bool is_hardware;
    bool has_vpci;                      /* 4.17 x86: hardware domain only */
    struct domain *next_in_list;
    struct vcpu *vcpu[SHIM_MAX_VCPUS];
    unsigned int max_vcpus;
    struct list_head pdev_list;
    struct list_head rangesets;         /* used by rangeset.c */
    spinlock_t rangesets_lock;
    struct { struct { struct list_head msix_tables; } hvm; } arch;
    /* The p2m record: every call, in order (grows). */
    struct { struct shim_p2m_op *ops; unsigned int nr, cap; } p2m;
    const struct hvm_mmio_ops *mmio[NR_IO_HANDLERS];   /* the MMIO ones */
    unsigned int nr_mmio;
    unsigned int io_handler_count;      /* slots taken, the builder's too */
    /* RAM pages from gfn 0 (what the domain builder populated): their p2m
     * entries are p2m_ram_rw until something is mapped over them. */
    unsigned long ram_pages;
    SHIM_DOMAIN_COMPAT
    SHIM_IOREQ_DOMAIN
};

extern struct vcpu *current;            /* set around every vPCI entry */
extern struct domain *hardware_domain;
extern struct domain *domain_list;
#define is_hardware_domain(d) ((d)->is_hardware)
#define has_vpci(d) ((d)->has_vpci)
#define for_each_domain(d) for ( (d) = domain_list; (d); (d) = (d)->next_in_list )
#define for_each_pdev(d, p) list_for_each_entry(p, &(d)->pdev_list, domain_list)

/* ---- Hypervisor services the Xen objects call (shim.c) --------------------- */
enum { SYS_STATE_early_boot, SYS_STATE_boot, SYS_STATE_smp_boot,
       SYS_STATE_active, SYS_STATE_suspend, SYS_STATE_resume };
extern int system_state;    /* < active: header.c maps at once (dom0 build) */

#define SCHEDULE_SOFTIRQ 0
void raise_softirq(unsigned int nr);
void process_pending_softirqs(void);
bool general_preempt_check(void);

uint8_t pci_conf_read8(pci_sbdf_t sbdf, unsigned int reg);
uint16_t pci_conf_read16(pci_sbdf_t sbdf, unsigned int reg);
uint32_t pci_conf_read32(pci_sbdf_t sbdf, unsigned int reg);
void pci_conf_write8(pci_sbdf_t sbdf, unsigned int reg, uint8_t val);
void pci_conf_write16(pci_sbdf_t sbdf, unsigned int reg, uint16_t val);
void pci_conf_write32(pci_sbdf_t sbdf, unsigned int reg, uint32_t val);
struct pci_dev *pci_get_pdev(const struct domain *d, pci_sbdf_t sbdf);
const unsigned long *pci_get_ro_map(uint16_t seg);
unsigned int pci_size_mem_bar(pci_sbdf_t sbdf, unsigned int pos,
                              uint64_t *paddr, uint64_t *psize,
                              unsigned int flags);
int pci_find_cap_offset(uint16_t seg, uint8_t bus, uint8_t dev, uint8_t func,
                        uint8_t cap);
int pci_find_next_cap(uint16_t seg, uint8_t bus, unsigned int devfn,
                      uint8_t pos, int cap);
bool pci_check_bar(const struct pci_dev *pdev, mfn_t start, mfn_t end);
int pci_msi_conf_write_intercept(struct pci_dev *pdev, unsigned int reg,
                                 unsigned int size, uint32_t *data);

typedef enum { p2m_ram_rw, p2m_invalid, p2m_mmio_dm, p2m_mmio_direct } p2m_type_t;
int map_mmio_regions(struct domain *d, gfn_t gfn, unsigned long nr, mfn_t mfn);
int unmap_mmio_regions(struct domain *d, gfn_t gfn, unsigned long nr, mfn_t mfn);
mfn_t get_gfn_query(struct domain *d, unsigned long gfn, p2m_type_t *t);
void put_gfn(struct domain *d, unsigned long gfn);
int p2m_remove_identity_entry(struct domain *d, unsigned long gfn);

void register_mmio_handler(struct domain *d, const struct hvm_mmio_ops *ops);
void __iomem *ioremap(paddr_t pa, size_t len);
void iounmap(void __iomem *va);

/* ---- Driver API (shim.c): what a test program or isoroot's adapter uses ---- */
struct shim_knobs {
    unsigned long p2m_partial;  /* >0: a map/unmap of more pages does only
                                   this many and returns it (x86 progress) */
    int p2m_error;              /* <0: map/unmap fail with this errno */
    unsigned int preempt_every; /* >0: general_preempt_check() is true
                                   every Nth call */
    bool bar_outside_hole;      /* pci_check_bar() says no */
    bool trace;                 /* log host config writes to stderr */
};
extern struct shim_knobs shim_knobs;

pci_sbdf_t shim_sbdf(unsigned int seg, unsigned int bus, unsigned int dev,
                     unsigned int fn);
struct domain *shim_domain_create(unsigned int domid, bool hardware,
                                  unsigned int nr_vcpus);
/* Emulated host endpoint (type 0 header, class ff). Each of the 6 BAR
 * slots is unused, a 32-bit or 64-bit memory BAR (the latter also takes the
 * next slot; optionally prefetchable) or an IO BAR. Sizes are powers of two:
 * memory 16 bytes .. 2 GiB (mem32) or 256 GiB (mem64), IO 4..256 bytes;
 * `addr` (where "firmware" placed it) must be naturally aligned. Writable
 * address bits are exactly those above the size, so all ones written reads
 * back the size mask with the type bits; an IO BAR's register has 32
 * writable bits. Behind each BAR is storage (sparse, 4 KiB pages) whose
 * first dword of every page reads tag | <slot>, read-only for accesses
 * through shim_host_access() (not for Xen's own ioremap()ed writes).
 * msi_vectors: 0 = no MSI capability, else 1..32, a power of two (64-bit
 * address, per-vector masking). msix_vectors: 0 = no MSI-X capability, else
 * 1..2048, with the table at offset 0 of memory BAR msix_bar and the PBA
 * right after it (8-byte aligned), both in that BAR, which must hold them. */
enum shim_bar_kind { SHIM_BAR_NONE, SHIM_BAR_MEM32, SHIM_BAR_MEM64,
                     SHIM_BAR_IO };
struct shim_bar_spec {
    enum shim_bar_kind kind;
    bool prefetchable;
    uint64_t size, addr;
};
struct shim_endpoint {
    uint16_t vendor, device;
    struct shim_bar_spec bar[PCI_HEADER_NORMAL_NR_BARS];
    unsigned int msi_vectors;
    unsigned int msix_vectors, msix_bar;
    uint8_t other_cap;  /* 0: none; else a capability with this ID (not MSI
                           or MSI-X) at 0x70, first in the list, with no
                           registers past its header */
    uint32_t tag;
    /* Optional: the whole config space as the model lays it out (its reset
     * image, write mask and write-1-to-clear mask, image_len bytes of each:
     * 256 or 4096). It replaces the header and capabilities built from the
     * fields above (vendor, device, msi_vectors and msix_* are then unused;
     * each BAR's kind and size still say what it decodes, its address is
     * the image's). */
    const uint8_t *image, *image_wmask, *image_w1c;
    unsigned int image_len;
    /* The BARs hold isoroot's endpoint register file (the model's
     * personalities/endpoint.ts) instead of plain storage: 4 KiB of it at
     * most, the rest reads zero and drops writes; dword 0 (the tag) and
     * 0x0c..0x0f read-only; 0x08..0x0b takes no value (a write withdraws
     * the INTx request); shim_host_access() says when 0x04..0x07 (the
     * doorbell) was written. */
    bool regfile;
    /* Expansion ROM size (with an image: its register at 0x30 is the
     * image's), 0: none. It decodes as BAR slot 6 in shim_host_access(). */
    uint64_t rom;
};
/* The PBA's offset in the MSI-X BAR for a table of `vectors` entries. */
#define SHIM_MSIX_PBA_OFFSET(vectors) ROUNDUP((vectors) * PCI_MSIX_ENTRY_SIZE, 8)
struct pci_dev *shim_add_endpoint_spec(pci_sbdf_t sbdf,
                                       const struct shim_endpoint *e);
/* The old form: one 32-bit non-prefetchable memory BAR0, tag 0x15000000. */
struct pci_dev *shim_add_endpoint(pci_sbdf_t sbdf, uint16_t vendor,
                                  uint16_t device, uint32_t bar_size,
                                  uint32_t bar_addr, unsigned int msi_vectors);
/* A host access to memory (io false) or port (io true) space as the device
 * side sees it: the first BAR of the matching kind whose current register
 * value decodes [addr, addr + len), with Command.MEM (or IO) set, takes it.
 * len 1..8, within one 4 KiB page. Returns false when no BAR decodes the
 * whole access (*val is then all ones for a read); else fills in who. */
bool shim_host_access(bool io, uint64_t addr, unsigned int len, bool write,
                      uint64_t *val, pci_sbdf_t *sbdf, unsigned int *bar,
                      uint64_t *off);
/* Where host decoders overlap (two devices claim one address: undefined on
 * PCI), those this predicate prefers answer before the newest; NULL: the
 * newest answers. */
extern bool (*shim_decode_prefer)(pci_sbdf_t sbdf, unsigned int bar,
                                  uint64_t base);
/* The register-file doorbell of the last shim_host_access() write, if it
 * wrote one: the vector asked for (the dword at 0x04 after the write);
 * *ack: the write reached 0x08..0x0b (the INTx request is withdrawn). */
bool shim_host_doorbell(uint32_t *vector, bool *ack);
/* A host device's raw config write (no vPCI): what the device itself sets,
 * such as an MSI pending bit. */
void shim_host_set(pci_sbdf_t sbdf, unsigned int reg, unsigned int len,
                   uint32_t val);
/* A function-level reset of the host device: its config space as firmware
 * left it (BARs placed, Command 0), its BAR storage zero. */
void shim_host_reset(pci_sbdf_t sbdf);
/* The device's BAR storage at byte `off` of BAR n (its MSI-X PBA). */
uint8_t *shim_host_bar_byte(pci_sbdf_t sbdf, unsigned int n, uint64_t off);
/* Give pdev to d and run vPCI's handler setup, as the toolstack would (in
 * the hardware domain's context). Returns Xen's rc. */
int shim_assign_device(struct domain *d, struct pci_dev *pdev);
/* Guest config access through the MMCFG path (vpci_ecam_read/write), as
 * vCPU v; a write then runs vpci_process_pending(v) until done. Return
 * false when Xen rejects the access (size/alignment); a write returns
 * the number of process_pending rounds through *rounds if non-NULL. */
bool shim_cfg_read(struct vcpu *v, pci_sbdf_t sbdf, unsigned int reg,
                   unsigned int len, unsigned long *val);
bool shim_cfg_write(struct vcpu *v, pci_sbdf_t sbdf, unsigned int reg,
                    unsigned int len, unsigned long val, unsigned int *rounds);
/* Guest MMIO through the handlers vPCI registered (MSI-X tables). */
int shim_mmio_read(struct vcpu *v, unsigned long addr, unsigned int len,
                   unsigned long *val);
int shim_mmio_write(struct vcpu *v, unsigned long addr, unsigned int len,
                    unsigned long val);
/* Raw host config space, bypassing vPCI (what the device really holds). */
uint32_t shim_host_read(pci_sbdf_t sbdf, unsigned int reg, unsigned int len);
void shim_set_readonly(pci_sbdf_t sbdf, bool ro);
void shim_p2m_clear(struct domain *d);
/* Host RAM in the e820 map: pages [0, shim_e820_ram_pages). A BAR there is
 * not in a memory hole (pci_check_bar). */
extern unsigned long shim_e820_ram_pages;

#include "guest.h"
/* What ioreq.c calls (ioreq-emul.h, second part; ioreq-shim.c). */
#define SHIM_IOREQ_AFTER_DOMAIN
#include "ioreq-emul.h"

#endif /* ISOROOT_XEN_EMUL_H */
