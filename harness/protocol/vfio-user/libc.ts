/**
 * The few libc calls the vfio-user transport needs, bound with koffi.
 * Node's net sockets cannot carry SCM_RIGHTS (unix(7)), so the socket
 * lifecycle of fd-socket.ts goes straight to libc. Target: Linux x86_64,
 * glibc; the constants and struct layouts below are that ABI's.
 *
 * Every pointer parameter is `void *`: koffi then hands the C function the
 * Buffer's own memory (no copy, no byte-order conversion), so a Buffer works
 * both as input and as output, and `koffi.address()` of a Buffer is the
 * address that will be seen by the kernel (used inside struct msghdr).
 */
import koffi from 'koffi';
import { getSystemErrorMap } from 'node:util';

const lib = koffi.load('libc.so.6');

/** A koffi-bound function with its typed signature, plus the `.async` form (runs in a libuv worker). */
type Bound<F extends (...args: never[]) => unknown> = F & {
  async: (...args: [...Parameters<F>, (err: unknown, result: ReturnType<F>) => void]) => void;
};
const fn = <F extends (...args: never[]) => unknown>(decl: string): Bound<F> => lib.func(decl) as unknown as Bound<F>;

type Ptr = Buffer | bigint | null;

export const socket = fn<(domain: number, type: number, protocol: number) => number>('int socket(int domain, int type, int protocol)');
export const socketpair = fn<(domain: number, type: number, protocol: number, sv: Buffer) => number>(
  'int socketpair(int domain, int type, int protocol, void *sv)',
);
export const bind = fn<(fd: number, addr: Buffer, len: number) => number>('int bind(int fd, void *addr, uint32_t len)');
export const listen = fn<(fd: number, backlog: number) => number>('int listen(int fd, int backlog)');
export const accept4 = fn<(fd: number, addr: Ptr, len: Ptr, flags: number) => number>('int accept4(int fd, void *addr, void *len, int flags)');
export const connect = fn<(fd: number, addr: Buffer, len: number) => number>('int connect(int fd, void *addr, uint32_t len)');
export const sendmsg = fn<(fd: number, msg: Buffer, flags: number) => number>('intptr_t sendmsg(int fd, void *msg, int flags)');
export const recvmsg = fn<(fd: number, msg: Buffer, flags: number) => number>('intptr_t recvmsg(int fd, void *msg, int flags)');
export const poll = fn<(fds: Buffer, nfds: number, timeout: number) => number>('int poll(void *fds, unsigned long nfds, int timeout)');
export const read = fn<(fd: number, buf: Buffer, n: number) => number>('intptr_t read(int fd, void *buf, size_t n)');
export const write = fn<(fd: number, buf: Buffer, n: number) => number>('intptr_t write(int fd, void *buf, size_t n)');
export const close = fn<(fd: number) => number>('int close(int fd)');
export const dup = fn<(fd: number) => number>('int dup(int fd)');
export const memfd_create = fn<(name: string, flags: number) => number>('int memfd_create(const char *name, unsigned int flags)');
export const eventfd = fn<(initval: number, flags: number) => number>('int eventfd(unsigned int initval, int flags)');
export const ftruncate = fn<(fd: number, length: number) => number>('int ftruncate(int fd, int64_t length)');
export const unlink = fn<(path: string) => number>('int unlink(const char *path)');
export const getsockopt = fn<(fd: number, level: number, name: number, value: Buffer, len: Buffer) => number>(
  'int getsockopt(int fd, int level, int name, void *value, void *len)',
);

// fcntl(2) is variadic: koffi wants the type of each extra argument at the call.
const fcntlV = lib.func('int fcntl(int fd, int cmd, ...)');
export const fcntlInt = (fd: number, cmd: number, arg: number): number => fcntlV(fd, cmd, 'int', arg) as number;

/** errno of the last call on this thread; inside an `.async` callback, koffi restores the worker's errno (koffi 3.2+). */
export const errno = (): number => koffi.errno();
/** Address of a Buffer's first byte, as the kernel will see it (for pointers inside structs). */
export const address = (b: Buffer): bigint => koffi.address(b);

// --- Constants (x86_64 Linux: <bits/socket.h>, <poll.h>, <sys/eventfd.h>, <linux/memfd.h>, <fcntl.h>) ---
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_ERROR = 4;
export const SCM_RIGHTS = 1;
export const MSG_CTRUNC = 0x8;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;
export const MFD_CLOEXEC = 0x1;
export const F_DUPFD_CLOEXEC = 1030;

// --- Struct layouts (x86_64 LP64) ---
/** struct msghdr: name@0, namelen@8, iov@16, iovlen@24, control@32, controllen@40, flags@48; 56 bytes. */
export const MSGHDR = { size: 56, name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48 } as const;
/** struct iovec: base@0, len@8; 16 bytes. */
export const IOVEC_SIZE = 16;
/** struct cmsghdr: len (size_t)@0, level@8, type@12, data@16 (cmsg(3)). */
export const CMSGHDR_SIZE = 16;
export const CMSG_ALIGN = (n: number): number => (n + 7) & ~7;
export const CMSG_LEN = (n: number): number => CMSGHDR_SIZE + n;
export const CMSG_SPACE = (n: number): number => CMSGHDR_SIZE + CMSG_ALIGN(n);
/** struct pollfd: fd i32, events i16, revents i16; 8 bytes (poll(2)). */
export const POLLFD_SIZE = 8;
/** struct sockaddr_un: family u16, path[108] (unix(7)). */
export const SUN_PATH_MAX = 108;

// --- Errors ---
const errnoNames = new Map<number, string>(Object.entries(koffi.os.errno).map(([name, n]) => [n, name]));

/** An Error from a failed libc call; `code` is the errno name (ENOENT, EAGAIN...). */
export class ErrnoError extends Error {
  readonly code: string;
  constructor(
    readonly syscall: string,
    readonly errno: number,
    context?: string,
  ) {
    const [name, text] = getSystemErrorMap().get(-errno) ?? [errnoNames.get(errno) ?? `errno ${errno}`, 'unknown error'];
    super(`${syscall}${context ? `(${context})` : ''}: ${name} (${text})`);
    this.name = 'ErrnoError';
    this.code = name;
  }
}

/** Throws an ErrnoError (reading errno at once) when a libc call returned -1; otherwise returns its result. */
export function check(syscall: string, r: number, context?: string): number {
  if (r < 0) throw new ErrnoError(syscall, koffi.errno(), context);
  return r;
}

/** errno numbers by name (EAGAIN, EINTR, ...), as koffi knows them for this platform. */
export const E: Readonly<Record<string, number>> = koffi.os.errno;

// --- fd readiness in Node's event loop ---

/** What a poll handle watches, or reports (uv_poll_t's UV_READABLE, UV_WRITABLE, UV_DISCONNECT). */
export interface PollEvents {
  readable: boolean;
  writable: boolean;
  disconnect: boolean;
}

/** The handle koffi.node.poll returns, with the callback as koffi really calls it (see FdWatch). */
interface KoffiPollHandle {
  start(events: Partial<PollEvents>, callback: (status: number, events: PollEvents) => void): void;
  stop(): void;
  close(): void;
}
const koffiPoll = koffi.node.poll as unknown as (
  fd: number,
  events: Partial<PollEvents>,
  callback: (status: number, events: PollEvents) => void,
) => KoffiPollHandle | null;

/**
 * Readiness of one fd in Node's own event loop: koffi.node.poll, a libuv
 * uv_poll_t (epoll, level-triggered) whose callback runs on the main thread
 * in the loop's poll phase. Like any libuv handle, it keeps the event loop
 * alive while it is started; stopped or closed, it does not.
 *
 * What koffi 3.3.4 does not say in its typings:
 * - The callback gets (status, events), not (events): status is 0, or a
 *   negative libuv errno; EPOLLERR on the fd comes as UV_EBADF (-EBADF),
 *   and libuv has then already stopped the handle (start it again to go on).
 * - It is called outside any JS callback scope, from a module built without
 *   C++ exceptions: a JS exception escaping it would stay pending in koffi's
 *   napi env and surface at some unrelated later koffi call. So the callback
 *   is guarded here and an exception is rethrown from process.nextTick, an
 *   uncaught exception like one from any I/O callback. (Node drains the tick
 *   and microtask queues in the check phase of the same loop iteration.)
 * - libuv allows one handle per fd per loop (UV_EEXIST otherwise), and a
 *   watched fd must not be closed: close() (or stop()) the handle first, which
 *   takes the fd out of epoll at once, so the fd can then be closed and its
 *   number reused.
 */
export class FdWatch {
  /** Started or stopped handles not closed yet: kept reachable here, so no GC finalizer ever closes one behind our back. */
  private static readonly open = new Set<FdWatch>();
  private handle: KoffiPollHandle | null;
  private readonly callback: (status: number, events: PollEvents) => void;

  constructor(
    readonly fd: number,
    events: Partial<PollEvents>,
    onEvent: (status: number, events: PollEvents) => void,
  ) {
    this.callback = (status, ev) => {
      try {
        onEvent(status, ev);
      } catch (e) {
        process.nextTick(() => {
          throw e;
        });
      }
    };
    const h = koffiPoll(fd, events, this.callback);
    if (h === null) throw new Error(`koffi.node.poll(${fd}) failed`);
    this.handle = h;
    FdWatch.open.add(this);
  }

  /** Watches these events from now on (uv_poll_start again; also restarts a stopped handle). */
  set(events: Partial<PollEvents>): void {
    this.handle?.start(events, this.callback);
  }

  /** Watches nothing until the next set(); the handle then no longer holds the event loop. */
  stop(): void {
    this.handle?.stop();
  }

  /** Stops and closes the handle (its memory goes in a later loop iteration); the fd may be closed right after. Idempotent. */
  close(): void {
    if (this.handle === null) return;
    this.handle.close();
    this.handle = null;
    FdWatch.open.delete(this);
  }
}
