/*
 * isoroot's surroundings for Xen's own xen/common/ioreq.c (MIT, no Xen
 * code): what its public headers (public/hvm/ioreq.h, public/hvm/dm_op.h)
 * and xen/ioreq.h need from xen.h, event_channel.h and sched.h, and the
 * services ioreq.c calls (ioreq-shim.c). emul.h includes the first part
 * before struct vcpu and struct domain, which embed what it declares, and
 * the second after them.
 *
 * What the shim gives an ioreq server: rangesets (Xen's rangeset.c),
 * event channels as numbers only, ioreq pages as ordinary memory, domain
 * pause as a no-op (one thread). Nothing is ever sent to an emulator:
 * ioreq_server_select() says who would receive an access, and the agent's
 * device model answers for it (agent.c).
 */
#if !defined(SHIM_IOREQ_AFTER_DOMAIN) && !defined(ISOROOT_XEN_IOREQ_TYPES)
#define ISOROOT_XEN_IOREQ_TYPES /* ---- types: before struct vcpu/domain -- */

typedef uint16_t domid_t;
typedef uint32_t evtchn_port_t;
typedef unsigned long xen_ulong_t;
#define __XEN__ 1
/* public/xen.h's guest handles: the shim passes no guest buffers. */
#define XEN_GUEST_HANDLE(t) t *
#define DEFINE_XEN_GUEST_HANDLE(t) struct shim_unused_handle_##t
#include "public/hvm/ioreq.h"
#include "public/hvm/dm_op.h"

/* public/hvm/hvm_op.h */
#define HVM_IOREQSRV_BUFIOREQ_OFF    0
#define HVM_IOREQSRV_BUFIOREQ_LEGACY 1
#define HVM_IOREQSRV_BUFIOREQ_ATOMIC 2
/* public/memory.h */
#define XENMEM_resource_ioreq_server_frame_bufioreq 0
#define XENMEM_resource_ioreq_server_frame_ioreq(n) (1 + (n))
/* public/hvm/hvm_op.h: the one memory type an ioreq server may claim. */
#define HVMMEM_ioreq_server 5

/* xen/sched.h */
#define MAX_NR_IOREQ_SERVERS 8
enum vio_completion {
    VIO_no_completion,
    VIO_mmio_completion,
    VIO_pio_completion,
    VIO_realmode_completion,
};
struct vcpu_io {
    enum vio_completion completion;
    bool suspended;
    ioreq_t req;
};
/* A recursive lock (rspinlock_t from 4.19; before, a spinlock_t taken with
 * spin_lock_recursive): a depth, one thread. */
#if SHIM_XEN_421
typedef struct { unsigned int held; } rspinlock_t;
#else
#define rspinlock_t spinlock_t
#endif
#define SHIM_IOREQ_VCPU                                                     \
    struct vcpu_io io;                                                      \
    bool mapcache_invalidate;
#define SHIM_IOREQ_DOMAIN                                                   \
    struct {                                                                \
        rspinlock_t lock;                                                   \
        struct ioreq_server *server[MAX_NR_IOREQ_SERVERS];                  \
    } ioreq_server;                                                         \
    bool creation_finished;                                                 \
    uint32_t pci_cf8;                   /* d->arch.hvm.pci_cf8 */

#elif defined(SHIM_IOREQ_AFTER_DOMAIN) && !defined(ISOROOT_XEN_IOREQ_SERVICES)
#define ISOROOT_XEN_IOREQ_SERVICES /* ---- services: after struct domain -- */

#define rspin_lock_init(l) ((l)->held = 0)
#define rspin_lock(l) ((void)(l)->held++)
#define rspin_unlock(l) do { ASSERT((l)->held); (l)->held--; } while (0)
#define spin_lock_recursive(l) rspin_lock(l)
#define spin_unlock_recursive(l) rspin_unlock(l)
#define for_each_vcpu(d, v)                                                 \
    for ( unsigned int shim_vi_ = 0;                                        \
          shim_vi_ < (d)->max_vcpus && ((v) = (d)->vcpu[shim_vi_], 1);      \
          shim_vi_++ )

/* Pages: the ioreq pages are plain memory the emulator never maps. */
struct page_info { void *va; };
#define MEMF_no_refcount 0
#define PGT_writable_page 0
#define INVALID_GFN _gfn(~0UL)
#define gfn_eq(a, b) (gfn_x(a) == gfn_x(b))
struct page_info *alloc_domheap_page(struct domain *d, unsigned int flags);
bool get_page_and_type(struct page_info *pg, struct domain *d,
                       unsigned long type);
void put_page_alloc_ref(struct page_info *pg);
void put_page_and_type(struct page_info *pg);
void *__map_domain_page_global(const struct page_info *pg);
void unmap_domain_page_global(const void *va);
#define clear_page(va) memset(va, 0, PAGE_SIZE)
#define page_to_mfn(pg) _mfn((unsigned long)(uintptr_t)(pg)->va >> PAGE_SHIFT)

/* Event channels: numbered, never signalled. */
int alloc_unbound_xen_event_channel(struct domain *ld, unsigned int lvcpu,
                                    domid_t remote_domid, void *notification);
void free_xen_event_channel(struct domain *d, int port);
void notify_via_xen_event_channel(struct domain *ld, int lport);

/* Domains: one thread, nothing runs while the emulator is set up. */
#define domain_pause(d) ((void)(d))
#define domain_unpause(d) ((void)(d))
#define get_knownalive_domain(d) ((void)(d))
#define put_domain(d) ((void)(d))
#define is_hvm_domain(d) ((void)(d), true)
int xasprintf(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#ifndef IS_ENABLED  /* 4.17: compat.h has not named these */
#define IS_ENABLED(opt) SHIM_IS_ENABLED_##opt
#define SHIM_IS_ENABLED_CONFIG_X86 1
#define gdprintk(lvl, fmt, ...) gprintk(lvl, fmt, ##__VA_ARGS__)
#endif
#ifndef domain_crash
/* 4.17's shim has no domain_crash; ioreq.c calls it only where
 * get_page_and_type fails, which it never does here. */
#define domain_crash(d) ((void)(d), ASSERT_UNREACHABLE())
#endif

/* What ioreq.c does with a vCPU waiting for an emulator: the shim never
 * sends, so nothing waits (see the top of this file). */
#define wait_on_xen_event_channel(port, cond) ASSERT_UNREACHABLE()
#ifndef smp_rmb
#define smp_rmb() __sync_synchronize()
#endif
#define BUILD_BUG_ON(c) _Static_assert(!(c), #c)
#define prepare_wait_on_xen_event_channel(port) ASSERT_UNREACHABLE()
#define vcpu_start_shutdown_deferral(v) ((void)(v), true)
#define vcpu_end_shutdown_deferral(v) ((void)(v))
/* x86 asm/ioreq.h */
#define IOREQ_STATUS_HANDLED     X86EMUL_OKAY
#define IOREQ_STATUS_UNHANDLED   X86EMUL_UNHANDLEABLE
#define IOREQ_STATUS_RETRY       X86EMUL_RETRY
/* An emulator's reply completes an access (never here). */
#define msix_write_completion(v) ASSERT_UNREACHABLE()
#define handle_pio(port, size, dir) (ASSERT_UNREACHABLE(), false)
#define vcpu_runnable(v) ((void)(v), false)
#define guest_cmpxchg64(d, p, o, n) __sync_val_compare_and_swap(p, o, n)

#include "xen/ioreq.h"

#endif
