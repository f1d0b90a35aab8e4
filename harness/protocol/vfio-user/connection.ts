/**
 * One vfio-user connection, either end: frames the byte stream, decodes
 * each message strictly, matches replies to requests by message id (so
 * requests pipeline), and hands the peer's requests to the owner. Both
 * ends send requests: the client's to the device, the server's DMA_READ
 * and DMA_WRITE to the client ("Message sizes", "Commands").
 */
import { DEFAULT_LIMITS, ProtocolViolation, type Bodies, type CommandName, type Limits, type Message, type Reply, type Request } from './messages.ts';
import { decodeMessage, encodeMessage } from './codec.ts';
import { FrameReader } from './framing.ts';
import type { FdSocket } from './fd-socket.ts';
import { closeFd } from './fd-socket.ts';

/** Every message in and out, as bytes, for captures (the proxy and the server's --pcap). */
export type Tap = (dir: 'in' | 'out', bytes: Uint8Array, fds: number) => void;

export interface ConnectionEvents {
  /** A request from the peer; answer it with reply() or fail(). */
  onRequest(m: Request): void;
  /** The peer broke the protocol; the connection closes after this. */
  onViolation(v: ProtocolViolation): void;
  /** The connection ended (after the peer closed, a violation, or close()). */
  onClose(why: string): void;
}

/** A request that got no reply: the connection ended first, or the peer broke the protocol. */
export class ConnectionLost extends Error {
  override name = 'ConnectionLost';
  constructor(
    message: string,
    readonly violation?: ProtocolViolation,
  ) {
    super(message);
  }
}

interface Pending {
  command: CommandName;
  resolve(m: Reply): void;
  reject(e: Error): void;
}

/** Requests without data to spare: ids wrap at 16 bits ("Header": Message ID). */
const ID_LIMIT = 0x10000;

export class Connection {
  limits: Limits = DEFAULT_LIMITS;
  private readonly frames: FrameReader;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closedWhy: string | null = null;
  tap: Tap | null = null;

  constructor(
    readonly socket: FdSocket,
    private readonly events: ConnectionEvents,
  ) {
    this.frames = new FrameReader(this.limits);
    socket.onData = (chunk, fds) => this.received(chunk, fds);
    socket.onClose = (err) => this.ended(err === undefined ? 'the peer closed the connection' : `the connection failed: ${err.message}`);
  }

  get closed(): boolean {
    return this.closedWhy !== null;
  }

  /** Raises the limits after VERSION negotiation. */
  negotiated(l: Limits): void {
    this.limits = l;
    this.frames.limits = l;
  }

  /** Sends a request and resolves with its reply (an error reply resolves too: errno set). */
  request<C extends CommandName>(command: C, body: Bodies[C]['request'], fds: number[] = []): Promise<Reply<C>> {
    if (this.closedWhy !== null) return Promise.reject(new ConnectionLost(this.closedWhy));
    const id = this.takeId();
    const m = { command, id, reply: false, noReply: false, body, fds } as Request;
    return new Promise<Reply<C>>((resolve, reject) => {
      this.pending.set(id, { command, resolve: resolve as (m: Reply) => void, reject });
      this.send(m);
    });
  }

  /**
   * Sends a request and blocks until its reply: a served device's DMA to
   * memory the client mapped without a file descriptor, which the model
   * needs answered before its access completes. Other messages that
   * arrive meanwhile wait for the event loop, in order. The peer must be
   * another process. Null: no reply in time, or the connection ended.
   */
  requestSync<C extends CommandName>(command: C, body: Bodies[C]['request'], timeoutMs: number): Reply<C> | null {
    if (this.closedWhy !== null) return null;
    const id = this.takeId();
    let got: Reply<C> | null = null;
    this.pending.set(id, { command, resolve: (m) => (got = m as Reply<C>), reject: () => {} });
    this.send({ command, id, reply: false, noReply: false, body, fds: [] } as Request);
    const deadline = Date.now() + timeoutMs;
    this.holding = true;
    try {
      if (!this.socket.flushSync(timeoutMs)) return null;
      while (got === null && this.closedWhy === null) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        const r = this.socket.recvSync(left);
        if (r === null) break;
        if (r === 'eof') {
          this.ended('the peer closed the connection');
          break;
        }
        this.received(r.chunk, r.fds);
      }
    } finally {
      this.holding = false;
      this.pending.delete(id);
    }
    this.releaseHeld();
    return got;
  }

  reply<C extends CommandName>(req: Request<C>, body: Bodies[C]['reply'], fds: number[] = []): void {
    if (req.noReply || this.closedWhy !== null) return;
    this.send({ command: req.command, id: req.id, reply: true, errno: 0, body, fds } as Reply);
  }

  fail(req: Request, errno: number): void {
    if (req.noReply || this.closedWhy !== null) return;
    this.send({ command: req.command, id: req.id, reply: true, errno, body: null, fds: [] } as Reply);
  }

  close(why = 'closed by isoroot'): void {
    this.ended(why);
    this.socket.close();
  }

  private takeId(): number {
    for (let n = 0; n < ID_LIMIT; n++) {
      const id = this.nextId;
      this.nextId = (this.nextId + 1) % ID_LIMIT;
      if (!this.pending.has(id)) return id;
    }
    throw new Error('65536 requests in flight on one vfio-user connection');
  }

  private send(m: Message): void {
    const bytes = encodeMessage(m);
    this.tap?.('out', bytes, m.fds.length);
    this.socket.send(bytes, m.fds);
  }

  private received(chunk: Buffer, fds: number[]): void {
    if (this.closedWhy !== null) {
      for (const fd of fds) closeFd(fd);
      return;
    }
    try {
      this.frames.push(chunk, fds);
      for (let f = this.frames.next(); f !== null; f = this.frames.next()) {
        this.tap?.('in', f.bytes, f.fds.length);
        this.dispatch(decodeMessage(f.bytes, f.fds, this.limits), f.fds);
        if (this.closedWhy !== null) return;
      }
    } catch (e) {
      if (!(e instanceof ProtocolViolation)) throw e;
      this.violated(e);
    }
  }

  /** While a synchronous request waits, the peer's requests wait too (they run after it, in order). */
  private holding = false;
  private held: Request[] = [];

  private releaseHeld(): void {
    if (this.held.length === 0) return;
    // After the current request's handling, on the event loop; new requests queue behind these.
    setImmediate(() => {
      while (this.held.length > 0 && !this.holding && this.closedWhy === null) this.events.onRequest(this.held.shift()!);
      if (this.closedWhy !== null) this.held = [];
    });
  }

  private dispatch(m: Message, fds: number[]): void {
    if (!m.reply) {
      if (this.holding || this.held.length > 0) this.held.push(m);
      else this.events.onRequest(m);
      return;
    }
    const p = this.pending.get(m.id);
    if (p === undefined) {
      for (const fd of fds) closeFd(fd);
      throw new ProtocolViolation(m.command, 'header.id', 0, 'the id of a request in flight', `${m.id}, which no request in flight has`);
    }
    if (p.command !== m.command) throw new ProtocolViolation(m.command, 'header.command', 2, `${p.command}, the command of request ${m.id}`, m.command);
    this.pending.delete(m.id);
    p.resolve(m);
  }

  private violated(v: ProtocolViolation): void {
    this.events.onViolation(v);
    const why = `the peer broke the protocol: ${v.message}`;
    this.socket.close();
    this.ended(why, v);
  }

  private ended(why: string, v?: ProtocolViolation): void {
    if (this.closedWhy !== null) return;
    this.closedWhy = why;
    for (const p of this.pending.values()) p.reject(new ConnectionLost(why, v));
    this.pending.clear();
    this.events.onClose(why);
  }
}
