/**
 * Unix stream sockets that carry file descriptors (SCM_RIGHTS, unix(7)),
 * which vfio-user needs for DMA regions (memfd) and interrupts (eventfd).
 * Node's net module cannot send or receive ancillary data, so every socket
 * here is a raw fd driven through libc (libc.ts).
 *
 * Event loop integration: one reactor per process keeps at most one
 * koffi `.async` call of poll(2) in flight (it runs in a libuv worker
 * thread), over every open socket and listener plus a wake-up eventfd(2).
 * When it returns, the main thread does the nonblocking recvmsg / accept4 /
 * sendmsg work on the ready fds, delivers callbacks, and arms a new poll.
 * A change to the fd set or to POLLOUT interest while a poll is in flight
 * writes the wake-up eventfd so the poll returns and is re-armed. With
 * nothing open, no poll is in flight, so the process can exit on its own.
 */
import { lstatSync } from 'node:fs';
import * as c from './libc.ts';

/** fds accepted in one recvmsg; more than this sets MSG_CTRUNC (cmsg(3)) and the connection fails. */
const MAX_RECV_FDS = 32;
/** The kernel's limit on fds in one SCM_RIGHTS message (SCM_MAX_FD, unix(7)). */
const SCM_MAX_FD = 253;
/** Reads (or accepts) per fd per wake, so one busy peer cannot starve the others. */
const READS_PER_WAKE = 64;
const RECV_BUF_SIZE = 256 * 1024;
const LISTEN_BACKLOG = 128;

// ---------------------------------------------------------------------------
// sendmsg / recvmsg with SCM_RIGHTS. The scratch structs below are reused by
// every (synchronous, main-thread) call; Buffers never move, so the addresses
// written into msghdr/iovec stay valid for the duration of the call.

const msghdr = Buffer.alloc(c.MSGHDR.size);
const iovec = Buffer.alloc(c.IOVEC_SIZE);
const recvData = Buffer.alloc(RECV_BUF_SIZE);
const recvControl = Buffer.alloc(c.CMSG_SPACE(4 * MAX_RECV_FDS));
const sendControl = Buffer.alloc(c.CMSG_SPACE(4 * SCM_MAX_FD));

function fillMsghdr(data: Buffer, control: Buffer | null, controlLen: number): void {
  msghdr.fill(0);
  iovec.writeBigUInt64LE(c.address(data), 0);
  iovec.writeBigUInt64LE(BigInt(data.length), 8);
  msghdr.writeBigUInt64LE(c.address(iovec), c.MSGHDR.iov);
  msghdr.writeBigUInt64LE(1n, c.MSGHDR.iovlen);
  if (control !== null) {
    msghdr.writeBigUInt64LE(c.address(control), c.MSGHDR.control);
    msghdr.writeBigUInt64LE(BigInt(controlLen), c.MSGHDR.controllen);
  }
}

/** One nonblocking sendmsg; fds ride in one SCM_RIGHTS cmsg. Returns bytes sent, or -errno. */
function sendOnce(fd: number, data: Buffer, fds: readonly number[]): number {
  let controlLen = 0;
  if (fds.length > 0) {
    // cmsg(3): cmsg_len = CMSG_LEN(payload); msg_controllen = CMSG_SPACE(payload).
    controlLen = c.CMSG_SPACE(4 * fds.length);
    sendControl.fill(0, 0, controlLen);
    sendControl.writeBigUInt64LE(BigInt(c.CMSG_LEN(4 * fds.length)), 0);
    sendControl.writeInt32LE(c.SOL_SOCKET, 8);
    sendControl.writeInt32LE(c.SCM_RIGHTS, 12);
    fds.forEach((f, i) => sendControl.writeInt32LE(f, c.CMSGHDR_SIZE + 4 * i));
  }
  fillMsghdr(data, controlLen > 0 ? sendControl : null, controlLen);
  // MSG_NOSIGNAL: a closed peer gives EPIPE instead of a SIGPIPE that kills node (send(2)).
  const r = c.sendmsg(fd, msghdr, c.MSG_DONTWAIT | c.MSG_NOSIGNAL);
  return r < 0 ? -c.errno() : r;
}

type Received = { n: number; fds: number[]; truncated: boolean } | { errno: number };

/** One nonblocking recvmsg; received fds get FD_CLOEXEC at once (MSG_CMSG_CLOEXEC, unix(7)). */
function recvOnce(fd: number): Received {
  fillMsghdr(recvData, recvControl, recvControl.length);
  const r = c.recvmsg(fd, msghdr, c.MSG_DONTWAIT | c.MSG_CMSG_CLOEXEC);
  if (r < 0) return { errno: c.errno() };
  const controlLen = Number(msghdr.readBigUInt64LE(c.MSGHDR.controllen));
  const truncated = (msghdr.readInt32LE(c.MSGHDR.flags) & c.MSG_CTRUNC) !== 0;
  const fds: number[] = [];
  // Walk the cmsgs as CMSG_FIRSTHDR/CMSG_NXTHDR do (cmsg(3)).
  for (let off = 0; off + c.CMSGHDR_SIZE <= controlLen; ) {
    const len = Number(recvControl.readBigUInt64LE(off));
    if (len < c.CMSGHDR_SIZE || off + len > controlLen) break;
    if (recvControl.readInt32LE(off + 8) === c.SOL_SOCKET && recvControl.readInt32LE(off + 12) === c.SCM_RIGHTS) {
      for (let p = off + c.CMSGHDR_SIZE; p + 4 <= off + len; p += 4) fds.push(recvControl.readInt32LE(p));
    }
    off += c.CMSG_ALIGN(len);
  }
  return { n: r, fds, truncated };
}

function sockaddrUn(path: string, syscall: string): { addr: Buffer; len: number } {
  const p = Buffer.from(path, 'utf8');
  // sun_path holds the path and its NUL (unix(7)).
  if (p.length === 0 || p.length >= c.SUN_PATH_MAX) throw new c.ErrnoError(syscall, c.E.ENAMETOOLONG, path);
  const addr = Buffer.alloc(2 + c.SUN_PATH_MAX);
  addr.writeUInt16LE(c.AF_UNIX, 0);
  p.copy(addr, 2);
  return { addr, len: 2 + p.length + 1 };
}

/** fcntl(F_DUPFD_CLOEXEC): a private copy of an fd, so a queued send survives the caller closing its own. */
function dupCloexec(fd: number): number {
  return c.check('fcntl(F_DUPFD_CLOEXEC)', c.fcntlInt(fd, c.F_DUPFD_CLOEXEC, 0), String(fd));
}

// ---------------------------------------------------------------------------
// The reactor.

interface Pollable {
  readonly fd: number;
  /** poll(2) events wanted now. */
  events(): number;
  /** Handles revents from the last poll (main thread). */
  ready(revents: number): void;
  /** Ends the handle because the reactor itself failed. */
  fail(err: Error): void;
}

class Reactor {
  private readonly members = new Set<Pollable>();
  /** The members in the in-flight poll, in pollfd order after the wake-up fd. */
  private armed: Pollable[] = [];
  private armedSet = new Set<Pollable>();
  /** fds of members removed while their poll was in flight: closed when it returns, so no fd number is reused under it. */
  private deferredClose: number[] = [];
  private wakeFd = -1;
  private inFlight = false;
  private woken = false;
  private dispatching = false;
  private armQueued = false;
  private pollfds = Buffer.alloc(c.POLLFD_SIZE * 8);

  add(p: Pollable): void {
    this.members.add(p);
    this.changed();
  }

  /** Forgets p and closes its fd (now, or when the in-flight poll returns). */
  remove(p: Pollable): void {
    if (!this.members.delete(p)) return;
    if (this.inFlight && this.armedSet.has(p)) this.deferredClose.push(p.fd);
    else c.close(p.fd);
    this.changed();
  }

  /** The fd set or an interest changed: get a poll armed with the new set. */
  changed(): void {
    if (this.inFlight) {
      if (!this.woken) {
        this.woken = true;
        eventfdSignal(this.wakeFd);
      }
    } else if (!this.dispatching && !this.armQueued) {
      // Batch the changes of this tick (e.g. both ends of a pair) into one arm.
      this.armQueued = true;
      queueMicrotask(() => {
        this.armQueued = false;
        this.arm();
      });
    }
  }

  private arm(): void {
    if (this.inFlight) return;
    this.closeDeferred();
    if (this.members.size === 0) return; // nothing to wait for: no pending work holds the event loop
    if (this.wakeFd < 0) this.wakeFd = eventfdCreate();
    const n = this.members.size + 1;
    // Not in flight, so the previous buffer is free to reuse.
    if (this.pollfds.length < n * c.POLLFD_SIZE) this.pollfds = Buffer.alloc(n * 2 * c.POLLFD_SIZE);
    const pfd = this.pollfds;
    pfd.fill(0, 0, n * c.POLLFD_SIZE);
    pfd.writeInt32LE(this.wakeFd, 0);
    pfd.writeInt16LE(c.POLLIN, 4);
    this.armed = [...this.members];
    this.armedSet = new Set(this.armed);
    this.armed.forEach((p, i) => {
      pfd.writeInt32LE(p.fd, (i + 1) * c.POLLFD_SIZE);
      pfd.writeInt16LE(p.events(), (i + 1) * c.POLLFD_SIZE + 4);
    });
    this.inFlight = true;
    this.woken = false;
    // The closure holds pfd, so its memory lives until the worker's poll has returned.
    c.poll.async(pfd, n, -1, (err, r) => this.done(pfd, n, err, r, c.errno()));
  }

  private done(pfd: Buffer, n: number, err: unknown, r: number, errno: number): void {
    const armed = this.armed;
    this.inFlight = false;
    this.armed = [];
    this.armedSet = new Set();
    this.closeDeferred();
    if (this.woken || (r > 0 && pfd.readInt16LE(6) !== 0)) readCounter(this.wakeFd);
    this.dispatching = true;
    let thrown: { e: unknown } | undefined;
    try {
      if (err != null || r < 0) {
        if (err == null && errno === c.E.EINTR) {
          // interrupted: simply re-arm
        } else {
          const e = err instanceof Error ? err : new c.ErrnoError('poll', errno);
          for (const p of [...this.members]) p.fail(e);
        }
      } else if (r > 0) {
        for (let i = 1; i < n; i++) {
          const revents = pfd.readInt16LE(i * c.POLLFD_SIZE + 6);
          const p = armed[i - 1];
          if (revents === 0 || p === undefined || !this.members.has(p)) continue;
          try {
            p.ready(revents);
          } catch (e) {
            thrown ??= { e };
          }
        }
      }
    } finally {
      this.dispatching = false;
    }
    this.arm();
    // A callback threw: report it like any exception from an I/O callback, after the reactor is re-armed.
    if (thrown !== undefined) {
      const { e } = thrown;
      process.nextTick(() => {
        throw e;
      });
    }
  }

  private closeDeferred(): void {
    for (const fd of this.deferredClose.splice(0)) c.close(fd);
  }
}

const reactor = new Reactor();

// ---------------------------------------------------------------------------

interface Queued {
  data: Buffer;
  off: number;
  /** Our dups of fds still to send with data[0]; closed once sent or dropped. */
  fds: number[];
}

/** Blocks in poll(2) on one fd until `events` (or an error or hang-up); false on a timeout. */
function waitFor(fd: number, events: number, timeoutMs: number): boolean {
  const pfd = Buffer.alloc(8); // struct pollfd: int fd, short events, short revents
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(events, 4);
  for (;;) {
    const n = c.poll(pfd, 1, Math.max(1, Math.ceil(timeoutMs)));
    if (n > 0) return true;
    if (n === 0) return false;
    if (c.errno() !== c.E.EINTR) return false;
  }
}

export class FdSocket {
  /** Connects to a Unix stream socket path. Rejects with an Error naming the path and errno text if it fails (ENOENT, ECONNREFUSED...). */
  static connect(path: string): Promise<FdSocket> {
    return new Promise((resolve, reject) => {
      let sa: { addr: Buffer; len: number };
      let fd: number;
      try {
        sa = sockaddrUn(path, 'connect');
        fd = c.check('socket', c.socket(c.AF_UNIX, c.SOCK_STREAM | c.SOCK_NONBLOCK | c.SOCK_CLOEXEC, 0));
      } catch (e) {
        reject(e);
        return;
      }
      const started = Date.now();
      const attempt = (): void => {
        if (c.connect(fd, sa.addr, sa.len) === 0) return resolve(new FdSocket(fd));
        const e = c.errno();
        // A nonblocking AF_UNIX connect either completes at once or fails with EAGAIN
        // when the listener's backlog is full (unix(7)); retry that for a while.
        if ((e === c.E.EAGAIN || e === c.E.EINTR) && Date.now() - started < 10_000) {
          setTimeout(attempt, 5);
          return;
        }
        c.close(fd);
        reject(new c.ErrnoError('connect', e, path));
      };
      attempt();
    });
  }

  /** A connected pair (socketpair AF_UNIX SOCK_STREAM), for tests and the proxy. */
  static pair(): [FdSocket, FdSocket] {
    const sv = Buffer.alloc(8);
    c.check('socketpair', c.socketpair(c.AF_UNIX, c.SOCK_STREAM | c.SOCK_NONBLOCK | c.SOCK_CLOEXEC, 0, sv));
    return [new FdSocket(sv.readInt32LE(0)), new FdSocket(sv.readInt32LE(4))];
  }

  /** Called for each chunk read, with the file descriptors that arrived with it (SCM_RIGHTS). Ownership of the fds passes to the callee. */
  onData: (chunk: Buffer, fds: number[]) => void = (_chunk, fds) => fds.forEach((f) => c.close(f));
  /** Called once when the peer closes or an error ends the connection (err undefined on an orderly EOF). */
  onClose: (err?: Error) => void = () => {};

  private queue: Queued[] = [];
  private queuedBytes = 0;
  private closed = false;

  /** What the reactor sees of this socket; kept off the public surface. */
  private readonly io: Pollable;

  /** Takes ownership of a connected AF_UNIX stream socket fd (every call on it is MSG_DONTWAIT). */
  constructor(readonly fd: number) {
    this.io = {
      fd,
      events: () => c.POLLIN | (this.queue.length > 0 ? c.POLLOUT : 0),
      ready: (revents) => this.ready(revents),
      fail: (err) => this.finish(err),
    };
    reactor.add(this.io);
  }

  /** Bytes still queued. */
  get pending(): number {
    return this.queuedBytes;
  }

  /**
   * Queues bytes to send; the fds (not closed by send; caller keeps ownership) go as SCM_RIGHTS
   * with the first byte. Never blocks: nonblocking sendmsg, the rest queued and flushed on POLLOUT.
   * Sending after close is a no-op.
   */
  send(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.closed) return;
    if (fds.length > SCM_MAX_FD) throw new RangeError(`send: ${fds.length} fds, at most ${SCM_MAX_FD} per message`);
    if (bytes.length === 0) {
      // On a stream socket, ancillary data needs at least one byte to travel with (unix(7)).
      if (fds.length > 0) throw new RangeError('send: file descriptors need at least one byte of data');
      return;
    }
    const data = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let off = 0;
    let fdsSent = fds.length === 0;
    if (this.queue.length === 0) {
      for (;;) {
        const r = sendOnce(this.fd, data, fds);
        if (r >= 0) {
          off = r;
          fdsSent = true;
          break;
        }
        if (-r === c.E.EINTR) continue;
        if (-r === c.E.EAGAIN) break;
        this.finish(new c.ErrnoError('sendmsg', -r)); // EPIPE, ECONNRESET...: the connection is over
        return;
      }
      if (off === data.length) return;
    }
    // Keep a private copy of the rest: the caller may reuse its buffer and close its fds.
    const wasIdle = this.queue.length === 0;
    this.queue.push({ data: Buffer.from(data.subarray(off)), off: 0, fds: fdsSent ? [] : fds.map(dupCloexec) });
    this.queuedBytes += data.length - off;
    if (wasIdle) reactor.changed(); // now wants POLLOUT
  }

  /** Closes the socket; queued bytes are dropped. Idempotent; onClose is called once (from a microtask). */
  close(): void {
    this.finish(undefined);
  }

  /**
   * Blocks until every queued byte is sent (poll(2) for POLLOUT): for a
   * synchronous exchange with a peer in another process. False on a
   * timeout or a closed connection.
   */
  flushSync(timeoutMs: number): boolean {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && this.queue.length > 0) {
      const left = deadline - Date.now();
      if (left <= 0 || !waitFor(this.fd, c.POLLOUT, left)) return false;
      this.flush();
    }
    return !this.closed;
  }

  /**
   * Blocks until bytes arrive (poll(2) for POLLIN, then recvmsg): the chunk
   * with its fds, 'eof' when the peer closed, null on a timeout or an
   * error (which closes the socket). The reactor's own reads of this
   * socket then find nothing, which they take in their stride (EAGAIN).
   */
  recvSync(timeoutMs: number): { chunk: Buffer; fds: number[] } | 'eof' | null {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const got = recvOnce(this.fd);
      if ('errno' in got) {
        if (got.errno === c.E.EINTR) continue;
        if (got.errno !== c.E.EAGAIN) {
          this.finish(new c.ErrnoError('recvmsg', got.errno));
          return null;
        }
        const left = deadline - Date.now();
        if (left <= 0 || !waitFor(this.fd, c.POLLIN, left)) return null;
        continue;
      }
      if (got.truncated) {
        got.fds.forEach((f) => c.close(f));
        this.finish(new Error(`recvmsg: MSG_CTRUNC, more than ${MAX_RECV_FDS} fds in one message; fds were lost`));
        return null;
      }
      if (got.n === 0) {
        this.finish(undefined);
        return 'eof';
      }
      return { chunk: Buffer.from(recvData.subarray(0, got.n)), fds: got.fds };
    }
    return null;
  }

  private ready(revents: number): void {
    if (revents & c.POLLNVAL) return this.finish(new c.ErrnoError('poll', c.E.EBADF, String(this.fd)));
    // Read first: on a hang-up, pending data and then the EOF come before any EPIPE on the write side.
    if (revents & (c.POLLIN | c.POLLHUP | c.POLLERR)) this.readSome();
    if (!this.closed && this.queue.length > 0 && revents & (c.POLLOUT | c.POLLERR | c.POLLHUP)) this.flush();
  }

  private readSome(): void {
    for (let i = 0; i < READS_PER_WAKE && !this.closed; i++) {
      const got = recvOnce(this.fd);
      if ('errno' in got) {
        if (got.errno === c.E.EAGAIN) return;
        if (got.errno === c.E.EINTR) continue;
        return this.finish(new c.ErrnoError('recvmsg', got.errno)); // ECONNRESET...
      }
      if (got.truncated) {
        got.fds.forEach((f) => c.close(f));
        return this.finish(new Error(`recvmsg: MSG_CTRUNC, more than ${MAX_RECV_FDS} fds in one message; fds were lost`));
      }
      if (got.n === 0) return this.finish(undefined); // orderly EOF
      this.onData(Buffer.from(recvData.subarray(0, got.n)), got.fds);
    }
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      const r = sendOnce(this.fd, head.data.subarray(head.off), head.fds);
      if (r < 0) {
        if (-r === c.E.EINTR) continue;
        if (-r === c.E.EAGAIN) return;
        return this.finish(new c.ErrnoError('sendmsg', -r));
      }
      // The kernel holds its own references to fds in flight; ours can go.
      head.fds.splice(0).forEach((f) => c.close(f));
      head.off += r;
      this.queuedBytes -= r;
      if (head.off === head.data.length) this.queue.shift();
    }
  }

  private finish(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    for (const q of this.queue) q.fds.forEach((f) => c.close(f));
    this.queue = [];
    this.queuedBytes = 0;
    reactor.remove(this.io);
    queueMicrotask(() => this.onClose(err));
  }
}

export class FdServer {
  /** Listens on a Unix stream socket path (unlinks a stale socket file first). */
  static listen(path: string, onConnection: (s: FdSocket) => void): FdServer {
    const sa = sockaddrUn(path, 'bind');
    removeStaleSocket(path, sa);
    const fd = c.check('socket', c.socket(c.AF_UNIX, c.SOCK_STREAM | c.SOCK_NONBLOCK | c.SOCK_CLOEXEC, 0));
    try {
      c.check('bind', c.bind(fd, sa.addr, sa.len), path);
      c.check('listen', c.listen(fd, LISTEN_BACKLOG), path);
    } catch (e) {
      c.close(fd);
      throw e;
    }
    return new FdServer(fd, path, onConnection);
  }

  private closed = false;
  private paused = false;
  private readonly io: Pollable;

  private constructor(
    readonly fd: number,
    readonly path: string,
    private readonly onConnection: (s: FdSocket) => void,
  ) {
    this.io = { fd, events: () => (this.paused ? 0 : c.POLLIN), ready: () => this.acceptSome(), fail: () => this.close() };
    reactor.add(this.io);
  }

  /** Stops listening and unlinks the path. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    reactor.remove(this.io);
    if (c.unlink(this.path) < 0 && c.errno() !== c.E.ENOENT) throw new c.ErrnoError('unlink', c.errno(), this.path);
  }

  private acceptSome(): void {
    for (let i = 0; i < READS_PER_WAKE && !this.closed; i++) {
      const fd = c.accept4(this.fd, null, null, c.SOCK_NONBLOCK | c.SOCK_CLOEXEC);
      if (fd < 0) {
        const e = c.errno();
        if (e === c.E.EAGAIN) return;
        if (e === c.E.EINTR || e === c.E.ECONNABORTED) continue;
        // EMFILE, ENFILE, ENOBUFS...: the connection stays pending and poll would report it again
        // at once; stop asking for a moment rather than spin (accept(2)).
        this.paused = true;
        setTimeout(() => {
          this.paused = false;
          if (!this.closed) reactor.changed();
        }, 100).unref();
        return;
      }
      this.onConnection(new FdSocket(fd));
    }
  }
}

/** Unlinks path if it is a socket nobody listens on (a stale one); a live one is EADDRINUSE. */
function removeStaleSocket(path: string, sa: { addr: Buffer; len: number }): void {
  let isSocket = false;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) return; // leave other files alone; bind reports EADDRINUSE
  const probe = c.check('socket', c.socket(c.AF_UNIX, c.SOCK_STREAM | c.SOCK_NONBLOCK | c.SOCK_CLOEXEC, 0));
  const live = c.connect(probe, sa.addr, sa.len) === 0 || c.errno() === c.E.EAGAIN;
  c.close(probe);
  if (live) throw new c.ErrnoError('bind', c.E.EADDRINUSE, path);
  c.check('unlink', c.unlink(path), path);
}

// ---------------------------------------------------------------------------
// memfd and eventfd helpers.

/** memfd_create(2) with MFD_CLOEXEC, sized with ftruncate. */
export function memfdCreate(name: string, size: number): number {
  const fd = c.check('memfd_create', c.memfd_create(name, c.MFD_CLOEXEC), name);
  if (c.ftruncate(fd, size) < 0) {
    const e = c.errno();
    c.close(fd);
    throw new c.ErrnoError('ftruncate', e, `${name}, ${size}`);
  }
  return fd;
}

/** eventfd(2) with EFD_NONBLOCK | EFD_CLOEXEC, counter 0. */
export function eventfdCreate(): number {
  return c.check('eventfd', c.eventfd(0, c.EFD_NONBLOCK | c.EFD_CLOEXEC));
}

const counter = Buffer.alloc(8);
const onePollfd = Buffer.alloc(c.POLLFD_SIZE);

/** Reads and resets an eventfd counter; 0n when nothing was signalled (EAGAIN). */
export function eventfdTake(fd: number): bigint {
  // An eventfd from a peer may lack O_NONBLOCK (a shared file status flag we must not
  // change), so check readability with a zero-timeout poll(2) before read(2).
  onePollfd.writeInt32LE(fd, 0);
  onePollfd.writeInt16LE(c.POLLIN, 4);
  onePollfd.writeInt16LE(0, 6);
  if (c.check('poll', c.poll(onePollfd, 1, 0), String(fd)) === 0) return 0n;
  return readCounter(fd);
}

/** read(2) of an eventfd counter (resets it); 0n on EAGAIN. */
function readCounter(fd: number): bigint {
  if (c.read(fd, counter, 8) < 0) {
    const e = c.errno();
    if (e === c.E.EAGAIN) return 0n;
    throw new c.ErrnoError('read', e, `eventfd ${fd}`);
  }
  return counter.readBigUInt64LE(0);
}

/** Adds n (default 1) to an eventfd counter (eventfd(2) write). */
export function eventfdSignal(fd: number, n: bigint = 1n): void {
  counter.writeBigUInt64LE(n, 0);
  c.check('write', c.write(fd, counter, 8), `eventfd ${fd}`);
}

/** close(2). EINTR is not retried: on Linux the fd is released anyway. */
export function closeFd(fd: number): void {
  if (c.close(fd) < 0 && c.errno() !== c.E.EINTR) throw new c.ErrnoError('close', c.errno(), String(fd));
}
