/*
 * xen-vpci-agent: Xen's vPCI code, built by scripts/build-xen-vpci.sh against
 * isoroot's shim, driven over a line protocol on stdin/stdout, the way
 * QEMU's qtest drives QEMU (MIT, no Xen code; harness/adapters/xen/agent.ts
 * is the other end).
 *
 * One command per line; exactly one reply line per command, flushed at once,
 * so that the other end may pipeline commands. Numbers are hex with 0x or
 * decimal; values in replies are hex with 0x. A reply is "OK [fields]" or
 * "ERR <reason>". Commands:
 *
 *   domain new hwdom|guest [ram=<bytes>]
 *                                      OK <domid>
 *       ram: RAM from address 0 (whole pages), populated in the domain's
 *       p2m (p2m_ram_rw until something is mapped over it); the hardware
 *       domain's is the host's e820 RAM, where pci_check_bar refuses BARs.
 *       hwdom: d0, the PVH hardware domain (one at most). guest: d1, d2,
 *       ... with Xen 4.21 and later (4.17 refuses: vPCI is the hardware
 *       domain's only): a domU with vPCI and its own virtual bus, Xen's
 *       CONFIG_HAS_VPCI_GUEST_SUPPORT code run as x86 would run it (no
 *       release enables that for x86 or gives has_vpci to an Arm domU; see
 *       SHIM_GUEST_VPCI in shim/compat.h). Each domain has its own p2m.
 *   domain reset <domid>               OK
 *       a guest's reboot: its devices leave it and are reset, its ioreq
 *       servers, p2m and RAM go; the domain (same id, same MMCFG window)
 *       is then empty, for the toolstack to assign its devices again.
 *   dev add <domid> <sbdf> endpoint [bar<N>=<size>[,mem32|mem64|io][,pref]]...
 *           [msi=<vectors>] [msix=<vectors>[@bar<N>]] [cap=<id>]
 *           [id=<vendor>:<device>] [rom=<size>] [uid=<n>] [regs=endpoint]
 *           [cfg=<hex> wmask=<hex> w1c=<hex> [place]]
 *                                      OK uid=<n> [bar<N>=<host address>]...
 *                                         [msix=bar<N>+0x0,pba+0x<offset>]
 *       a host endpoint emulated by the shim, with up to 6 BARs (N 0..5):
 *       mem32 (the default; 16 bytes to 2 GiB), mem64 (16 bytes to 256 GiB;
 *       it takes slot N+1 too), optionally prefetchable (pref), or io (4 to
 *       256 bytes). "Firmware" places each at a free, naturally aligned host
 *       address: mem32 in [0xe0000000, 0xfec00000), mem64 in [0x4000000000,
 *       0x10000000000) (above 4 GiB), io ports in [0xc000, 0x10000). The
 *       reply lists the BARs in slot order. msi: 1..32 vectors (a power of
 *       two). msix: 1..2048 vectors; the table at offset 0 of memory BAR N
 *       (default bar0), the PBA right after it (8-byte aligned); the BAR must
 *       hold both. cap: a capability vPCI does not handle (its ID, 0x1 to
 *       0xfe but not MSI 0x5 or MSI-X 0x11; e.g. 0x1, power management) at
 *       0x70, first in the list, with nothing past its header. It belongs
 *       to nobody until `dev assign`.
 *       cfg, wmask, w1c: the whole configuration space (256 or 4096 bytes
 *       as hex), its writable and write-1-to-clear bits, as isoroot's model
 *       lays the function out; they replace the header and capabilities
 *       built from msi/msix/id (the BAR options still give each BAR's kind
 *       and size; its address is the image's, 0 at reset, unless `place`
 *       has firmware place it). rom: an expansion ROM of that size (with an
 *       image), reading 0x55 0xaa then (uid * 7 + offset) & 0xff. uid: the
 *       number in the BARs' identity dword. regs=endpoint: the BARs hold
 *       isoroot's endpoint register file (personalities/endpoint.ts):
 *       identity at 0x0, doorbell at 0x4 (a write asks for that vector:
 *       MSI-X, MSI or INTx as the function has them enabled; the message
 *       is the one vPCI holds, see irq= below), INTx request at 0x8 (a
 *       write withdraws it), scratch to 4 KiB; beyond, zero.
 *   dev assign <domid> <sbdf>          OK <rc> [vsbdf=<sbdf>]
 *       <rc>: Xen's. The hardware domain gets the device as pci_add_device
 *       gives it (4.17 vpci_add_handlers, later vpci_assign_device). A
 *       guest gets it as the toolstack passes a device through: iomem
 *       permission for each memory BAR's host frames (libxl), then
 *       XEN_DOMCTL_assign_device (vPCI leaves the old owner, then
 *       vpci_assign_device for the guest). vsbdf (guests, rc 0): where the
 *       guest sees the device, the virtual SBDF assign_virtual_sbdf gave it:
 *       segment 0, bus 0, the first free of 32 slots, function 0
 *       (0000:00:00.0 first). Xen refuses a function other than 0 (-95)
 *       and a 33rd device (-28).
 *   dev deassign <domid> <sbdf>        OK
 *       vPCI leaves the device (4.17 vpci_remove_device, later
 *       vpci_deassign_device) and it belongs to nobody (for a guest: Xen's
 *       quarantine); a guest loses the iomem permissions first. Nothing is
 *       unmapped: what vPCI mapped stays in the domain's p2m.
 *   dev reset <domid> <sbdf>           OK <rc> [vsbdf=<sbdf>]
 *       the hardware domain resets a device of <domid> (or, <domid> 0, one
 *       that belongs to nobody) as Linux's xen-pciback does: a
 *       function-level reset, after which the device's config space is as
 *       firmware left it (BARs placed, Command 0) and its BARs' storage
 *       zero; then PHYSDEVOP_pci_device_reset, whose rc is <rc>:
 *       vpci_reset_device (vPCI leaves the device and sets it up again from
 *       its registers) from 4.21, -38 (ENOSYS) on 4.17, which has no such
 *       hypercall (vPCI keeps what it held). vsbdf: where a guest sees the
 *       device now.
 *   cfg read <domid> <sbdf> <reg> <size>
 *                                      OK <value> [rejected]
 *   cfg write <domid> <sbdf> <reg> <size> <value>
 *                                      OK <rounds> [rejected]
 *       through vpci_ecam_read/write as the domain's vCPU 0; a write then
 *       runs vpci_process_pending until it is done (<rounds> calls).
 *       "rejected": Xen refused the access (size, alignment, range); a
 *       rejected read returns all ones. For a guest <sbdf> is the virtual
 *       SBDF (dev assign's vsbdf): Xen translates it to the host device
 *       (translate_virtual_device); any other SBDF reaches nothing. A
 *       guest's accesses to registers vPCI does not emulate read all ones
 *       and are dropped (vpci_read_hw/vpci_write_hw); it is shown MSI and
 *       MSI-X only in the capability list, and its BAR registers hold its
 *       own (guest) addresses, which decoding maps onto the host BARs.
 *   mem read <domid> <gpa> <size>      OK <value> <where>
 *   mem write <domid> <gpa> <size> <value>
 *                                      OK <where> [irq=...]
 *       The domain's RAM first (the shim keeps RAM above what is mapped
 *       over it), then vPCI's MMIO handlers (MMCFG, msix.c's, over the pages of every
 *       MSI-X table and PBA whose BAR is enabled: the table entries are
 *       vPCI's, the rest of those pages the device's through ioremap), then
 *       the domain's own p2m (gpa to host frame), then the host device
 *       whose memory BAR decodes the host address (Command.MEM set), so two
 *       guests may use the same gpa for different devices. <where>:
 *         <sbdf> bar<N> +0x<offset>    a host BAR (N: the lower slot of a
 *                                      mem64); its first dword of each
 *                                      4 KiB page reads
 *                                      0x15000000 | uid << 8 | N, read-only;
 *                                      the rest is read/write storage
 *         ram                          the domain's RAM
 *         mmcfg                        its MMCFG (ECAM) window
 *         vpci-mmio                    a handler vPCI registered
 *         mfn:0x<mfn> no-decode        mapped, but no host BAR decodes it
 *         unmapped                     nothing in the p2m
 *       Reads that reach nothing return all ones; writes are dropped.
 *       A write that rang a device's doorbell, or unmasked a pending vector,
 *       lists the messages sent: irq=msi|msix:<host sbdf>:<vector>:<addr>:
 *       <data> (the address and data vPCI holds for the vector; Bus Master
 *       set on the device). cfg write and io write replies carry them too.
 *   mmcfg <domid> <seg> <base> <start bus> <end bus>
 *                                      OK
 *       an MCFG entry: accesses in [base + start << 20, base + (end + 1)
 *       << 20) are config accesses of segment <seg>, as
 *       register_vpci_mmcfg_handler sets up for the hardware domain (for a
 *       guest: its virtual ECAM window, as Arm's domain_vpci_init).
 *   io read <domid> <port> <size>      OK <value> <where>
 *   io write <domid> <port> <size> <value>
 *                                      OK <where>
 *       size 1, 2 or 4. Xen 4.17's vPCI does nothing with IO BARs: header.c
 *       types them VPCI_BAR_IO and registers no handler for their register
 *       (init_bars, header.c:543-546, so the hardware domain's config
 *       accesses to it reach the device), and MAPPABLE_BAR (header.c:27-29)
 *       leaves them out of modify_decoding and modify_bars (header.c:108,
 *       header.c:243), so nothing is mapped
 *       or trapped. A PVH hardware domain reaches ports directly (its I/O
 *       port permissions, not vPCI), so an access goes straight to the host
 *       device whose IO BAR decodes the port (Command.IO set). <where>:
 *       CF8 (a dword) and CFC..CFF go to vPCI's port handlers first
 *       (io.c vpci_portio_*: CONFIG_ADDRESS latched, CONFIG_DATA decoded to
 *       a segment 0 SBDF; <where> cf8) unless CONFIG_ADDRESS is not enabled.
 *       <sbdf> bar<N> +0x<offset> as above, or no-decode (reads all ones).
 *       The shim models no guest I/O port permissions or mappings: a
 *       guest's port access is answered the same way. (From 4.21 on x86 a
 *       guest's IO BAR register has no handler either, header.c:968-980 in
 *       4.21, so it reads all ones.)
 *   ioreq create <domid>               OK <rc> [id=<ioservid>]
 *   ioreq state <domid> <id> 0|1       OK <rc>
 *   ioreq map|unmap <domid> <id> port|mem|pci <start> <end>
 *                                      OK <rc>
 *   ioreq destroy <domid> <id>         OK <rc>
 *       an emulator's dm_ops on <domid> (XEN_DMOP_create_ioreq_server,
 *       _set_ioreq_server_state, _map_io_range_to_ioreq_server,
 *       _unmap_io_range_from_ioreq_server, _destroy_ioreq_server), run by
 *       Xen's own xen/common/ioreq.c as a device-model domain (d256). <rc>
 *       is Xen's. pci ranges are SBDFs (segment << 16 | bus << 8 | devfn).
 *       An access that exits and that no internal handler takes goes to
 *       the server ioreq_server_select() gives (the newest enabled one
 *       whose range holds the whole access): <where> ioreq:<id>. Its
 *       device model hosts no device: a read is all ones, a write
 *       dropped. With no server: <where> unclaimed (ports) or unmapped
 *       (memory), all ones. In the hardware domain only CF8..CFF trap
 *       (its other ports are its own); a CONFIG_DATA access vPCI takes
 *       names a server that registered the latched SBDF: cf8 over
 *       ioreq:<id>.
 *   p2m <domid>                        OK [gfn:mfn:nr,...]  current mappings,
 *                                      all hex
 *   p2m log <domid>                    OK [op:gfn:mfn:nr:done:rc,...]  every
 *                                      p2m request in order (op map, unmap
 *                                      or remove-identity)
 *   knob <name> <value>                OK  (p2m_partial, p2m_error,
 *                                      preempt_every, bar_outside_hole, trace)
 *   debug crash                        a deliberate failed assertion
 *   quit                               OK, then exit 0 (so does EOF)
 *
 * A failed Xen ASSERT/BUG_ON (the shim calls abort()) or a fatal signal
 * replaces the command's reply with "CRASH <message>" and the agent exits
 * with status 3; so does a domain_crash() of a guest (from 4.21: "CRASH d<N>
 * crashed by domain_crash() at <file>:<line>"). Xen's own messages (printk)
 * go to stderr.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <unistd.h>
#include "emul.h"

#define MAX_DOMAINS 16
#define MAX_DEVS 64
#define MAX_TOKENS 16

/* Firmware's windows: 32-bit memory below the IO-APIC, 64-bit memory above
 * 4 GiB, IO ports where PCI firmware puts them. */
static struct window {
    const char *name;
    uint64_t next, end;
} win_mem32 = { "mem32", 0xe0000000ULL, 0xfec00000ULL },
  win_mem64 = { "mem64", 0x4000000000ULL, 0x10000000000ULL },
  win_io = { "io", 0xc000, 0x10000 };

struct agent_dev {
    struct pci_dev *pdev;
    unsigned int uid;
};

static struct domain *domains[MAX_DOMAINS];
static struct agent_dev devs[MAX_DEVS];
static unsigned int nr_devs;

/* What the domain's builder gives it besides vPCI: RAM at address 0 and
 * the MMCFG regions of its MCFG table (arch/x86/hvm/io.c keeps these in
 * d->arch.hvm; isoroot's own code here, no Xen code). The CF8 latch is
 * d->pci_cf8, which the ioreq servers' selection reads too. */
#define MAX_MMCFG 8
struct ram_page {
    uint64_t idx;
    uint8_t *mem;
};
struct agent_domain {
    uint64_t ram;                       /* bytes of RAM from address 0 */
    struct ram_page *pages;             /* sparse, zero until written */
    unsigned int nr_pages, cap_pages;
    struct mmcfg {
        uint64_t addr, size;
        uint16_t seg;
        uint8_t start_bus;
    } mmcfg[MAX_MMCFG];
    unsigned int nr_mmcfg;
};
static struct agent_domain adoms[MAX_DOMAINS];

/* Interrupts a command made the devices send, for its reply. */
#define MAX_IRQS 64
static struct irq_event {
    pci_sbdf_t sbdf;
    bool msix;
    unsigned int vector;
    uint64_t addr;
    uint32_t data;
} irqs[MAX_IRQS];
static unsigned int nr_irqs;

/* ---- Replies ---------------------------------------------------------------- */
static char reply[1 << 16];
static size_t reply_len;

static void __attribute__((format(printf, 1, 2))) put(const char *fmt, ...)
{
    va_list ap;
    int n;

    if ( reply_len >= sizeof(reply) )
        return;
    va_start(ap, fmt);
    n = vsnprintf(reply + reply_len, sizeof(reply) - reply_len, fmt, ap);
    va_end(ap);
    if ( n > 0 )
        reply_len = min(reply_len + n, sizeof(reply) - 1);
}

/* Sets the reply to "ERR <reason>"; returns 0 so handlers can `return err()`. */
static int __attribute__((format(printf, 1, 2))) err(const char *fmt, ...)
{
    va_list ap;
    int n;

    reply_len = 0;
    put("ERR ");
    va_start(ap, fmt);
    n = vsnprintf(reply + reply_len, sizeof(reply) - reply_len, fmt, ap);
    va_end(ap);
    if ( n > 0 )
        reply_len = min(reply_len + n, sizeof(reply) - 1);
    return 0;
}

/* ---- Crashes: the shim's failed assertions abort(); say so on stdout ------ */
/* stderr goes through a cookie stream that copies to fd 2 and keeps the last
 * line that looks like Xen's assertion/BUG message. */
static char last_err[512], cur_err[512];
static size_t cur_err_len;
static volatile sig_atomic_t crashing;

static ssize_t err_write(void *cookie, const char *buf, size_t len)
{
    (void)cookie;
    for ( size_t i = 0; i < len; i++ )
    {
        if ( buf[i] == '\n' )
        {
            cur_err[cur_err_len] = '\0';
            if ( strstr(cur_err, "Assertion") || strstr(cur_err, "BUG") ||
                 strstr(cur_err, "(XEN)") )
                memcpy(last_err, cur_err, cur_err_len + 1);
            cur_err_len = 0;
        }
        else if ( cur_err_len < sizeof(cur_err) - 1 )
            cur_err[cur_err_len++] = buf[i];
    }
    for ( size_t done = 0; done < len; )
    {
        ssize_t w = write(2, buf + done, len - done);

        if ( w <= 0 )
            break;
        done += w;
    }
    return len;
}

static void write_all(int fd, const char *s, size_t n)
{
    while ( n )
    {
        ssize_t w = write(fd, s, n);

        if ( w <= 0 )
            return;
        s += w;
        n -= w;
    }
}

static void on_fatal(int sig)
{
    char line[700];
    const char *what = sig == SIGABRT ? "SIGABRT" : sig == SIGSEGV ? "SIGSEGV"
                     : sig == SIGBUS ? "SIGBUS" : sig == SIGFPE ? "SIGFPE"
                     : sig == SIGILL ? "SIGILL" : "signal";
    size_t n = 0;

    if ( crashing )
        _exit(3);
    crashing = 1;
    /* "CRASH <Xen's message>" for an assertion, else "CRASH <signal> ...". */
    if ( sig == SIGABRT && strstr(last_err, "Assertion") )
    {
        const char *m = last_err;

        if ( !strncmp(m, "(XEN) ", 6) )
            m += 6;
        n = strlen(m);
        n = n > sizeof(line) - 8 ? sizeof(line) - 8 : n;
        memcpy(line, "CRASH ", 6);
        memcpy(line + 6, m, n);
        n += 6;
    }
    else
    {
        const char *parts[] = { "CRASH ", what,
                                last_err[0] ? " (last Xen message: " : "",
                                last_err, last_err[0] ? ")" : "" };

        for ( unsigned int i = 0; i < ARRAY_SIZE(parts); i++ )
        {
            size_t l = strlen(parts[i]);

            l = l > sizeof(line) - 2 - n ? sizeof(line) - 2 - n : l;
            memcpy(line + n, parts[i], l);
            n += l;
        }
    }
    line[n++] = '\n';
    write_all(1, line, n);
    _exit(3);
}

static void crash_setup(void)
{
    static const cookie_io_functions_t io = { .write = err_write };
    static const int sigs[] = { SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL };
    FILE *f = fopencookie(NULL, "w", io);
    struct sigaction sa = { .sa_handler = on_fatal };

    if ( f )
    {
        setvbuf(f, NULL, _IONBF, 0);
        stderr = f;
    }
    sigemptyset(&sa.sa_mask);
    for ( unsigned int i = 0; i < ARRAY_SIZE(sigs); i++ )
        sigaction(sigs[i], &sa, NULL);
}

/* ---- Parsing ------------------------------------------------------------------ */
/* 0x<hex> or decimal, optionally negative; the whole token. */
static bool num(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    uint64_t v = 0;
    int base = 10;

    if ( neg )
        s++;
    if ( s[0] == '0' && (s[1] == 'x' || s[1] == 'X') )
    {
        base = 16;
        s += 2;
    }
    if ( !*s )
        return false;
    for ( ; *s; s++ )
    {
        unsigned int d;

        if ( *s >= '0' && *s <= '9' )
            d = *s - '0';
        else if ( base == 16 && *s >= 'a' && *s <= 'f' )
            d = *s - 'a' + 10;
        else if ( base == 16 && *s >= 'A' && *s <= 'F' )
            d = *s - 'A' + 10;
        else
            return false;
        if ( v > (UINT64_MAX - d) / base )
            return false;
        v = v * base + d;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

static bool unum(const char *s, uint64_t max, uint64_t *out)
{
    int64_t v;

    if ( *s == '-' || !num(s, &v) || (uint64_t)v > max )
        return false;
    *out = v;
    return true;
}

/* <seg>:<bus>:<dev>.<fn> or <bus>:<dev>.<fn>, hex fields. */
static bool parse_sbdf(const char *s, pci_sbdf_t *out)
{
    unsigned long f[4];
    unsigned int n = 0;
    const char *p = s;

    while ( n < 4 )
    {
        char *end;

        if ( !isxdigit((unsigned char)*p) )
            return false;
        f[n++] = strtoul(p, &end, 16);
        p = end;
        if ( *p == ':' && n < 3 )
            p++;
        else if ( *p == '.' )
        {
            p++;
            if ( !isxdigit((unsigned char)*p) )
                return false;
            f[n++] = strtoul(p, &end, 16);
            p = end;
            break;
        }
        else
            return false;
    }
    if ( *p || n < 3 )
        return false;
    if ( n == 3 )
    {
        memmove(f + 1, f, 3 * sizeof(*f));
        f[0] = 0;
    }
    if ( f[0] > 0xffff || f[1] > 0xff || f[2] > 0x1f || f[3] > 7 )
        return false;
    *out = shim_sbdf(f[0], f[1], f[2], f[3]);
    return true;
}

static const char *sbdf_str(pci_sbdf_t s)
{
    static char buf[4][16];
    static unsigned int i;
    char *b = buf[i++ % 4];

    snprintf(b, sizeof(buf[0]), "%04x:%02x:%02x.%u", s.seg, s.bus, s.dev, s.fn);
    return b;
}

static struct domain *get_domain(const char *tok)
{
    uint64_t id;

    if ( !unum(tok, MAX_DOMAINS - 1, &id) || !domains[id] )
    {
        err("no domain %s", tok);
        return NULL;
    }
    return domains[id];
}

static struct agent_dev *find_dev(pci_sbdf_t s)
{
    for ( unsigned int i = 0; i < nr_devs; i++ )
        if ( devs[i].pdev->sbdf.sbdf == s.sbdf )
            return &devs[i];
    return NULL;
}

static struct agent_dev *get_dev(const char *tok)
{
    pci_sbdf_t s;
    struct agent_dev *a;

    if ( !parse_sbdf(tok, &s) )
    {
        err("bad SBDF '%s' (want seg:bus:dev.fn in hex)", tok);
        return NULL;
    }
    a = find_dev(s);
    if ( !a )
        err("no device %s (dev add first)", sbdf_str(s));
    return a;
}

static bool get_size(const char *tok, const unsigned int *allowed,
                     unsigned int *out)
{
    uint64_t v;

    if ( unum(tok, 8, &v) )
        for ( ; *allowed; allowed++ )
            if ( v == *allowed )
            {
                *out = v;
                return true;
            }
    err("bad size '%s'", tok);
    return false;
}

/* ---- Commands ------------------------------------------------------------------ */
/* domain reset <domid>: a guest rebooted, as libxl does it: the domain is
 * destroyed (each device leaves it, XEN_DOMCTL_deassign_device, and libxl
 * resets it; its ioreq servers go, ioreq_server_destroy_all; its p2m and
 * RAM with it) and built again with the same MMCFG window. Xen would give
 * the new domain another domid, which nothing the guest sees depends on;
 * the agent keeps the number. The toolstack then assigns the devices
 * again (dev assign) and the device models start their servers again. */
static int domain_reset(char **t, int n)
{
    struct domain *d;
    struct agent_domain *ad;
    struct vcpu *saved = current;

    if ( n != 3 || !(d = get_domain(t[2])) )
        return n != 3 ? err("usage: domain reset <domid>") : 0;
    if ( is_hardware_domain(d) )
        return err("the hardware domain is not reset (that is a host reboot)");
    while ( !list_empty(&d->pdev_list) )
    {
        struct pci_dev *pdev = list_entry(d->pdev_list.next, struct pci_dev,
                                          domain_list);

        shim_toolstack_deassign(pdev);
        shim_toolstack_reset(pdev);
    }
    current = d->vcpu[0];
    ioreq_server_destroy_all(d);
    current = saved;
    shim_p2m_clear(d);
    ad = &adoms[d->domain_id];
    for ( unsigned int i = 0; i < ad->nr_pages; i++ )
        free(ad->pages[i].mem);
    ad->nr_pages = 0;
    d->pci_cf8 = 0;
    put("OK");
    return 0;
}

static int cmd_domain(char **t, int n)
{
    unsigned int id;
    uint64_t ram = 0;

    if ( n >= 2 && !strcmp(t[1], "reset") )
        return domain_reset(t, n);
    if ( n < 3 || n > 4 || strcmp(t[1], "new") )
        return err("usage: domain new hwdom|guest [ram=<bytes>]");
    if ( n == 4 && (strncmp(t[3], "ram=", 4) ||
                    !unum(t[3] + 4, 1ULL << 40, &ram) || PAGE_OFFSET(ram)) )
        return err("bad '%s' (want ram=<bytes>, whole 4 KiB pages, at most "
                   "1 TiB)", t[3]);
    if ( !strcmp(t[2], "guest") )
    {
#if SHIM_XEN_VERSION < SHIM_XEN_VER(4, 21)
        return err("unsupported: Xen %u.%u gives vPCI to the PVH hardware "
                   "domain only (has_vpci); guest domains get it from 4.21",
                   SHIM_XEN_VERSION >> 8, SHIM_XEN_VERSION & 0xff);
#endif
    }
    else if ( strcmp(t[2], "hwdom") )
        return err("usage: domain new hwdom|guest [ram=<bytes>]");
    else if ( hardware_domain )
        return err("there is a hardware domain already (d%u)",
                   hardware_domain->domain_id);
    /* The hardware domain is d0; guests count from 1. */
    for ( id = strcmp(t[2], "hwdom") ? 1 : 0; id < MAX_DOMAINS; id++ )
        if ( !domains[id] )
            break;
    if ( id == MAX_DOMAINS )
        return err("too many domains (%u)", MAX_DOMAINS);
    domains[id] = shim_domain_create(id, !strcmp(t[2], "hwdom"), 1);
    adoms[id].ram = ram;
    domains[id]->ram_pages = PFN_DOWN(ram);
    /* The hardware domain's RAM is the host's: e820 RAM, no memory hole. */
    if ( !strcmp(t[2], "hwdom") )
        shim_e820_ram_pages = PFN_DOWN(ram);
    put("OK %u", id);
    return 0;
}

static uint8_t *ram_byte(struct agent_domain *ad, uint64_t gpa)
{
    uint64_t idx = PFN_DOWN(gpa);

    for ( unsigned int i = 0; i < ad->nr_pages; i++ )
        if ( ad->pages[i].idx == idx )
            return ad->pages[i].mem + PAGE_OFFSET(gpa);
    if ( ad->nr_pages == ad->cap_pages )
    {
        ad->cap_pages = ad->cap_pages ? 2 * ad->cap_pages : 16;
        ad->pages = realloc(ad->pages, ad->cap_pages * sizeof(*ad->pages));
        if ( !ad->pages )
            abort();
    }
    ad->pages[ad->nr_pages] = (struct ram_page){ idx, calloc(1, PAGE_SIZE) };
    if ( !ad->pages[ad->nr_pages].mem )
        abort();
    return ad->pages[ad->nr_pages++].mem + PAGE_OFFSET(gpa);
}

/* ---- MMCFG and CF8/CFC, as arch/x86/hvm/io.c traps them for a PVH
 * hardware domain: the access is decoded to an SBDF and goes to vPCI. -- */
static const struct mmcfg *mmcfg_find(const struct domain *d, uint64_t addr)
{
    const struct agent_domain *ad = &adoms[d->domain_id];

    for ( unsigned int i = 0; i < ad->nr_mmcfg; i++ )
        if ( addr >= ad->mmcfg[i].addr &&
             addr - ad->mmcfg[i].addr < ad->mmcfg[i].size )
            return &ad->mmcfg[i];
    return NULL;
}

static unsigned int mmcfg_decode(const struct mmcfg *m, uint64_t addr,
                                 pci_sbdf_t *sbdf)
{
    addr -= m->addr;
    *sbdf = shim_sbdf(m->seg, m->start_bus + (addr >> 20),
                      (addr >> 15) & 0x1f, (addr >> 12) & 7);
    return addr & (PCI_CFG_SPACE_EXP_SIZE - 1);
}

/* The vCPU finishes what vPCI deferred before it resumes the guest. */
static void resume(struct vcpu *v)
{
    unsigned int n = 0;

    while ( vpci_process_pending(v) )
        if ( ++n > 1000000 )
            shim_assert_failed("vpci_process_pending makes no progress",
                               __FILE__, __LINE__);
}

static int mmcfg_check(struct vcpu *v, unsigned long addr)
{
    return mmcfg_find(v->domain, addr) != NULL;
}

static int mmcfg_read(struct vcpu *v, unsigned long addr, unsigned int len,
                      unsigned long *data)
{
    pci_sbdf_t sbdf;
    unsigned int reg = mmcfg_decode(mmcfg_find(v->domain, addr), addr, &sbdf);

    *data = ~0UL;
    vpci_ecam_read(sbdf, reg, len, data);   /* a refusal reads all ones */
    return X86EMUL_OKAY;
}

static int mmcfg_write(struct vcpu *v, unsigned long addr, unsigned int len,
                       unsigned long data)
{
    pci_sbdf_t sbdf;
    unsigned int reg = mmcfg_decode(mmcfg_find(v->domain, addr), addr, &sbdf);

    vpci_ecam_write(sbdf, reg, len, data);  /* a refusal is dropped */
    resume(v);
    return X86EMUL_OKAY;
}

static const struct hvm_mmio_ops mmcfg_ops = {
    .check = mmcfg_check,
    .read = mmcfg_read,
    .write = mmcfg_write,
};

/* mmcfg <domid> <seg> <base> <start_bus> <end_bus>: one MCFG entry, the
 * way register_vpci_mmcfg_handler() takes it for the hardware domain; for a
 * guest, its virtual ECAM window, as Arm's domain_vpci_init() registers one
 * for a domU (the access then goes through vPCI's virtual SBDF
 * translation). */
static int cmd_mmcfg(char **t, int n)
{
    struct domain *d;
    struct agent_domain *ad;
    uint64_t seg, base, start, end;

    if ( n != 6 )
        return err("usage: mmcfg <domid> <seg> <base> <start_bus> <end_bus>");
    if ( !(d = get_domain(t[1])) )
        return 0;
    if ( !unum(t[2], 0xffff, &seg) || !unum(t[3], (1ULL << 52) - 1, &base) ||
         !unum(t[4], 0xff, &start) || !unum(t[5], 0xff, &end) || start > end ||
         (base & ((1 << 20) - 1)) )
        return err("bad MMCFG entry (segment, 1 MiB aligned base, buses)");
    ad = &adoms[d->domain_id];
    for ( unsigned int i = 0; i < ad->nr_mmcfg; i++ )
        if ( base + (start << 20) < ad->mmcfg[i].addr + ad->mmcfg[i].size &&
             ad->mmcfg[i].addr < base + ((end + 1) << 20) )
            return err("overlaps an MMCFG region (-EEXIST)");
    if ( ad->nr_mmcfg == MAX_MMCFG )
        return err("too many MMCFG regions (%u)", MAX_MMCFG);
    if ( !ad->nr_mmcfg )
        register_mmio_handler(d, &mmcfg_ops);
    ad->mmcfg[ad->nr_mmcfg++] = (struct mmcfg){
        base + (start << 20), (end - start + 1) << 20, seg, start };
    put("OK");
    return 0;
}

/* CF8/CFC (io.c vpci_portio_*): returns false when the port is not theirs,
 * or CONFIG_ADDRESS is not enabled (the access then reaches the ports). */
static bool portio(struct domain *d, unsigned int port, unsigned int size,
                   bool write, uint64_t *val)
{
    struct vcpu *saved = current;
    pci_sbdf_t sbdf;
    unsigned int reg;

    if ( !(port == 0xcf8 && size == 4) && (port & ~3) != 0xcfc )
        return false;
    if ( port == 0xcf8 )
    {
        if ( write )
            d->pci_cf8 = *val;
        else
            *val = d->pci_cf8;
        return true;
    }
    if ( !(d->pci_cf8 & 0x80000000u) )
        return false;
    sbdf = shim_sbdf(0, (d->pci_cf8 >> 16) & 0xff, (d->pci_cf8 >> 11) & 0x1f,
                     (d->pci_cf8 >> 8) & 7);
    reg = (d->pci_cf8 & 0xfc) | (port & 3);
    if ( !write )
        *val = ~0ULL >> (64 - 8 * size);
    if ( !vpci_access_allowed(reg, size) )
        return true;
    current = d->vcpu[0];
    if ( write )
    {
        vpci_write(sbdf, reg, size, *val);
        resume(d->vcpu[0]);
    }
    else
        *val = vpci_read(sbdf, reg, size);
    current = saved;
    return true;
}

/* Firmware's BAR placement: the next free, naturally aligned address in the
 * window (memory BARs take whole pages, so no two share one). */
static bool place_bar(struct window *w, uint64_t size, uint64_t *addr)
{
    uint64_t step = w == &win_io ? size : max(size, (uint64_t)PAGE_SIZE);
    uint64_t a = ROUNDUP(w->next, step);

    if ( a + size > w->end || a + size < a )
        return false;
    *addr = a;
    w->next = a + step;
    return true;
}

/* A hex string of 256 or 4096 bytes into out; returns the byte count or 0. */
static unsigned int hex_image(const char *hex, uint8_t *out)
{
    size_t len = strlen(hex);

    if ( len != 2 * 256 && len != 2 * PCI_CFG_SPACE_EXP_SIZE )
        return 0;
    for ( size_t i = 0; i < len; i += 2 )
    {
        int hi = isxdigit((unsigned char)hex[i]) ? hex[i] : -1;
        int lo = isxdigit((unsigned char)hex[i + 1]) ? hex[i + 1] : -1;

        if ( hi < 0 || lo < 0 )
            return 0;
        hi = hi <= '9' ? hi - '0' : (hi | 0x20) - 'a' + 10;
        lo = lo <= '9' ? lo - '0' : (lo | 0x20) - 'a' + 10;
        out[i / 2] = hi << 4 | lo;
    }
    return len / 2;
}

static int cmd_dev_add(char **t, int n)
{
    static uint8_t image[3][PCI_CFG_SPACE_EXP_SIZE];
    unsigned int image_len[3] = { 0 };
    uint64_t uid = ~0ULL;
    bool place = false;
    struct shim_endpoint e = { .vendor = 0x1b36, .device = 0x1100 };
    struct window saved[3] = { win_mem32, win_mem64, win_io };
    pci_sbdf_t s;
    uint64_t v, vendor, device;
    bool msix_at = false;
    struct agent_dev *a;
    struct pci_dev *pdev;

    if ( n < 5 || strcmp(t[4], "endpoint") )
        return err("usage: dev add <domid> <sbdf> endpoint "
                   "[bar<N>=<size>[,mem32|mem64|io][,pref]]... "
                   "[msi=<vectors>] [msix=<vectors>[@bar<N>]] [cap=<id>] "
                   "[id=<vendor>:<device>]");
    if ( !get_domain(t[2]) )
        return 0;
    if ( !parse_sbdf(t[3], &s) )
        return err("bad SBDF '%s' (want seg:bus:dev.fn in hex)", t[3]);
    if ( find_dev(s) )
        return err("%s exists already", sbdf_str(s));
    if ( nr_devs == MAX_DEVS )
        return err("too many devices (%u)", MAX_DEVS);
    for ( int i = 5; i < n; i++ )
    {
        char *eq = strchr(t[i], '='), *val;

        if ( !strcmp(t[i], "place") )
        {
            place = true;
            continue;
        }
        if ( !eq )
            return err("bad option '%s'", t[i]);
        *eq = '\0';
        val = eq + 1;
        if ( !strncmp(t[i], "bar", 3) && t[i][3] >= '0' && t[i][3] <= '5' &&
             !t[i][4] )
        {
            unsigned int nr = t[i][3] - '0';
            struct shim_bar_spec *b = &e.bar[nr];
            char *opt = strchr(val, ',');
            uint64_t max = 1ULL << 31, min = 16;

            if ( b->kind != SHIM_BAR_NONE ||
                 (nr && e.bar[nr - 1].kind == SHIM_BAR_MEM64) )
                return err("bar%u given twice (or taken by a mem64 bar%u)",
                           nr, nr - 1);
            b->kind = SHIM_BAR_MEM32;
            if ( opt )
                *opt++ = '\0';
            while ( opt )
            {
                char *next = strchr(opt, ',');

                if ( next )
                    *next++ = '\0';
                if ( !strcmp(opt, "mem32") )
                    b->kind = SHIM_BAR_MEM32;
                else if ( !strcmp(opt, "mem64") )
                    b->kind = SHIM_BAR_MEM64;
                else if ( !strcmp(opt, "io") )
                    b->kind = SHIM_BAR_IO;
                else if ( !strcmp(opt, "pref") )
                    b->prefetchable = true;
                else
                    return err("bad BAR option '%s' (mem32, mem64, io, pref)",
                               opt);
                opt = next;
            }
            if ( b->kind == SHIM_BAR_IO && b->prefetchable )
                return err("an io BAR cannot be prefetchable");
            if ( b->kind == SHIM_BAR_MEM64 && nr == 5 )
                return err("a mem64 BAR takes two slots: bar5 cannot be one");
            if ( b->kind == SHIM_BAR_MEM64 &&
                 e.bar[nr + 1].kind != SHIM_BAR_NONE )
                return err("bar%u is taken by the upper half of mem64 bar%u",
                           nr + 1, nr);
            if ( b->kind == SHIM_BAR_MEM64 )
                max = 1ULL << 38;
            else if ( b->kind == SHIM_BAR_IO )
            {
                max = 256;
                min = 4;
            }
            if ( !unum(val, max, &b->size) || b->size < min ||
                 (b->size & (b->size - 1)) )
                return err("bad bar%u size '%s' (a power of two, 0x%lx to "
                           "0x%lx for this kind)", nr, val,
                           (unsigned long)min, (unsigned long)max);
        }
        else if ( !strcmp(t[i], "msi") )
        {
            if ( !unum(val, 32, &v) || !v || (v & (v - 1)) )
                return err("bad msi vectors '%s' (1, 2, 4, 8, 16 or 32)", val);
            e.msi_vectors = v;
        }
        else if ( !strcmp(t[i], "msix") )
        {
            char *at = strchr(val, '@');

            if ( at )
            {
                *at++ = '\0';
                if ( strncmp(at, "bar", 3) || at[3] < '0' || at[3] > '5' ||
                     at[4] )
                    return err("bad msix BAR '%s' (want bar<N>, N 0..5)", at);
                e.msix_bar = at[3] - '0';
                msix_at = true;
            }
            if ( !unum(val, 2048, &v) || !v )
                return err("bad msix vectors '%s' (1 to 2048)", val);
            e.msix_vectors = v;
        }
        else if ( !strcmp(t[i], "cfg") || !strcmp(t[i], "wmask") ||
                  !strcmp(t[i], "w1c") )
        {
            unsigned int k = t[i][0] == 'c' ? 0 : t[i][0] == 'w' && t[i][1] == 'm' ? 1 : 2;

            if ( !(image_len[k] = hex_image(val, image[k])) )
                return err("bad %s (want 256 or 4096 bytes as hex)", t[i]);
        }
        else if ( !strcmp(t[i], "rom") )
        {
            if ( !unum(val, 1ULL << 24, &e.rom) || e.rom < 0x800 ||
                 (e.rom & (e.rom - 1)) )
                return err("bad rom size '%s' (a power of two, 2 KiB to 16 MiB)", val);
        }
        else if ( !strcmp(t[i], "uid") )
        {
            if ( !unum(val, 0xffff, &uid) )
                return err("bad uid '%s' (0 to 0xffff)", val);
        }
        else if ( !strcmp(t[i], "regs") )
        {
            if ( strcmp(val, "endpoint") )
                return err("bad regs '%s' (endpoint)", val);
            e.regfile = true;
        }
        else if ( !strcmp(t[i], "cap") )
        {
            /* A capability vPCI does not handle (e.g. 0x01, power
             * management): its ID only, first in the list. */
            if ( !unum(val, 0xfe, &v) || !v || v == PCI_CAP_ID_MSI ||
                 v == PCI_CAP_ID_MSIX )
                return err("bad cap '%s' (an ID 0x1..0xfe, not MSI 0x5 or "
                           "MSI-X 0x11)", val);
            e.other_cap = v;
        }
        else if ( !strcmp(t[i], "id") )
        {
            char *colon = strchr(val, ':');

            if ( !colon )
                return err("bad id '%s' (want <vendor>:<device>)", val);
            *colon = '\0';
            if ( !unum(val, 0xffff, &vendor) || !unum(colon + 1, 0xffff, &device) )
                return err("bad id (want <vendor>:<device>)");
            e.vendor = vendor;
            e.device = device;
        }
        else
            return err("unknown option '%s'", t[i]);
    }
    if ( e.msix_vectors )
    {
        const struct shim_bar_spec *b = &e.bar[e.msix_bar];
        uint64_t need = SHIM_MSIX_PBA_OFFSET(e.msix_vectors) +
                        ROUNDUP(DIV_ROUND_UP(e.msix_vectors, 8), 8);

        if ( b->kind != SHIM_BAR_MEM32 && b->kind != SHIM_BAR_MEM64 )
            return err("msix needs a memory bar%u for its table and PBA%s",
                       e.msix_bar, msix_at ? "" : " (default @bar0)");
        if ( b->size < need )
            return err("bar%u (0x%lx bytes) cannot hold the MSI-X table and "
                       "PBA of %u vectors (0x%lx bytes)", e.msix_bar,
                       (unsigned long)b->size, e.msix_vectors,
                       (unsigned long)need);
    }
    if ( e.rom && !image_len[0] )
        return err("rom needs a cfg image (its register is the image's)");
    if ( image_len[0] || image_len[1] || image_len[2] )
    {
        if ( image_len[0] != image_len[1] || image_len[0] != image_len[2] )
            return err("cfg, wmask and w1c go together, of one length");
        if ( e.msi_vectors || e.msix_vectors || msix_at )
            return err("msi and msix come from the cfg image's capabilities");
        e.image = image[0];
        e.image_wmask = image[1];
        e.image_w1c = image[2];
        e.image_len = image_len[0];
    }
    e.tag = 0x15000000u | (uid != ~0ULL ? uid : nr_devs) << 8;
    for ( unsigned int i = 0; i < PCI_HEADER_NORMAL_NR_BARS && (!e.image || place); i++ )
    {
        struct shim_bar_spec *b = &e.bar[i];
        struct window *w = b->kind == SHIM_BAR_MEM64 ? &win_mem64
                         : b->kind == SHIM_BAR_IO ? &win_io : &win_mem32;

        if ( b->kind != SHIM_BAR_NONE && !place_bar(w, b->size, &b->addr) )
        {
            win_mem32 = saved[0];
            win_mem64 = saved[1];
            win_io = saved[2];
            return err("no room for bar%u (0x%lx bytes) in the %s window "
                       "below 0x%lx", i, (unsigned long)b->size, w->name,
                       (unsigned long)w->end);
        }
    }
    pdev = shim_add_endpoint_spec(s, &e);
    if ( !pdev )
    {
        win_mem32 = saved[0];
        win_mem64 = saved[1];
        win_io = saved[2];
        return err("the shim refused the endpoint");
    }
    a = &devs[nr_devs];
    a->pdev = pdev;
    a->uid = uid != ~0ULL ? uid : nr_devs;
    nr_devs++;
    put("OK uid=%u", a->uid);
    for ( unsigned int i = 0; i < PCI_HEADER_NORMAL_NR_BARS; i++ )
        if ( e.bar[i].kind != SHIM_BAR_NONE )
        {
            /* An image's BARs are where its registers say (0 at reset). */
            uint64_t addr = shim_host_read(s, PCI_BASE_ADDRESS_0 + 4 * i, 4);

            if ( !e.image )
                addr = e.bar[i].addr;
            else if ( e.bar[i].kind == SHIM_BAR_IO )
                addr &= ~3ULL;
            else
            {
                addr &= PCI_BASE_ADDRESS_MEM_MASK;
                if ( e.bar[i].kind == SHIM_BAR_MEM64 )
                    addr |= (uint64_t)shim_host_read(s, PCI_BASE_ADDRESS_0 + 4 * i + 4, 4) << 32;
            }
            put(" bar%u=0x%lx", i, (unsigned long)addr);
        }
    if ( e.msix_vectors )
        put(" msix=bar%u+0x0,pba+0x%lx", e.msix_bar,
            (unsigned long)SHIM_MSIX_PBA_OFFSET(e.msix_vectors));
    return 0;
}

static int cmd_dev(char **t, int n)
{
    struct domain *d;
    struct agent_dev *a;

    if ( n >= 2 && !strcmp(t[1], "add") )
        return cmd_dev_add(t, n);
    if ( n != 4 )
        return err("usage: dev add|assign|deassign|reset <domid> <sbdf> ...");
    if ( !(d = get_domain(t[2])) || !(a = get_dev(t[3])) )
        return 0;
    if ( !strcmp(t[1], "assign") )
    {
        int rc = shim_toolstack_assign(d, a->pdev);
        pci_sbdf_t vs;

        put("OK %d", rc);
        /* A guest sees the device on its own bus: say where. */
        if ( !rc && !is_hardware_domain(d) && shim_guest_sbdf(a->pdev, &vs) )
            put(" vsbdf=%s", sbdf_str(vs));
    }
    else if ( !strcmp(t[1], "deassign") )
    {
        if ( a->pdev->domain != d )
            return err("%s is not assigned to d%u", sbdf_str(a->pdev->sbdf),
                       d->domain_id);
        shim_toolstack_deassign(a->pdev);
        put("OK");
    }
    else if ( !strcmp(t[1], "reset") )
    {
        int rc;
        pci_sbdf_t vs;

        if ( a->pdev->domain != d && (a->pdev->domain || !is_hardware_domain(d)) )
            return err("%s is not assigned to d%u", sbdf_str(a->pdev->sbdf),
                       d->domain_id);
        rc = shim_toolstack_reset(a->pdev);
        put("OK %d", rc);
        /* vpci_reset_device assigns the device again: a guest may see it
         * at another virtual slot. */
        if ( a->pdev->domain && !is_hardware_domain(a->pdev->domain) &&
             shim_guest_sbdf(a->pdev, &vs) )
            put(" vsbdf=%s", sbdf_str(vs));
    }
    else
        return err("usage: dev add|assign|deassign|reset <domid> <sbdf> ...");
    return 0;
}

/* Overlapping host BARs (undefined on PCI): the one vPCI mapped at its
 * current place answers an access that came through the p2m. */
static bool vpci_mapped(pci_sbdf_t sbdf, unsigned int bar, uint64_t base)
{
    struct agent_dev *a = find_dev(sbdf);
    const struct vpci *v = a ? a->pdev->vpci : NULL;

    return v && v->header.bars[bar].enabled && v->header.bars[bar].addr == base;
}

/* ---- Interrupts: the device's side, then what Xen's vPCI holds ------------ */
static void irq_push(pci_sbdf_t s, bool msix, unsigned int vector,
                     uint64_t addr, uint32_t data)
{
    if ( nr_irqs < MAX_IRQS )
        irqs[nr_irqs++] = (struct irq_event){ s, msix, vector, addr, data };
}

static int cap_of(pci_sbdf_t s, unsigned int id)
{
    return pci_find_cap_offset(s.seg, s.bus, s.dev, s.fn, id);
}

/* The MSI-X PBA byte of vector v in the device's BAR storage. */
static uint8_t *pba_byte(pci_sbdf_t s, int xpos, unsigned int v)
{
    uint32_t pba = shim_host_read(s, msix_pba_offset_reg(xpos), 4);

    return shim_host_bar_byte(s, pba & PCI_MSIX_BIRMASK,
                              (pba & ~PCI_MSIX_BIRMASK) + v / 8);
}

/* isoroot's endpoint has one INTx request, seen at 0x08 of every BAR's
 * register file and as Status.INTERRUPT (personalities/endpoint.ts). */
static void intx_request(pci_sbdf_t s, bool on)
{
    uint16_t st = shim_host_read(s, PCI_STATUS, 2);

    for ( unsigned int n = 0; n < PCI_HEADER_NORMAL_NR_BARS; n++ )
    {
        uint8_t *b = shim_host_bar_byte(s, n, 8);

        if ( b )
            *b = on;
    }
    shim_host_set(s, PCI_STATUS, 2,
                  on ? st | PCI_STATUS_INTERRUPT : st & ~PCI_STATUS_INTERRUPT);
}

/* The device asks for vector `want` (PCI 3.0 §6.8: MSI-X if enabled, else
 * MSI, else INTx). Masks and messages are vPCI's: the guest's view that Xen
 * keeps (vpci->msix->entries, vpci->msi), which real Xen programs into the
 * device; a masked vector leaves its pending bit in the device. */
/* What the device holds of its interrupt capabilities: where MSI-X and
 * MSI are (0: absent), their control words, and Bus Master. */
struct msg_state {
    int xpos, mpos;
    uint16_t xctl, mctl;
    bool master;
};

static struct msg_state msg_state(pci_sbdf_t s)
{
    struct msg_state m = { .xpos = cap_of(s, PCI_CAP_ID_MSIX),
                           .mpos = cap_of(s, PCI_CAP_ID_MSI) };

    m.xctl = m.xpos ? shim_host_read(s, msix_control_reg(m.xpos), 2) : 0;
    m.mctl = m.mpos ? shim_host_read(s, msi_control_reg(m.mpos), 2) : 0;
    m.master = shim_host_read(s, PCI_COMMAND, 2) & PCI_COMMAND_MASTER;
    return m;
}

static void device_signal(struct pci_dev *pdev, uint32_t want)
{
    pci_sbdf_t s = pdev->sbdf;
    struct msg_state st = msg_state(s);
    int xpos = st.xpos, mpos = st.mpos;
    uint16_t xctl = st.xctl, mctl = st.mctl;
    bool master = st.master;

    if ( xctl & PCI_MSIX_FLAGS_ENABLE )
    {
        unsigned int v = want % ((xctl & PCI_MSIX_FLAGS_QSIZE) + 1);
        const struct vpci_msix *x = pdev->vpci ? pdev->vpci->msix : NULL;
        uint8_t *p = pba_byte(s, xpos, v);

        if ( (xctl & PCI_MSIX_FLAGS_MASKALL) || !x || x->entries[v].masked )
        {
            if ( p )
                *p |= 1u << (v % 8);
        }
        else if ( master )
            irq_push(s, true, v, x->entries[v].addr, x->entries[v].data);
        return;
    }
    if ( mctl & PCI_MSI_FLAGS_ENABLE )
    {
        const struct vpci_msi *m = pdev->vpci ? pdev->vpci->msi : NULL;
        unsigned int vectors = m ? m->vectors : 1;
        unsigned int v = want & (vectors - 1);
        unsigned int pend = msi_pending_bits_reg(mpos, !!(mctl & PCI_MSI_FLAGS_64BIT));

        if ( !m || (m->masking && (m->mask >> v) & 1) )
        {
            if ( mctl & PCI_MSI_FLAGS_MASKBIT )
                shim_host_set(s, pend, 4, shim_host_read(s, pend, 4) | 1u << v);
        }
        else if ( master )
            irq_push(s, false, v, m->address, (m->data & ~(vectors - 1)) | v);
        return;
    }
    intx_request(s, true);
}

/* Pending vectors whose masks are gone are sent (PCI 3.0 §6.8.1.7,
 * §6.8.2.9): after every access that may have unmasked one. */
static void redeliver(void)
{
    for ( unsigned int i = 0; i < nr_devs; i++ )
    {
        struct pci_dev *pdev = devs[i].pdev;
        pci_sbdf_t s = pdev->sbdf;
        struct msg_state st = msg_state(s);
        int xpos = st.xpos, mpos = st.mpos;
        uint16_t xctl = st.xctl, mctl = st.mctl;
        bool master = st.master;

        if ( !pdev->vpci )
            continue;
        if ( (xctl & PCI_MSIX_FLAGS_ENABLE) && !(xctl & PCI_MSIX_FLAGS_MASKALL) &&
             pdev->vpci->msix )
        {
            const struct vpci_msix *x = pdev->vpci->msix;

            for ( unsigned int v = 0; v <= (xctl & PCI_MSIX_FLAGS_QSIZE); v++ )
            {
                uint8_t *p = pba_byte(s, xpos, v);

                if ( !p || !(*p & (1u << (v % 8))) || x->entries[v].masked )
                    continue;
                *p &= ~(1u << (v % 8));
                if ( master )
                    irq_push(s, true, v, x->entries[v].addr, x->entries[v].data);
            }
        }
        else if ( (mctl & PCI_MSI_FLAGS_ENABLE) && (mctl & PCI_MSI_FLAGS_MASKBIT) &&
                  !(xctl & PCI_MSIX_FLAGS_ENABLE) && pdev->vpci->msi )
        {
            const struct vpci_msi *m = pdev->vpci->msi;
            unsigned int pend = msi_pending_bits_reg(mpos, !!(mctl & PCI_MSI_FLAGS_64BIT));
            uint32_t bits = shim_host_read(s, pend, 4);

            for ( unsigned int v = 0; v < 32; v++ )
            {
                if ( !((bits >> v) & 1) || (m->masking && (m->mask >> v) & 1) )
                    continue;
                bits &= ~(1u << v);
                shim_host_set(s, pend, 4, bits);
                if ( master )
                    irq_push(s, false, v, m->address,
                             (m->data & ~(m->vectors - 1)) | v);
            }
        }
    }
}

/* What a write a host BAR took asks of the device (its register file). */
static void device_after_write(pci_sbdf_t hs)
{
    uint32_t vector;
    bool ack;
    bool rang = shim_host_doorbell(&vector, &ack);
    struct agent_dev *a = find_dev(hs);

    if ( ack )
        intx_request(hs, false);
    if ( rang && a )
        device_signal(a->pdev, vector);
}

/* " irq=msi|msix:<sbdf>:<vector>:<addr>:<data>" for each, then forget them. */
static void put_irqs(void)
{
    for ( unsigned int i = 0; i < nr_irqs; i++ )
        put(" irq=%s:%s:%u:0x%lx:0x%x", irqs[i].msix ? "msix" : "msi",
            sbdf_str(irqs[i].sbdf), irqs[i].vector,
            (unsigned long)irqs[i].addr, irqs[i].data);
    nr_irqs = 0;
}

static int cmd_cfg(char **t, int n)
{
    static const unsigned int sizes[] = { 1, 2, 4, 8, 0 };
    struct domain *d;
    pci_sbdf_t s;
    uint64_t reg, val = 0;
    unsigned int size;
    unsigned long v;
    bool write = n >= 2 && !strcmp(t[1], "write");

    if ( n < 2 || (!write && strcmp(t[1], "read")) || n != (write ? 7 : 6) )
        return err("usage: cfg read <domid> <sbdf> <reg> <size> | "
                   "cfg write <domid> <sbdf> <reg> <size> <value>");
    if ( !(d = get_domain(t[2])) )
        return 0;
    if ( !parse_sbdf(t[3], &s) )
        return err("bad SBDF '%s' (want seg:bus:dev.fn in hex)", t[3]);
    if ( !unum(t[4], 0xffff, &reg) )
        return err("bad register '%s'", t[4]);
    if ( !get_size(t[5], sizes, &size) )
        return 0;
    if ( !write )
    {
        v = size == 8 ? ~0UL : ~0UL >> (64 - 8 * size);
        bool ok = shim_cfg_read(d->vcpu[0], s, reg, size, &v);

        put("OK 0x%lx%s", v, ok ? "" : " rejected");
    }
    else
    {
        unsigned int rounds = 0;

        if ( !unum(t[6], size == 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1,
                   &val) )
            return err("bad value '%s' for %u bytes", t[6], size);
        bool ok = shim_cfg_write(d->vcpu[0], s, reg, size, val, &rounds);

        put("OK %u%s", rounds, ok ? "" : " rejected");
        redeliver();
        put_irqs();
    }
    return 0;
}

/* ---- ioreq servers (xen/common/ioreq.c, Xen's own) ----------------------
 * The emulators run in a device-model domain of their own (d256, outside
 * the agent's tables), as `current` when they issue their dm_ops: ioreq.c
 * records the caller as the server's emulator and refuses other callers. */
#define DM_DOMID 256
static struct domain *dm_domain;

static long dm_op(struct domain *d, struct xen_dm_op *op)
{
    struct vcpu *saved = current;
    bool const_op = true;
    long rc;

    if ( !dm_domain )
        dm_domain = shim_domain_create(DM_DOMID, false, 1);
    current = dm_domain->vcpu[0];
    rc = ioreq_server_dm_op(op, d, &const_op);
    current = saved;
    return rc;
}

static int io_range_type(const char *s)
{
    return !strcmp(s, "port") ? XEN_DMOP_IO_RANGE_PORT
           : !strcmp(s, "mem") ? XEN_DMOP_IO_RANGE_MEMORY
           : !strcmp(s, "pci") ? XEN_DMOP_IO_RANGE_PCI : -1;
}

static int cmd_ioreq(char **t, int n)
{
    struct xen_dm_op op = { 0 };
    struct domain *d;
    uint64_t id, start, end, on;
    int type;
    long rc;

    if ( n < 3 || !(d = get_domain(t[2])) )
        return n < 3 ? err("usage: ioreq create|state|map|unmap|destroy "
                           "<domid> ...") : 0;
    if ( !strcmp(t[1], "create") && n == 3 )
    {
        op.op = XEN_DMOP_create_ioreq_server;
        op.u.create_ioreq_server.handle_bufioreq = HVM_IOREQSRV_BUFIOREQ_OFF;
        rc = dm_op(d, &op);
        put(rc ? "OK %ld" : "OK %ld id=%u", rc, op.u.create_ioreq_server.id);
        return 0;
    }
    if ( n < 4 || !unum(t[3], 0xffff, &id) )
        return err("bad ioreq server id");
    if ( (!strcmp(t[1], "map") || !strcmp(t[1], "unmap")) && n == 7 )
    {
        if ( (type = io_range_type(t[4])) < 0 )
            return err("bad range type '%s' (port, mem or pci)", t[4]);
        if ( !unum(t[5], UINT64_MAX, &start) || !unum(t[6], UINT64_MAX, &end) )
            return err("bad range '%s' '%s'", t[5], t[6]);
        if ( !strcmp(t[1], "map") )
        {
            op.op = XEN_DMOP_map_io_range_to_ioreq_server;
            op.u.map_io_range_to_ioreq_server = (struct xen_dm_op_ioreq_server_range){
                .id = id, .type = type, .start = start, .end = end };
        }
        else
        {
            op.op = XEN_DMOP_unmap_io_range_from_ioreq_server;
            op.u.unmap_io_range_from_ioreq_server = (struct xen_dm_op_ioreq_server_range){
                .id = id, .type = type, .start = start, .end = end };
        }
    }
    else if ( !strcmp(t[1], "state") && n == 5 && unum(t[4], 1, &on) )
    {
        op.op = XEN_DMOP_set_ioreq_server_state;
        op.u.set_ioreq_server_state.id = id;
        op.u.set_ioreq_server_state.enabled = on;
    }
    else if ( !strcmp(t[1], "destroy") && n == 4 )
    {
        op.op = XEN_DMOP_destroy_ioreq_server;
        op.u.destroy_ioreq_server.id = id;
    }
    else
        return err("usage: ioreq create <domid> | ioreq state <domid> <id> 0|1"
                   " | ioreq map|unmap <domid> <id> port|mem|pci <start> "
                   "<end> | ioreq destroy <domid> <id>");
    put("OK %ld", dm_op(d, &op));
    return 0;
}

/* The server Xen's ioreq_server_select() gives an access, -1 for none (a
 * CONFIG_DATA port access is keyed by the SBDF that CF8 latches). */
static int ioreq_target(struct domain *d, bool pio, uint64_t addr,
                        unsigned int size, bool write, uint64_t val)
{
    ioreq_t p = {
        .addr = addr, .data = val, .count = 1, .size = size,
        .state = STATE_IOREQ_READY, .dir = write ? IOREQ_WRITE : IOREQ_READ,
        .type = pio ? IOREQ_TYPE_PIO : IOREQ_TYPE_COPY,
    };
    struct ioreq_server *s = ioreq_server_select(d, &p);

    for ( unsigned int i = 0; s && i < MAX_NR_IOREQ_SERVERS; i++ )
        if ( d->ioreq_server.server[i] == s )
            return i;
    return -1;
}

/* What an access that trapped and that no internal handler took becomes:
 * an ioreq to server `id` (ioreq_target), whose device model hosts no
 * device (a read is all ones, a write dropped), or, with no server (-1),
 * the null handler's all ones (hvm_process_io_intercept(&null_handler)),
 * whose <where> is `none`. */
static int put_emulated(int id, const char *none, unsigned int size,
                        bool write)
{
    unsigned long ones = size == 8 ? ~0UL : ~0UL >> (64 - 8 * size);
    char where[32];

    if ( id < 0 )
        snprintf(where, sizeof(where), "%s", none);
    else
        snprintf(where, sizeof(where), "ioreq:%d", id);
    if ( write )
        put("OK %s", where);
    else
        put("OK 0x%lx %s", ones, where);
    return 0;
}

/* The reply to an access a host device's BAR answered: the value read, and where. */
static int put_device_reply(bool write, uint64_t val, pci_sbdf_t hs, unsigned int bar, uint64_t off)
{
    if ( write )
        put("OK %s bar%u +0x%lx", sbdf_str(hs), bar, (unsigned long)off);
    else
        put("OK 0x%lx %s bar%u +0x%lx", (unsigned long)val, sbdf_str(hs), bar,
            (unsigned long)off);
    return 0;
}

static int cmd_mem(char **t, int n)
{
    static const unsigned int sizes[] = { 1, 2, 4, 8, 0 };
    struct domain *d;
    uint64_t gpa, val = 0;
    unsigned int size;
    unsigned long v, hpa;
    uint64_t hv, off;
    pci_sbdf_t hs;
    unsigned int bar;
    p2m_type_t type;
    mfn_t mfn;
    int rc;
    bool ok;
    bool write = n >= 2 && !strcmp(t[1], "write");

    if ( n < 2 || (!write && strcmp(t[1], "read")) || n != (write ? 6 : 5) )
        return err("usage: mem read <domid> <gpa> <size> | "
                   "mem write <domid> <gpa> <size> <value>");
    if ( !(d = get_domain(t[2])) )
        return 0;
    if ( !unum(t[3], (1ULL << 52) - 1, &gpa) )
        return err("bad guest address '%s'", t[3]);
    if ( !get_size(t[4], sizes, &size) )
        return 0;
    if ( write && !unum(t[5], size == 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1,
                        &val) )
        return err("bad value '%s' for %u bytes", t[5], size);
    if ( PFN_DOWN(gpa) != PFN_DOWN(gpa + size - 1) )
        return err("the access crosses a page boundary");

    /* 1. The domain's RAM: a platform decoder, above whatever vPCI maps or
     * traps there, as the model's RAM outranks BARs (x86 would replace the
     * RAM pages in the p2m: BARs over RAM are not judged, docs/xen.md). */
    if ( gpa + size <= adoms[d->domain_id].ram )
    {
        uint8_t *b = ram_byte(&adoms[d->domain_id], gpa);

        hv = 0;
        for ( unsigned int i = 0; i < size; i++ )
            if ( write )
                b[i] = val >> (8 * i);
            else
                hv |= (uint64_t)b[i] << (8 * i);
        put(write ? "OK ram" : "OK 0x%lx ram", (unsigned long)hv);
        return 0;
    }
    /* 2. vPCI's own MMIO handlers (MSI-X table and PBA, MMCFG). */
    rc = write ? shim_mmio_write(d->vcpu[0], gpa, size, val)
               : shim_mmio_read(d->vcpu[0], gpa, size, &v);
    if ( rc == X86EMUL_OKAY )
    {
        const char *who = mmcfg_find(d, gpa) ? "mmcfg" : "vpci-mmio";

        if ( write )
        {
            put("OK %s", who);
            redeliver();
            put_irqs();
        }
        else
            put("OK 0x%lx %s", v & (size == 8 ? ~0UL : ~0UL >> (64 - 8 * size)), who);
        return 0;
    }
    if ( rc != X86EMUL_UNHANDLEABLE )
        return err("vPCI's MMIO handler returned %d (X86EMUL_RETRY is 3)", rc);

    /* 3. The domain's p2m. */
    mfn = get_gfn_query(d, PFN_DOWN(gpa), &type);
    put_gfn(d, PFN_DOWN(gpa));
    if ( type != p2m_mmio_direct )
    {
        /* 4. Nothing mapped: the access exits (p2m_mmio_dm), and no
         * internal handler took it: an ioreq server, if one claims it. */
        return put_emulated(ioreq_target(d, false, gpa, size, write, val),
                            "unmapped", size, write);
    }
    hpa = mfn_x(mfn) << PAGE_SHIFT | PAGE_OFFSET(gpa);

    /* 4. The host device that decodes the host address. */
    hv = val;
    shim_decode_prefer = vpci_mapped;
    ok = shim_host_access(false, hpa, size, write, &hv, &hs, &bar, &off);
    shim_decode_prefer = NULL;
    if ( !ok )
    {
        if ( write )
            put("OK mfn:0x%lx no-decode", mfn_x(mfn));
        else
            put("OK 0x%lx mfn:0x%lx no-decode",
                size == 8 ? ~0UL : ~0UL >> (64 - 8 * size), mfn_x(mfn));
        return 0;
    }
    put_device_reply(write, hv, hs, bar, off);
    if ( write )
    {
        device_after_write(hs);
        put_irqs();
    }
    return 0;
}

/* Port IO: straight to the host (see the header: vPCI in 4.17 neither maps
 * nor traps IO BARs). */
static int cmd_io(char **t, int n)
{
    static const unsigned int sizes[] = { 1, 2, 4, 0 };
    uint64_t port, val = 0, off;
    unsigned int size, bar;
    pci_sbdf_t hs;
    struct domain *d;
    bool write = n >= 2 && !strcmp(t[1], "write");

    if ( n < 2 || (!write && strcmp(t[1], "read")) || n != (write ? 6 : 5) )
        return err("usage: io read <domid> <port> <size> | "
                   "io write <domid> <port> <size> <value>");
    if ( !(d = get_domain(t[2])) )
        return 0;
    if ( !unum(t[3], 0xffff, &port) )
        return err("bad port '%s' (0 to 0xffff)", t[3]);
    if ( !get_size(t[4], sizes, &size) )
        return 0;
    if ( port + size > 0x10000 )
        return err("the access runs past port 0xffff");
    if ( write && !unum(t[5], (1ULL << (8 * size)) - 1, &val) )
        return err("bad value '%s' for %u bytes", t[5], size);
    /* 1. CF8/CFC, trapped for vPCI (io.c register_vpci_portio_handler),
     * before any ioreq server (hvm_io_intercept, then
     * ioreq_server_select): a server that registered the latched SBDF is
     * passed over, and the reply names it ("cf8 over ioreq:<id>"). */
    if ( is_hardware_domain(d) && port <= 0xcff && port + size > 0xcf8 )
    {
        uint64_t data = val;
        int over = ioreq_target(d, true, port, size, write, val);
        char where[32] = "cf8";

        if ( !portio(d, port, size, write, &data) )
            /* Not vPCI's (CONFIG_ADDRESS disabled, a partial CF8): these
             * ports trap for the hardware domain all the same. */
            return put_emulated(over, "unclaimed", size, write);
        if ( over >= 0 && (port & ~3) == 0xcfc )
            snprintf(where, sizeof(where), "cf8 over ioreq:%d", over);
        if ( write )
        {
            put("OK %s", where);
            redeliver();
            put_irqs();
        }
        else
            put("OK 0x%lx %s", (unsigned long)data, where);
        return 0;
    }
    /* 2. The host device whose IO BAR decodes the port. */
    if ( !shim_host_access(true, port, size, write, &val, &hs, &bar, &off) )
    {
        put(write ? "OK no-decode" : "OK 0x%lx no-decode", (unsigned long)val);
        return 0;
    }
    put_device_reply(write, val, hs, bar, off);
    if ( write )
    {
        device_after_write(hs);
        put_irqs();
    }
    return 0;
}

/* The current mappings: the p2m log replayed as sorted, disjoint runs. */
struct run { unsigned long gfn, mfn, nr; };

static int cmd_p2m(char **t, int n)
{
    static const char *const names[] = { "map", "unmap", "remove-identity" };
    struct domain *d;
    struct run *runs = NULL;
    unsigned int nr = 0;
    bool log = n == 3 && !strcmp(t[1], "log");

    if ( n != 2 && !log )
        return err("usage: p2m <domid> | p2m log <domid>");
    if ( !(d = get_domain(t[n - 1])) )
        return 0;
    put("OK");
    if ( log )
    {
        for ( unsigned int i = 0; i < d->p2m.nr; i++ )
        {
            const struct shim_p2m_op *o = &d->p2m.ops[i];

            put("%c%s:0x%lx:0x%lx:0x%lx:0x%lx:%d", i ? ',' : ' ', names[o->op],
                o->gfn, o->mfn, o->nr, o->done, o->rc);
        }
        return 0;
    }
    for ( unsigned int i = 0; i < d->p2m.nr; i++ )
    {
        const struct shim_p2m_op *o = &d->p2m.ops[i];
        unsigned long lo = o->gfn, hi = o->gfn + o->done;  /* [lo, hi) */
        struct run *out;
        unsigned int k = 0;

        if ( !o->done )
            continue;
        /* Cut [lo, hi) out of every run (each splits in at most two), then
         * add the new run for a map. */
        out = malloc((2 * nr + 1) * sizeof(*out));
        if ( !out )
            abort();
        for ( unsigned int j = 0; j < nr; j++ )
        {
            struct run r = runs[j];

            if ( r.gfn + r.nr <= lo || r.gfn >= hi )
            {
                out[k++] = r;
                continue;
            }
            if ( r.gfn < lo )
                out[k++] = (struct run){ r.gfn, r.mfn, lo - r.gfn };
            if ( r.gfn + r.nr > hi )
                out[k++] = (struct run){ hi, r.mfn + (hi - r.gfn),
                                         r.gfn + r.nr - hi };
        }
        if ( o->op == SHIM_P2M_MAP )
            out[k++] = (struct run){ o->gfn, o->mfn, o->done };
        /* Keep sorted by gfn (insertion sort: few runs). */
        for ( unsigned int j = 1; j < k; j++ )
            for ( unsigned int m = j; m && out[m - 1].gfn > out[m].gfn; m-- )
            {
                struct run tmp = out[m];

                out[m] = out[m - 1];
                out[m - 1] = tmp;
            }
        free(runs);
        runs = out;
        nr = k;
    }
    /* Merge runs that continue each other in both gfn and mfn. */
    unsigned int merged = 0;

    for ( unsigned int j = 0; j < nr; j++ )
    {
        if ( merged && runs[merged - 1].gfn + runs[merged - 1].nr == runs[j].gfn &&
             runs[merged - 1].mfn + runs[merged - 1].nr == runs[j].mfn )
            runs[merged - 1].nr += runs[j].nr;
        else
            runs[merged++] = runs[j];
    }
    nr = merged;
    for ( unsigned int j = 0; j < nr; j++ )
        put("%c0x%lx:0x%lx:0x%lx", j ? ',' : ' ', runs[j].gfn, runs[j].mfn,
            runs[j].nr);
    free(runs);
    return 0;
}

static int cmd_knob(char **t, int n)
{
    int64_t v;

    if ( n != 3 || !num(t[2], &v) )
        return err("usage: knob p2m_partial|p2m_error|preempt_every|"
                   "bar_outside_hole|trace <value>");
    if ( !strcmp(t[1], "p2m_partial") && v >= 0 )
        shim_knobs.p2m_partial = v;
    else if ( !strcmp(t[1], "p2m_error") && v <= 0 && v >= -4095 )
        shim_knobs.p2m_error = v;
    else if ( !strcmp(t[1], "preempt_every") && v >= 0 && v <= UINT32_MAX )
        shim_knobs.preempt_every = v;
    else if ( !strcmp(t[1], "bar_outside_hole") && (v == 0 || v == 1) )
        shim_knobs.bar_outside_hole = v;
    else if ( !strcmp(t[1], "trace") && (v == 0 || v == 1) )
        shim_knobs.trace = v;
    else
        return err("bad knob '%s' or value '%s'", t[1], t[2]);
    put("OK");
    return 0;
}

/* Returns false on quit. */
static bool run(char *line)
{
    char *t[MAX_TOKENS + 1];
    int n = 0;

    reply_len = 0;
    nr_irqs = 0;
    for ( char *p = strtok(line, " \t\r"); p; p = strtok(NULL, " \t\r") )
    {
        if ( n == MAX_TOKENS )
        {
            err("too many words (at most %u)", MAX_TOKENS);
            return true;
        }
        t[n++] = p;
    }
    if ( !n )
        err("empty command");
    else if ( !strcmp(t[0], "domain") )
        cmd_domain(t, n);
    else if ( !strcmp(t[0], "dev") )
        cmd_dev(t, n);
    else if ( !strcmp(t[0], "cfg") )
        cmd_cfg(t, n);
    else if ( !strcmp(t[0], "mem") )
        cmd_mem(t, n);
    else if ( !strcmp(t[0], "io") )
        cmd_io(t, n);
    else if ( !strcmp(t[0], "ioreq") )
        cmd_ioreq(t, n);
    else if ( !strcmp(t[0], "mmcfg") )
        cmd_mmcfg(t, n);
    else if ( !strcmp(t[0], "p2m") )
        cmd_p2m(t, n);
    else if ( !strcmp(t[0], "knob") )
        cmd_knob(t, n);
    else if ( !strcmp(t[0], "debug") && n == 2 && !strcmp(t[1], "crash") )
        shim_assert_failed("debug crash requested", __FILE__, __LINE__);
    else if ( !strcmp(t[0], "quit") && n == 1 )
    {
        put("OK");
        return false;
    }
    else
        err("unknown command '%.40s'", t[0]);
    return true;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool more = true;

    crash_setup();
    signal(SIGPIPE, SIG_IGN);   /* the other end gone: write fails, EOF ends */
    while ( more && (len = getline(&line, &cap, stdin)) >= 0 )
    {
        if ( len && line[len - 1] == '\n' )
            line[--len] = '\0';
        if ( strlen(line) != (size_t)len )
        {
            reply_len = 0;
            err("NUL byte in the command");
        }
        else
            more = run(line);
#if SHIM_XEN_VERSION >= SHIM_XEN_VER(4, 21)
        /* Xen crashed a domain (domain_crash: a guest whose BARs cannot be
         * mapped, header.c): the guest is dead, and so is the session. */
        if ( shim_domain_crash_site[0] )
        {
            printf("CRASH %s\n", shim_domain_crash_site);
            fflush(stdout);
            exit(3);
        }
#endif
        if ( reply_len == 0 )
            err("internal: no reply");
        reply[reply_len] = '\0';
        fputs(reply, stdout);
        fputc('\n', stdout);
        if ( fflush(stdout) )
            break;
    }
    free(line);
    return 0;
}
