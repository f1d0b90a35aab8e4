/*
 * isoroot VFIO guest agent.
 *
 * Runs as the only real process inside a small Linux guest and performs VFIO
 * operations (ioctls from <linux/vfio.h>) on request from the host, over a
 * virtio-serial port. One request per '\n'-terminated line, one reply line
 * per request, in order. See the protocol notes in harness/adapters/vfio-guest.
 *
 * Build: gcc -static -O2 -Wall -Wextra -o vfio-agent agent.c
 *
 * Request:  <id> <verb> <args...>          (single spaces)
 * Replies:  <id> ok [payload...]
 *           <id> err <ERRNO_NAME> <step>   (step: which syscall failed)
 *           <id> bad <message>             (malformed request; nothing done)
 * Numbers in: strtoull base 0 (0x.. hex or decimal). Numbers out: 0x.. hex.
 * Byte strings: lowercase hex without prefix; "-" is the empty string.
 * Objects (groups, containers, devices, mmaps, buffers) are named by the host
 * so it can pipeline requests without waiting for handles.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>

#define AGENT_NAME "isoroot-vfio-agent"
#define AGENT_VERSION 1
#define MAX_LINE 65536          /* longest request line, without its '\n' */
#define MAX_OBJ 256
#define MAX_NAME 64
#define MAX_ARGS 16
#define MAX_PREAD 4096          /* pread length limit (brief) */
#define MAX_BREAD 65536         /* bread length limit (keeps replies sane) */
#define NREGCACHE 16            /* cached region offsets per device */
#define OUT_CAP (256 * 1024)    /* output buffer; flushed when full */

/* ---------------------------------------------------------------- errno names */

struct errname { int num; const char *name; };
static const struct errname errnames[] = {
	{EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {ESRCH, "ESRCH"}, {EINTR, "EINTR"},
	{EIO, "EIO"}, {ENXIO, "ENXIO"}, {E2BIG, "E2BIG"}, {ENOEXEC, "ENOEXEC"},
	{EBADF, "EBADF"}, {ECHILD, "ECHILD"}, {EAGAIN, "EAGAIN"},
	{ENOMEM, "ENOMEM"}, {EACCES, "EACCES"}, {EFAULT, "EFAULT"},
	{ENOTBLK, "ENOTBLK"}, {EBUSY, "EBUSY"}, {EEXIST, "EEXIST"},
	{EXDEV, "EXDEV"}, {ENODEV, "ENODEV"}, {ENOTDIR, "ENOTDIR"},
	{EISDIR, "EISDIR"}, {EINVAL, "EINVAL"}, {ENFILE, "ENFILE"},
	{EMFILE, "EMFILE"}, {ENOTTY, "ENOTTY"}, {ETXTBSY, "ETXTBSY"},
	{EFBIG, "EFBIG"}, {ENOSPC, "ENOSPC"}, {ESPIPE, "ESPIPE"},
	{EROFS, "EROFS"}, {EMLINK, "EMLINK"}, {EPIPE, "EPIPE"}, {EDOM, "EDOM"},
	{ERANGE, "ERANGE"}, {EDEADLK, "EDEADLK"},
	{ENAMETOOLONG, "ENAMETOOLONG"}, {ENOLCK, "ENOLCK"}, {ENOSYS, "ENOSYS"},
	{ENOTEMPTY, "ENOTEMPTY"}, {ELOOP, "ELOOP"}, {ENOMSG, "ENOMSG"},
	{EIDRM, "EIDRM"}, {ENOSTR, "ENOSTR"}, {ENODATA, "ENODATA"},
	{ETIME, "ETIME"}, {ENOSR, "ENOSR"}, {ENOLINK, "ENOLINK"},
	{EPROTO, "EPROTO"}, {EBADMSG, "EBADMSG"}, {EOVERFLOW, "EOVERFLOW"},
	{EILSEQ, "EILSEQ"}, {ENOTSOCK, "ENOTSOCK"}, {EMSGSIZE, "EMSGSIZE"},
	{EOPNOTSUPP, "EOPNOTSUPP"}, {EADDRINUSE, "EADDRINUSE"},
	{EADDRNOTAVAIL, "EADDRNOTAVAIL"}, {ENETDOWN, "ENETDOWN"},
	{ECONNRESET, "ECONNRESET"}, {ENOBUFS, "ENOBUFS"},
	{ENOTCONN, "ENOTCONN"}, {ETIMEDOUT, "ETIMEDOUT"},
	{ECONNREFUSED, "ECONNREFUSED"}, {EHOSTUNREACH, "EHOSTUNREACH"},
	{EALREADY, "EALREADY"}, {EINPROGRESS, "EINPROGRESS"},
	{ESTALE, "ESTALE"}, {EDQUOT, "EDQUOT"}, {ECANCELED, "ECANCELED"},
	{EOWNERDEAD, "EOWNERDEAD"}, {ENOTRECOVERABLE, "ENOTRECOVERABLE"},
	{ERFKILL, "ERFKILL"}, {EHWPOISON, "EHWPOISON"},
	/* Kernel-internal codes that can leak to userspace. */
	{512, "ERESTARTSYS"}, {524, "ENOTSUPP"},
};

static const char *errno_name(int e, char *tmp, size_t n)
{
	for (size_t i = 0; i < sizeof errnames / sizeof errnames[0]; i++)
		if (errnames[i].num == e)
			return errnames[i].name;
	snprintf(tmp, n, "E%d", e);
	return tmp;
}

/* ---------------------------------------------------------------- output */

static int chan_fd = -1;
static char out_buf[OUT_CAP];
static size_t out_len;

/* Write all buffered output. The virtio port blocks while the host is not
 * connected, which is what we want: replies wait for a reader. */
static void out_flush(void)
{
	size_t done = 0;
	while (done < out_len) {
		ssize_t n = write(chan_fd, out_buf + done, out_len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = chan_fd, .events = POLLOUT};
			poll(&p, 1, 100);
			continue;
		}
		/* Hard error (port gone): drop the output rather than spin. */
		fprintf(stderr, AGENT_NAME ": write: %s; dropping %zu bytes\n",
			n < 0 ? strerror(errno) : "0", out_len - done);
		usleep(10000);
		break;
	}
	out_len = 0;
}

/* Append; a reply longer than the buffer is simply flushed in pieces. */
static void out_put(const char *s, size_t n)
{
	while (n > 0) {
		size_t room = OUT_CAP - out_len;
		if (room == 0) {
			out_flush();
			continue;
		}
		size_t k = n < room ? n : room;
		memcpy(out_buf + out_len, s, k);
		out_len += k;
		s += k;
		n -= k;
	}
}

static void out_str(const char *s) { out_put(s, strlen(s)); }

__attribute__((format(printf, 1, 2)))
static void out_fmt(const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	out_put(tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void out_hex(const unsigned char *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	char tmp[512];
	size_t k = 0;
	if (n == 0) {
		out_str("-");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		tmp[k++] = hx[p[i] >> 4];
		tmp[k++] = hx[p[i] & 15];
		if (k == sizeof tmp) {
			out_put(tmp, k);
			k = 0;
		}
	}
	out_put(tmp, k);
}

/* Reply helpers: every handler ends with exactly one of these sequences. */
static const char *cur_id = "-";

static void reply_begin(const char *status)
{
	out_str(cur_id);
	out_str(" ");
	out_str(status);
}

static void reply_end(void) { out_str("\n"); }

static int ok0(void)
{
	reply_begin("ok");
	reply_end();
	return 0;
}

__attribute__((format(printf, 1, 2)))
static int okf(const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	reply_begin("ok ");
	out_str(tmp);
	reply_end();
	return 0;
}

static int err_reply(int e, const char *step)
{
	char tmp[16];
	reply_begin("err ");
	out_str(errno_name(e, tmp, sizeof tmp));
	out_str(" ");
	out_str(step);
	reply_end();
	return -1;
}

__attribute__((format(printf, 1, 2)))
static int bad(const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	for (char *p = tmp; *p; p++)    /* a reply is exactly one line */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	reply_begin("bad ");
	out_str(tmp);
	reply_end();
	return -1;
}

/* ---------------------------------------------------------------- parsing */

static int parse_num(const char *s, uint64_t *v)
{
	char *end;
	/* strtoull accepts a sign and leading blanks; the protocol does not. */
	if (!*s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || *end)
		return -1;
	*v = x;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Decode in place; returns byte count or -1. "-" is empty. */
static ssize_t parse_hex(char *s)
{
	if (strcmp(s, "-") == 0)
		return 0;
	size_t n = strlen(s);
	if (n == 0 || n % 2)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		s[i] = (char)(hi << 4 | lo);
	}
	return (ssize_t)(n / 2);
}

/* A path component from the host (bdf, driver name): no traversal. */
static int safe_component(const char *s)
{
	return *s && s[0] != '.' && !strchr(s, '/') && strlen(s) < 128;
}

/* ---------------------------------------------------------------- objects */

enum kind { K_FREE, K_GROUP, K_CONTAINER, K_DEVICE, K_MMAP, K_BUF };
static const char *const kind_names[] = {
	"free", "group", "container", "device", "mmap", "buf"
};

struct obj {
	enum kind kind;
	char name[MAX_NAME];
	int fd;                 /* group, container, device */
	unsigned char *addr;    /* mmap, buf */
	size_t size;            /* mmap, buf */
	int parent;             /* device: its group; mmap: its device */
	uint32_t regvalid;      /* device: region offsets cached (bitmask) */
	uint64_t regoff[NREGCACHE];
};

static struct obj objs[MAX_OBJ];

static int obj_find(const char *name)
{
	for (int i = 0; i < MAX_OBJ; i++)
		if (objs[i].kind != K_FREE && strcmp(objs[i].name, name) == 0)
			return i;
	return -1;
}

/* Look up a host-named object of the wanted kind; replies `bad` if not. */
static struct obj *obj_get(const char *name, enum kind k)
{
	int i = obj_find(name);
	if (i < 0) {
		bad("unknown name %.64s", name);
		return NULL;
	}
	if (objs[i].kind != k) {
		bad("%.64s is a %s, not a %s", name, kind_names[objs[i].kind],
		    kind_names[k]);
		return NULL;
	}
	return &objs[i];
}

/* Check a new name is usable before doing anything; replies `bad` if not. */
static int name_check(const char *name)
{
	if (!*name || strlen(name) >= MAX_NAME)
		return bad("bad name");
	if (obj_find(name) >= 0)
		return bad("name in use");
	for (int i = 0; i < MAX_OBJ; i++)
		if (objs[i].kind == K_FREE)
			return 0;
	return bad("object table full");
}

static struct obj *obj_new(const char *name, enum kind k)
{
	for (int i = 0; i < MAX_OBJ; i++)
		if (objs[i].kind == K_FREE) {
			memset(&objs[i], 0, sizeof objs[i]);
			objs[i].kind = k;
			objs[i].fd = -1;
			objs[i].parent = -1;
			snprintf(objs[i].name, sizeof objs[i].name, "%s", name);
			return &objs[i];
		}
	return NULL;            /* name_check() ran first */
}

static void obj_free(struct obj *o)
{
	memset(o, 0, sizeof *o);
	o->kind = K_FREE;
	o->fd = -1;
}

/* ---------------------------------------------------------------- faults */

/* vfio-pci raises SIGBUS on an mmap access while the device's memory decode
 * is off (or the BAR is gone); report that instead of dying. */
static sigjmp_buf fault_jb;
static volatile sig_atomic_t fault_armed, fault_sig;

static void on_fault(int sig)
{
	if (fault_armed) {
		fault_armed = 0;
		fault_sig = sig;
		siglongjmp(fault_jb, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static int mem_load(const volatile void *p, unsigned size, uint64_t *v)
{
	if (sigsetjmp(fault_jb, 1))
		return fault_sig;
	fault_armed = 1;
	switch (size) {
	case 1: *v = *(const volatile uint8_t *)p; break;
	case 2: *v = *(const volatile uint16_t *)p; break;
	case 4: *v = *(const volatile uint32_t *)p; break;
	default: *v = *(const volatile uint64_t *)p; break;
	}
	fault_armed = 0;
	return 0;
}

static int mem_store(volatile void *p, unsigned size, uint64_t v)
{
	if (sigsetjmp(fault_jb, 1))
		return fault_sig;
	fault_armed = 1;
	switch (size) {
	case 1: *(volatile uint8_t *)p = (uint8_t)v; break;
	case 2: *(volatile uint16_t *)p = (uint16_t)v; break;
	case 4: *(volatile uint32_t *)p = (uint32_t)v; break;
	default: *(volatile uint64_t *)p = v; break;
	}
	fault_armed = 0;
	return 0;
}

static int fault_reply(int sig)
{
	return err_reply(EFAULT, sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
}

/* ---------------------------------------------------------------- helpers */

static char release[65];
static int kmsg_fd = -1;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
			      .tv_nsec = (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Write a string to a sysfs attribute; returns 0 or an errno. */
static int sysfs_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ssize_t n = write(fd, s, strlen(s));
	int e = n < 0 ? errno : 0;
	close(fd);
	return e;
}

/* basename of a symlink's target into out ("-" if no link). */
static void link_base(const char *path, char *out, size_t n)
{
	char t[PATH_MAX];
	ssize_t k = readlink(path, t, sizeof t - 1);
	if (k < 0) {
		snprintf(out, n, "-");
		return;
	}
	t[k] = 0;
	const char *b = strrchr(t, '/');
	b = b ? b + 1 : t;
	size_t len = strlen(b);
	if (len >= n)
		len = n - 1;    /* names here are short; truncate, never overflow */
	memcpy(out, b, len);
	out[len] = 0;
}

static int read_hex_attr(const char *path, unsigned *v)
{
	char b[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return -1;
	b[n] = 0;
	*v = (unsigned)strtoul(b, NULL, 16);
	return 0;
}

/* Region offset within the device fd (VFIO_DEVICE_GET_REGION_INFO), cached. */
static int region_offset(struct obj *d, uint32_t index, uint64_t *off)
{
	if (index < NREGCACHE && (d->regvalid >> index & 1)) {
		*off = d->regoff[index];
		return 0;
	}
	struct vfio_region_info ri = {.argsz = sizeof ri, .index = index};
	if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0)
		return errno;
	if (index < NREGCACHE) {
		d->regoff[index] = ri.offset;
		d->regvalid |= 1u << index;
	}
	*off = ri.offset;
	return 0;
}

static int parse_access(char *soff, char *ssize, struct obj *m,
			uint64_t *off, unsigned *size)
{
	uint64_t o, s;
	if (parse_num(soff, &o) || parse_num(ssize, &s))
		return bad("bad number");
	if (s != 1 && s != 2 && s != 4 && s != 8)
		return bad("size must be 1, 2, 4 or 8");
	if (o % s)
		return bad("unaligned offset");
	if (o > m->size || s > m->size - o)
		return bad("offset out of range");
	*off = o;
	*size = (unsigned)s;
	return 0;
}

/* ---------------------------------------------------------------- verbs */

typedef int (*handler)(char **a, char *rest);

static int v_hello(char **a, char *rest)
{
	(void)a; (void)rest;
	return okf(AGENT_NAME " %d %s", AGENT_VERSION, release);
}

static int v_echo(char **a, char *rest)
{
	(void)a;
	if (!rest || !*rest)
		return ok0();
	reply_begin("ok ");
	out_str(rest);
	reply_end();
	return 0;
}

static int v_sleep(char **a, char *rest)
{
	uint64_t ms;
	(void)rest;
	if (parse_num(a[0], &ms))
		return bad("bad number");
	sleep_ms(ms);
	return ok0();
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int v_scan(char **a, char *rest)
{
	(void)a; (void)rest;
	DIR *dir = opendir("/sys/bus/pci/devices");
	if (!dir)
		return err_reply(errno, "opendir");
	char *names[1024];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(dir)) && n < 1024)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(dir);
	qsort(names, n, sizeof names[0], cmp_str);   /* stable order for the host */
	reply_begin("ok");
	for (size_t i = 0; i < n; i++) {
		char p[PATH_MAX], real[PATH_MAX], grp[64], drv[64];
		unsigned ven = 0xffff, dev = 0xffff;
		if (!names[i])
			continue;
		snprintf(p, sizeof p, "/sys/bus/pci/devices/%s", names[i]);
		const char *sp = names[i];
		if (realpath(p, real)) {
			sp = real;
			if (strncmp(real, "/sys/devices/", 13) == 0)
				sp = real + 13;
		}
		snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/iommu_group", names[i]);
		link_base(p, grp, sizeof grp);
		snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/driver", names[i]);
		link_base(p, drv, sizeof drv);
		snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/vendor", names[i]);
		read_hex_attr(p, &ven);
		snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/device", names[i]);
		read_hex_attr(p, &dev);
		out_fmt(" %s,%s,%s,%04x:%04x", sp, grp, drv, ven, dev);
		free(names[i]);
	}
	reply_end();
	return 0;
}

/* bind <bdf> <driver|none>: driver_override, then unbind, then drivers_probe. */
static int v_bind(char **a, char *rest)
{
	const char *bdf = a[0], *drv = a[1];
	char p[PATH_MAX], cur[64];
	int e;
	(void)rest;
	if (!safe_component(bdf) || !safe_component(drv))
		return bad("bad bdf or driver name");
	int none = strcmp(drv, "none") == 0;
	snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/driver_override", bdf);
	/* "none" names no driver, so the override keeps every driver off. */
	if ((e = sysfs_write(p, drv)))
		return err_reply(e, "override");
	snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/driver", bdf);
	link_base(p, cur, sizeof cur);
	if (strcmp(cur, "-") != 0 && (none || strcmp(cur, drv) != 0)) {
		snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/driver/unbind", bdf);
		if ((e = sysfs_write(p, bdf)))
			return err_reply(e, "unbind");
	}
	if (!none && (e = sysfs_write("/sys/bus/pci/drivers_probe", bdf)))
		return err_reply(e, "probe");
	snprintf(p, sizeof p, "/sys/bus/pci/devices/%s/driver", bdf);
	link_base(p, cur, sizeof cur);
	return okf("%s", cur);
}

static int v_gopen(char **a, char *rest)
{
	uint64_t n;
	char p[64];
	(void)rest;
	if (name_check(a[0]))
		return -1;
	if (parse_num(a[1], &n))
		return bad("bad number");
	snprintf(p, sizeof p, "/dev/vfio/%llu", (unsigned long long)n);
	int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_reply(errno, "open");
	obj_new(a[0], K_GROUP)->fd = fd;
	return ok0();
}

static int close_obj(char *name, enum kind k)
{
	struct obj *o = obj_get(name, k);
	if (!o)
		return -1;
	if (k == K_MMAP || k == K_BUF) {
		/* On failure the mapping is still there: keep the name. */
		if (munmap(o->addr, o->size) < 0)
			return err_reply(errno, "munmap");
		obj_free(o);
		return ok0();
	}
	int r = close(o->fd);
	int e = errno;
	obj_free(o);            /* Linux releases the fd even when close fails */
	return r < 0 ? err_reply(e, "close") : ok0();
}

static int v_gclose(char **a, char *rest) { (void)rest; return close_obj(a[0], K_GROUP); }
static int v_cclose(char **a, char *rest) { (void)rest; return close_obj(a[0], K_CONTAINER); }
static int v_dclose(char **a, char *rest) { (void)rest; return close_obj(a[0], K_DEVICE); }
static int v_munmap(char **a, char *rest) { (void)rest; return close_obj(a[0], K_MMAP); }
static int v_bfree(char **a, char *rest) { (void)rest; return close_obj(a[0], K_BUF); }

static int v_gstatus(char **a, char *rest)
{
	(void)rest;
	struct obj *g = obj_get(a[0], K_GROUP);
	if (!g)
		return -1;
	struct vfio_group_status st = {.argsz = sizeof st};
	if (ioctl(g->fd, VFIO_GROUP_GET_STATUS, &st) < 0)
		return err_reply(errno, "ioctl");
	return okf("0x%x", st.flags);
}

static int v_copen(char **a, char *rest)
{
	(void)rest;
	if (name_check(a[0]))
		return -1;
	int fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_reply(errno, "open");
	int v = ioctl(fd, VFIO_GET_API_VERSION);
	if (v < 0) {
		int e = errno;
		close(fd);
		return err_reply(e, "ioctl");
	}
	obj_new(a[0], K_CONTAINER)->fd = fd;
	return okf("0x%x", (unsigned)v);
}

static int v_ext(char **a, char *rest)
{
	uint64_t n;
	(void)rest;
	struct obj *c = obj_get(a[0], K_CONTAINER);
	if (!c)
		return -1;
	if (parse_num(a[1], &n))
		return bad("bad number");
	int r = ioctl(c->fd, VFIO_CHECK_EXTENSION, (unsigned long)n);
	if (r < 0)
		return err_reply(errno, "ioctl");
	return okf("0x%x", (unsigned)r);
}

static int v_setc(char **a, char *rest)
{
	(void)rest;
	struct obj *g = obj_get(a[0], K_GROUP);
	if (!g)
		return -1;
	struct obj *c = obj_get(a[1], K_CONTAINER);
	if (!c)
		return -1;
	/* VFIO_GROUP_SET_CONTAINER takes a pointer to the container fd. */
	if (ioctl(g->fd, VFIO_GROUP_SET_CONTAINER, &c->fd) < 0)
		return err_reply(errno, "ioctl");
	return ok0();
}

static int v_unsetc(char **a, char *rest)
{
	(void)rest;
	struct obj *g = obj_get(a[0], K_GROUP);
	if (!g)
		return -1;
	if (ioctl(g->fd, VFIO_GROUP_UNSET_CONTAINER) < 0)
		return err_reply(errno, "ioctl");
	return ok0();
}

static int v_iommu(char **a, char *rest)
{
	uint64_t t;
	(void)rest;
	struct obj *c = obj_get(a[0], K_CONTAINER);
	if (!c)
		return -1;
	if (parse_num(a[1], &t))
		return bad("bad number");
	/* VFIO_SET_IOMMU takes the type by value (VFIO_TYPE1v2_IOMMU = 3). */
	if (ioctl(c->fd, VFIO_SET_IOMMU, (unsigned long)t) < 0)
		return err_reply(errno, "ioctl");
	return ok0();
}

static int v_dopen(char **a, char *rest)
{
	(void)rest;
	if (name_check(a[0]))
		return -1;
	struct obj *g = obj_get(a[1], K_GROUP);
	if (!g)
		return -1;
	/* VFIO_GROUP_GET_DEVICE_FD takes the device name string (the bdf). */
	int fd = ioctl(g->fd, VFIO_GROUP_GET_DEVICE_FD, a[2]);
	if (fd < 0)
		return err_reply(errno, "ioctl");
	struct obj *d = obj_new(a[0], K_DEVICE);
	d->fd = fd;
	d->parent = (int)(g - objs);
	return ok0();
}

static int v_dinfo(char **a, char *rest)
{
	(void)rest;
	struct obj *d = obj_get(a[0], K_DEVICE);
	if (!d)
		return -1;
	struct vfio_device_info di = {.argsz = sizeof di};
	if (ioctl(d->fd, VFIO_DEVICE_GET_INFO, &di) < 0)
		return err_reply(errno, "ioctl");
	return okf("0x%x 0x%x 0x%x", di.flags, di.num_regions, di.num_irqs);
}

static int v_rinfo(char **a, char *rest)
{
	uint64_t idx;
	(void)rest;
	struct obj *d = obj_get(a[0], K_DEVICE);
	if (!d)
		return -1;
	if (parse_num(a[1], &idx) || idx > UINT32_MAX)
		return bad("bad number");
	/* Base struct only: capability chains (argsz growth) are ignored. */
	struct vfio_region_info ri = {.argsz = sizeof ri, .index = (uint32_t)idx};
	if (ioctl(d->fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0)
		return err_reply(errno, "ioctl");
	if (idx < NREGCACHE) {
		d->regoff[idx] = ri.offset;
		d->regvalid |= 1u << idx;
	}
	return okf("0x%x 0x%llx 0x%llx", ri.flags, (unsigned long long)ri.size,
		   (unsigned long long)ri.offset);
}

static int v_pread(char **a, char *rest)
{
	uint64_t idx, off, len, roff;
	unsigned char buf[MAX_PREAD];
	int e;
	(void)rest;
	struct obj *d = obj_get(a[0], K_DEVICE);
	if (!d)
		return -1;
	if (parse_num(a[1], &idx) || parse_num(a[2], &off) || parse_num(a[3], &len)
	    || idx > UINT32_MAX)
		return bad("bad number");
	if (len > MAX_PREAD)
		return bad("len over 4096");
	if ((e = region_offset(d, (uint32_t)idx, &roff)))
		return err_reply(e, "rinfo");
	ssize_t n = pread(d->fd, buf, len, (off_t)(roff + off));
	if (n < 0)
		return err_reply(errno, "pread");
	reply_begin("ok ");
	out_hex(buf, (size_t)n);
	reply_end();
	return 0;
}

static int v_pwrite(char **a, char *rest)
{
	uint64_t idx, off, roff;
	int e;
	(void)rest;
	struct obj *d = obj_get(a[0], K_DEVICE);
	if (!d)
		return -1;
	if (parse_num(a[1], &idx) || parse_num(a[2], &off) || idx > UINT32_MAX)
		return bad("bad number");
	ssize_t len = parse_hex(a[3]);
	if (len < 0)
		return bad("bad hex");
	if ((e = region_offset(d, (uint32_t)idx, &roff)))
		return err_reply(e, "rinfo");
	ssize_t n = pwrite(d->fd, a[3], (size_t)len, (off_t)(roff + off));
	if (n < 0)
		return err_reply(errno, "pwrite");
	return okf("0x%zx", (size_t)n);
}

static int v_mmap(char **a, char *rest)
{
	uint64_t idx, off, len, roff;
	int e;
	(void)rest;
	if (name_check(a[0]))
		return -1;
	struct obj *d = obj_get(a[1], K_DEVICE);
	if (!d)
		return -1;
	if (parse_num(a[2], &idx) || parse_num(a[3], &off) || parse_num(a[4], &len)
	    || idx > UINT32_MAX)
		return bad("bad number");
	if ((e = region_offset(d, (uint32_t)idx, &roff)))
		return err_reply(e, "rinfo");
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd,
		       (off_t)(roff + off));
	if (p == MAP_FAILED)
		return err_reply(errno, "mmap");
	struct obj *m = obj_new(a[0], K_MMAP);
	m->addr = p;
	m->size = len;
	m->parent = (int)(d - objs);
	return ok0();
}

static int v_mread(char **a, char *rest)
{
	uint64_t off, v = 0;
	unsigned size;
	(void)rest;
	struct obj *m = obj_get(a[0], K_MMAP);
	if (!m || parse_access(a[1], a[2], m, &off, &size))
		return -1;
	int sig = mem_load(m->addr + off, size, &v);
	if (sig)
		return fault_reply(sig);
	return okf("0x%llx", (unsigned long long)v);
}

static int v_mwrite(char **a, char *rest)
{
	uint64_t off, v;
	unsigned size;
	(void)rest;
	struct obj *m = obj_get(a[0], K_MMAP);
	if (!m || parse_access(a[1], a[2], m, &off, &size))
		return -1;
	if (parse_num(a[3], &v))
		return bad("bad number");
	int sig = mem_store(m->addr + off, size, v);
	if (sig)
		return fault_reply(sig);
	return ok0();
}

/* mpoll: on timeout the reply is `err ETIMEDOUT <last value>`. */
static int v_mpoll(char **a, char *rest)
{
	uint64_t off, mask, want, tmo, v = 0;
	unsigned size;
	(void)rest;
	struct obj *m = obj_get(a[0], K_MMAP);
	if (!m || parse_access(a[1], a[2], m, &off, &size))
		return -1;
	if (parse_num(a[3], &mask) || parse_num(a[4], &want) || parse_num(a[5], &tmo))
		return bad("bad number");
	uint64_t t0 = now_ms();
	for (;;) {
		int sig = mem_load(m->addr + off, size, &v);
		if (sig)
			return fault_reply(sig);
		uint64_t el = now_ms() - t0;
		if ((v & mask) == want)
			return okf("0x%llx 0x%llx", (unsigned long long)v,
				   (unsigned long long)el);
		if (el >= tmo) {
			char s[32];
			snprintf(s, sizeof s, "0x%llx", (unsigned long long)v);
			return err_reply(ETIMEDOUT, s);
		}
		sleep_ms(1);
	}
}

static int v_reset(char **a, char *rest)
{
	(void)rest;
	struct obj *d = obj_get(a[0], K_DEVICE);
	if (!d)
		return -1;
	if (ioctl(d->fd, VFIO_DEVICE_RESET) < 0)
		return err_reply(errno, "ioctl");
	return ok0();
}

static int v_buf(char **a, char *rest)
{
	uint64_t size;
	struct sysinfo si;
	(void)rest;
	if (name_check(a[0]))
		return -1;
	if (parse_num(a[1], &size))
		return bad("bad number");
	if (size == 0 || size > (UINT64_MAX & ~4095ull))
		return bad("bad size");
	size = (size + 4095) & ~4095ull;
	/* memset (and later DMA pinning) faults every page in; a buffer larger
	 * than free RAM would get the agent, i.e. init, OOM-killed. */
	if (sysinfo(&si) == 0 &&
	    size / si.mem_unit > (si.freeram + si.bufferram) / 2)
		return err_reply(ENOMEM, "avail");
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return err_reply(errno, "mmap");
	memset(p, 0, size);
	struct obj *b = obj_new(a[0], K_BUF);
	b->addr = p;
	b->size = size;
	return ok0();
}

static int v_bfill(char **a, char *rest)
{
	uint64_t off;
	(void)rest;
	struct obj *b = obj_get(a[0], K_BUF);
	if (!b)
		return -1;
	if (parse_num(a[1], &off))
		return bad("bad number");
	ssize_t n = parse_hex(a[2]);
	if (n < 0)
		return bad("bad hex");
	if (off > b->size || (uint64_t)n > b->size - off)
		return bad("range outside buffer");
	memcpy(b->addr + off, a[2], (size_t)n);
	return ok0();
}

/*
 * bclaim <b> <fill>: the ranges of the buffer whose bytes are not <fill>,
 * as "start:end" pairs in hex, each then set back to <fill>. The host fills
 * a container's memory with one byte and asks after each DMA where it
 * changed: only the device can have changed it.
 */
static int v_bclaim(char **a, char *rest)
{
	uint64_t fill;
	(void)rest;
	struct obj *b = obj_get(a[0], K_BUF);
	if (!b)
		return -1;
	if (parse_num(a[1], &fill) || fill > 0xff)
		return bad("bad fill byte");
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	unsigned char *m = (unsigned char *)b->addr;
	reply_begin("ok");
	uint64_t i = 0;
	while (i < b->size) {
		if (m[i] == fill) {
			i++;
			continue;
		}
		uint64_t start = i;
		while (i < b->size && m[i] != fill)
			i++;
		out_fmt(" 0x%llx:0x%llx", (unsigned long long)start, (unsigned long long)i);
		memset(m + start, (int)fill, i - start);
	}
	reply_end();
	return 0;
}

static int v_bread(char **a, char *rest)
{
	uint64_t off, len;
	(void)rest;
	struct obj *b = obj_get(a[0], K_BUF);
	if (!b)
		return -1;
	if (parse_num(a[1], &off) || parse_num(a[2], &len))
		return bad("bad number");
	if (len > MAX_BREAD)
		return bad("len over 65536");
	if (off > b->size || len > b->size - off)
		return bad("range outside buffer");
	reply_begin("ok ");
	/* The device may have written it by DMA: don't let loads be hoisted. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	out_hex(b->addr + off, len);
	reply_end();
	return 0;
}

static int v_map(char **a, char *rest)
{
	uint64_t boff, iova, size;
	uint32_t flags;
	(void)rest;
	struct obj *c = obj_get(a[0], K_CONTAINER);
	if (!c)
		return -1;
	struct obj *b = obj_get(a[1], K_BUF);
	if (!b)
		return -1;
	if (parse_num(a[2], &boff) || parse_num(a[3], &iova) || parse_num(a[4], &size))
		return bad("bad number");
	if (strcmp(a[5], "r") == 0)
		flags = VFIO_DMA_MAP_FLAG_READ;
	else if (strcmp(a[5], "w") == 0)
		flags = VFIO_DMA_MAP_FLAG_WRITE;
	else if (strcmp(a[5], "rw") == 0)
		flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	else if (strcmp(a[5], "-") == 0)
		flags = 0;      /* no permission: lets the host probe the kernel's check */
	else
		return bad("perm must be r, w, rw or -");
	/* Only buffer memory may be handed to a device. */
	if (boff > b->size || size > b->size - boff)
		return bad("range outside buffer");
	struct vfio_iommu_type1_dma_map dm = {
		.argsz = sizeof dm, .flags = flags,
		.vaddr = (uint64_t)(uintptr_t)(b->addr + boff),
		.iova = iova, .size = size,
	};
	if (ioctl(c->fd, VFIO_IOMMU_MAP_DMA, &dm) < 0)
		return err_reply(errno, "ioctl");
	return ok0();
}

static int v_unmap(char **a, char *rest)
{
	uint64_t iova, size;
	(void)rest;
	struct obj *c = obj_get(a[0], K_CONTAINER);
	if (!c)
		return -1;
	if (parse_num(a[1], &iova) || parse_num(a[2], &size))
		return bad("bad number");
	struct vfio_iommu_type1_dma_unmap du = {
		.argsz = sizeof du, .iova = iova, .size = size,
	};
	if (ioctl(c->fd, VFIO_IOMMU_UNMAP_DMA, &du) < 0)
		return err_reply(errno, "ioctl");
	/* The kernel writes back the size actually unmapped. */
	return okf("0x%llx", (unsigned long long)du.size);
}

static void open_kmsg(void)
{
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg_fd >= 0)
		lseek(kmsg_fd, 0, SEEK_END);    /* only records after agent start */
}

/* Percent-encode one record's text so it is a single token. */
static void out_pct(const char *s, size_t n)
{
	static const char hx[] = "0123456789ABCDEF";
	char tmp[512];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%' || c <= ' ' || c >= 0x7f) {
			tmp[k++] = '%';
			tmp[k++] = hx[c >> 4];
			tmp[k++] = hx[c & 15];
		} else {
			tmp[k++] = (char)c;
		}
		if (k > sizeof tmp - 3) {
			out_put(tmp, k);
			k = 0;
		}
	}
	out_put(tmp, k);
}

static int v_kmsg(char **a, char *rest)
{
	char rec[8192];
	(void)a; (void)rest;
	if (kmsg_fd < 0)
		open_kmsg();
	if (kmsg_fd < 0)
		return err_reply(errno, "open");
	reply_begin("ok");
	for (;;) {
		/* One read returns one record: "prio,seq,ts,flags;text\n[ dict]" */
		ssize_t n = read(kmsg_fd, rec, sizeof rec - 1);
		if (n < 0 && (errno == EPIPE || errno == EINTR))
			continue;       /* EPIPE: records overwritten; next read resumes */
		if (n <= 0)
			break;          /* EAGAIN: drained (other errors: stop too) */
		rec[n] = 0;
		char *t = memchr(rec, ';', (size_t)n);
		if (!t)
			continue;
		t++;
		char *nl = strchr(t, '\n');
		size_t len = nl ? (size_t)(nl - t) : strlen(t);
		t[len] = 0;     /* drop the dictionary lines */
		if (!strstr(t, "DMAR") && !strstr(t, "vfio") && !strstr(t, "iommu"))
			continue;
		out_str(" ");
		out_pct(t, len);
	}
	reply_end();
	return 0;
}

struct verb { const char *name; int nargs; handler fn; };
static const struct verb verbs[] = {
	{"hello", 0, v_hello},   {"scan", 0, v_scan},     {"bind", 2, v_bind},
	{"gopen", 2, v_gopen},   {"gclose", 1, v_gclose}, {"gstatus", 1, v_gstatus},
	{"copen", 1, v_copen},   {"cclose", 1, v_cclose}, {"ext", 2, v_ext},
	{"setc", 2, v_setc},     {"unsetc", 1, v_unsetc}, {"iommu", 2, v_iommu},
	{"dopen", 3, v_dopen},   {"dclose", 1, v_dclose}, {"dinfo", 1, v_dinfo},
	{"rinfo", 2, v_rinfo},   {"pread", 4, v_pread},   {"pwrite", 4, v_pwrite},
	{"mmap", 5, v_mmap},     {"munmap", 1, v_munmap}, {"mread", 3, v_mread},
	{"mwrite", 4, v_mwrite}, {"mpoll", 6, v_mpoll},   {"reset", 1, v_reset},
	{"buf", 2, v_buf},       {"bfree", 1, v_bfree},   {"bfill", 3, v_bfill},
	{"bread", 3, v_bread},   {"bclaim", 2, v_bclaim},   {"map", 6, v_map},       {"unmap", 3, v_unmap},
	{"kmsg", 0, v_kmsg},     {"sleep", 1, v_sleep},   {"echo", -1, v_echo},
};

static void handle_line(char *line)
{
	size_t L = strlen(line);
	if (L && line[L - 1] == '\r')
		line[--L] = 0;
	if (!L)
		return;                 /* blank line: no id, nothing to answer */
	char *sp = strchr(line, ' ');
	cur_id = line;
	if (!sp) {
		bad("missing verb");
		return;
	}
	*sp = 0;
	char *verb = sp + 1;
	char *rest = strchr(verb, ' ');
	if (rest)
		*rest++ = 0;
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
		if (strcmp(verbs[i].name, verb) != 0)
			continue;
		if (verbs[i].nargs < 0) {
			verbs[i].fn(NULL, rest);
			return;
		}
		char *argv[MAX_ARGS + 1];
		int n = 0;
		char *p = rest;
		while (p && n <= MAX_ARGS) {
			argv[n++] = p;
			p = strchr(p, ' ');
			if (p)
				*p++ = 0;
		}
		if (n != verbs[i].nargs) {
			bad("%s takes %d args, got %d", verb, verbs[i].nargs, n);
			return;
		}
		verbs[i].fn(argv, NULL);
		return;
	}
	bad("unknown verb %.64s", verb);
}

/* ---------------------------------------------------------------- channel */

/* Find /sys/class/virtio-ports/<port>/name == want and open /dev/<port>. */
static int open_port(const char *want)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	if (!d)
		return -1;
	struct dirent *de;
	int fd = -1;
	while ((de = readdir(d))) {
		char p[PATH_MAX], name[256];
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", de->d_name);
		int nf = open(p, O_RDONLY | O_CLOEXEC);
		if (nf < 0)
			continue;
		ssize_t n = read(nf, name, sizeof name - 1);
		close(nf);
		if (n <= 0)
			continue;
		name[n] = 0;
		name[strcspn(name, "\n")] = 0;
		if (strcmp(name, want) != 0)
			continue;
		snprintf(p, sizeof p, "/dev/%s", de->d_name);
		fd = open(p, O_RDWR | O_CLOEXEC);
		break;
	}
	closedir(d);
	return fd;
}

static char in_buf[MAX_LINE + 1];
static size_t in_len;
static int discarding;          /* inside an over-long line */
static char discard_id[MAX_NAME];

/* Handle every complete line in in_buf; keeps a trailing partial line. */
static void process_input(void)
{
	size_t start = 0;
	for (;;) {
		char *nl = memchr(in_buf + start, '\n', in_len - start);
		if (!nl)
			break;
		*nl = 0;
		if (discarding) {
			discarding = 0;
			cur_id = discard_id;
			bad("line too long");
		} else {
			handle_line(in_buf + start);
		}
		start = (size_t)(nl - in_buf) + 1;
	}
	memmove(in_buf, in_buf + start, in_len - start);
	in_len -= start;
	if (in_len == sizeof in_buf) {
		/* No '\n' within MAX_LINE bytes: drop the line, answer when it ends. */
		if (!discarding) {
			size_t k = strcspn(in_buf, " \n");
			if (k >= sizeof discard_id)
				k = sizeof discard_id - 1;
			memcpy(discard_id, in_buf, k);
			discard_id[k] = 0;
			discarding = 1;
		}
		in_len = 0;
	}
}

int main(int argc, char **argv)
{
	const char *port = argc > 1 ? argv[1] : "isoroot.agent";
	struct utsname u;
	struct sigaction sa;

	if (uname(&u) == 0)
		snprintf(release, sizeof release, "%s", u.release);
	else
		snprintf(release, sizeof release, "unknown");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fault;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	open_kmsg();

	/* The port's device node may appear a little after the agent starts. */
	for (int i = 0; i < 100 && chan_fd < 0; i++) {
		chan_fd = open_port(port);
		if (chan_fd < 0)
			sleep_ms(100);
	}
	if (chan_fd < 0) {
		fprintf(stderr, AGENT_NAME ": no virtio port named %s\n", port);
		return 1;
	}
	fprintf(stderr, AGENT_NAME ": port %s open\n", port);
	out_fmt("ready " AGENT_NAME " %d %s\n", AGENT_VERSION, release);
	out_flush();

	for (;;) {
		process_input();
		/* Flush before waiting for input: pipelined requests that arrived
		 * together get their replies in one write, and a host waiting for
		 * replies is never left hanging. */
		if (out_len)
			out_flush();
		struct pollfd p = {.fd = chan_fd, .events = POLLIN};
		int r = poll(&p, 1, -1);
		if (r < 0 && errno != EINTR)
			sleep_ms(10);
		if (r <= 0)
			continue;
		ssize_t n = read(chan_fd, in_buf + in_len, sizeof in_buf - in_len);
		if (n > 0) {
			in_len += (size_t)n;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			/* EOF: host not connected (virtio_console polls HUP then).
			 * A partial line from that connection is meaningless. */
			in_len = 0;
			discarding = 0;
			sleep_ms(10);
		}
	}
}
