/**
 * Unix stream sockets that carry file descriptors (SCM_RIGHTS, unix(7)),
 * which vfio-user needs for DMA regions (memfd) and interrupts (eventfd).
 * Node's net module cannot send or receive ancillary data, so every socket
 * here is a raw fd driven through libc (libc.ts).
 *
 * Event loop integration: every open socket and listener has its own
 * readiness handle in Node's event loop (libc.FdWatch: a libuv uv_poll_t,
 * through koffi.node.poll). Its callback runs on the main thread and does
 * the nonblocking recvmsg / accept4 / sendmsg work there: no thread hop, no
 * wake-up fd. Readiness is level-triggered, so each wake reads (or accepts)
 * a bounded number of times and the rest waits for the next loop iteration,
 * and a socket watches for writability only while its send queue is not
 * empty. An open socket or listener holds the event loop, as a net.Socket
 * does; a closed one has closed its handle, so with nothing open the
 * process can exit on its own.
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

/** The pending error of a socket (getsockopt SO_ERROR, which also clears it); 0 when none. */
function socketError(fd: number): number {
  const value = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4);
  return c.getsockopt(fd, c.SOL_SOCKET, c.SO_ERROR, value, len) < 0 ? c.errno() : value.readInt32LE(0);
}

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

  /** Readiness of the fd in the event loop; null once closed. Kept off the public surface. */
  private watch: c.FdWatch | null;
  /** Whether the watch includes writability (exactly while the queue is not empty). */
  private watchingWritable = false;

  /**
   * Takes ownership of a connected AF_UNIX stream socket fd (every call on it is MSG_DONTWAIT).
   * Watching it sets O_NONBLOCK on it (uv_poll_init does), as every socket made here has anyway.
   */
  constructor(readonly fd: number) {
    this.watch = new c.FdWatch(fd, { readable: true }, (status, ev) => this.ready(status, ev));
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
    if (wasIdle) this.watchWritable(true);
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
   * error (which closes the socket). A readable callback that was due
   * for those bytes then finds nothing, which it takes in its stride (EAGAIN).
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

  private ready(status: number, ev: c.PollEvents): void {
    if (this.closed) return;
    if (status < 0) return this.pollError(status);
    // Read first: on a hang-up, pending data and then the EOF come before any EPIPE on the write side.
    // (A bare EPOLLHUP comes with readable set: libuv merges in the events watched.)
    if (ev.readable || ev.disconnect) this.readSome();
    if (!this.closed && this.queue.length > 0 && ev.writable) this.flush();
  }

  /**
   * EPOLLERR: the socket has a pending error (ECONNRESET when the peer closed
   * with our data unread...), and libuv has stopped the handle. recvmsg still
   * returns the bytes that arrived before it, then the error, which ends the
   * connection; if neither reading nor writing makes progress, the error
   * (SO_ERROR) ends it here rather than re-arming into a busy loop.
   */
  private pollError(status: number): void {
    let rearm = true;
    try {
      const progressed = this.readSome();
      if (!this.closed && this.queue.length > 0) this.flush();
      if (!this.closed && !progressed) {
        rearm = false;
        const e = socketError(this.fd);
        this.finish(new c.ErrnoError(e !== 0 ? 'socket' : 'poll', e !== 0 ? e : -status, String(this.fd)));
      }
    } finally {
      // Also when onData threw: the socket stays open, so it must go on being watched.
      if (rearm && !this.closed) this.watch?.set({ readable: true, writable: this.watchingWritable });
    }
  }

  /** Up to READS_PER_WAKE recvmsg calls, delivering each chunk; false if the first found nothing (EAGAIN). */
  private readSome(): boolean {
    for (let i = 0; i < READS_PER_WAKE && !this.closed; i++) {
      const got = recvOnce(this.fd);
      if ('errno' in got) {
        if (got.errno === c.E.EAGAIN) return i > 0;
        if (got.errno === c.E.EINTR) continue;
        this.finish(new c.ErrnoError('recvmsg', got.errno)); // ECONNRESET...
        return true;
      }
      if (got.truncated) {
        got.fds.forEach((f) => c.close(f));
        this.finish(new Error(`recvmsg: MSG_CTRUNC, more than ${MAX_RECV_FDS} fds in one message; fds were lost`));
        return true;
      }
      if (got.n === 0) {
        this.finish(undefined); // orderly EOF
        return true;
      }
      this.onData(Buffer.from(recvData.subarray(0, got.n)), got.fds);
      // A stream recvmsg fills the buffer unless the queue ran dry or it stopped at a
      // message with fds (unix(7)): a short read without fds spares the EAGAIN read
      // (level-triggered: anything that came since is reported again).
      if (got.n < RECV_BUF_SIZE && got.fds.length === 0) break;
    }
    return true;
  }

  /** Level-triggered readiness: watch writability only while there is something to write. */
  private watchWritable(want: boolean): void {
    if (this.watchingWritable === want || this.watch === null) return;
    this.watchingWritable = want;
    this.watch.set({ readable: true, writable: want });
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
    this.watchWritable(false);
  }

  private finish(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    for (const q of this.queue) q.fds.forEach((f) => c.close(f));
    this.queue = [];
    this.queuedBytes = 0;
    // The handle first: it takes the fd out of epoll at once, so the fd number can be reused.
    this.watch?.close();
    this.watch = null;
    c.close(this.fd);
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
  private readonly watch: c.FdWatch;
  /** Set while accepting is paused (EMFILE...); holds the event loop instead of the stopped handle. */
  private resume: NodeJS.Timeout | undefined;

  private constructor(
    readonly fd: number,
    readonly path: string,
    private readonly onConnection: (s: FdSocket) => void,
  ) {
    this.watch = new c.FdWatch(fd, { readable: true }, (status) => this.ready(status));
  }

  /** Stops listening and unlinks the path. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.resume);
    this.watch.close();
    c.close(this.fd);
    if (c.unlink(this.path) < 0 && c.errno() !== c.E.ENOENT) throw new c.ErrnoError('unlink', c.errno(), this.path);
  }

  private ready(status: number): void {
    if (this.closed || this.resume !== undefined) return;
    let progressed = true;
    try {
      progressed = this.acceptSome();
    } finally {
      // EPOLLERR on a listener (libuv stopped the handle): go on if accepting works, else retry later.
      if (status < 0 && !this.closed && this.resume === undefined) {
        if (progressed) this.watch.set({ readable: true });
        else this.pause();
      }
    }
  }

  /** Up to READS_PER_WAKE accepts; true if any connection was taken. */
  private acceptSome(): boolean {
    let progressed = false;
    for (let i = 0; i < READS_PER_WAKE && !this.closed; i++) {
      const fd = c.accept4(this.fd, null, null, c.SOCK_NONBLOCK | c.SOCK_CLOEXEC);
      if (fd < 0) {
        const e = c.errno();
        if (e === c.E.EAGAIN) break;
        if (e === c.E.EINTR || e === c.E.ECONNABORTED) continue;
        // EMFILE, ENFILE, ENOBUFS...: the connection stays pending and epoll would report it again
        // at once; stop asking for a moment rather than spin (accept(2)).
        this.pause();
        break;
      }
      progressed = true;
      let s: FdSocket;
      try {
        s = new FdSocket(fd);
      } catch (e) {
        c.close(fd);
        throw e;
      }
      this.onConnection(s);
    }
    return progressed;
  }

  private pause(): void {
    this.watch.stop();
    this.resume = setTimeout(() => {
      this.resume = undefined;
      if (!this.closed) this.watch.set({ readable: true });
    }, 100);
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
  for (;;) {
    const n = c.poll(onePollfd, 1, 0);
    // A signal (a profiler's SIGPROF, SIGCHLD) may interrupt even a zero-timeout poll: ask again.
    if (n < 0 && c.errno() === c.E.EINTR) continue;
    if (c.check('poll', n, String(fd)) === 0) return 0n;
    return readCounter(fd);
  }
}

let manyPollfd = Buffer.alloc(0);

/**
 * eventfdTake for many eventfds at once: one poll(2) over all of them,
 * then read(2) of those that are readable (a session looks at every
 * interrupt trigger after each op: one system call, not one per fd).
 * The counts come back in the order of `fds`.
 */
export function eventfdTakeAll(fds: readonly number[]): bigint[] {
  const size = fds.length * c.POLLFD_SIZE;
  if (manyPollfd.length < size) manyPollfd = Buffer.alloc(size);
  fds.forEach((fd, i) => {
    manyPollfd.writeInt32LE(fd, i * c.POLLFD_SIZE);
    manyPollfd.writeInt16LE(c.POLLIN, i * c.POLLFD_SIZE + 4);
    manyPollfd.writeInt16LE(0, i * c.POLLFD_SIZE + 6);
  });
  const out = fds.map(() => 0n);
  if (fds.length === 0) return out;
  for (;;) {
    const n = c.poll(manyPollfd, fds.length, 0);
    if (n < 0 && c.errno() === c.E.EINTR) continue;
    if (c.check('poll', n, fds.join(',')) === 0) return out;
    break;
  }
  fds.forEach((fd, i) => {
    if ((manyPollfd.readInt16LE(i * c.POLLFD_SIZE + 6) & c.POLLIN) !== 0) out[i] = readCounter(fd);
  });
  return out;
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
