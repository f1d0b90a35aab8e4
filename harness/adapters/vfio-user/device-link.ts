/**
 * The client's connection to one device: VERSION negotiation (with a twin
 * socket where the server offers one, so that its DMA_READ and DMA_WRITE
 * do not cross the client's requests, "Socket"), what the device says of
 * its regions and interrupts, eventfds for every interrupt it has
 * (DEVICE_SET_IRQS, ACTION_TRIGGER with DATA_EVENTFD), and the answers to
 * the server's DMA_READ and DMA_WRITE from guest memory.
 */
import { Connection, ConnectionLost, type ConnectionEvents } from '../../protocol/vfio-user/connection.ts';
import { REGION_XFER_MAX } from '../../ops/catalog.ts';
import { FdSocket, closeFd, eventfdCreate } from '../../protocol/vfio-user/fd-socket.ts';
import { negotiatedLimits } from '../../protocol/vfio-user/limits.ts';
import { ERRNO, errnoLabel } from '../../spec/errno.ts';
import {
  IRQ,
  IRQ_SET_ACTION_TRIGGER,
  IRQ_SET_DATA_EVENTFD,
  PCI_REGIONS,
  ProtocolViolation,
  type Bodies,
  type CommandName,
  type Reply,
  type Request,
  type VersionCaps,
} from '../../protocol/vfio-user/messages.ts';
import type { GuestRam } from './guest-ram.ts';

/**
 * What the client offers in VERSION. Its transfer size is the model's
 * REGION_XFER_MAX, so that a larger region read is one a conforming
 * server refuses.
 */
export const CLIENT_CAPS: VersionCaps = { maxMsgFds: 16, maxDataXferSize: REGION_XFER_MAX, pgsizes: 0x1000n, maxDmaMaps: 65535, twinSocket: { supported: true } };

/** A failed exchange: the device refused (errno) or the connection broke (violation or loss). */
export class LinkError extends Error {
  override name = 'LinkError';
  constructor(
    message: string,
    readonly violation?: ProtocolViolation,
  ) {
    super(message);
  }
}

export interface IrqTrigger {
  index: number;
  vector: number;
  fd: number;
}

export class DeviceLink {
  readonly regionSizes: number[] = [];
  readonly irqCounts: number[] = [];
  readonly triggers: IrqTrigger[] = [];
  /** A violation by the server, once one happened. */
  violation: ProtocolViolation | null = null;
  /** Departures the client read past (an error reply with a body), since the last take. */
  departures: ProtocolViolation[] = [];
  ram: GuestRam | null = null;
  server: VersionCaps = {};
  /** The server's own requests go on this one when it gave a twin socket. */
  private twin: Connection | null = null;

  private constructor(
    readonly path: string,
    readonly conn: Connection,
  ) {}

  /** Opens a link on a connected socket (`connect` makes one: a retry loop for a server isoroot starts). */
  static async open(path: string, connect: () => Promise<FdSocket> = () => FdSocket.connect(path)): Promise<DeviceLink> {
    const sock = await connect();
    let link: DeviceLink | null = null;
    const conn: Connection = new Connection(sock, DeviceLink.events(() => link!, () => conn));
    link = new DeviceLink(path, conn);
    try {
      const vr = await link.tryAsk('VERSION', { major: 0, minor: 1, caps: CLIENT_CAPS }, [], true);
      if (typeof vr === 'number') throw new LinkError(`${path}: VERSION refused with ${errnoLabel(vr)}`);
      const { body: v, fds } = vr;
      if (v.major !== 0) throw new LinkError(`${path}: the server speaks vfio-user ${v.major}.${v.minor}; isoroot speaks 0.x`);
      link.server = v.caps;
      conn.negotiated(negotiatedLimits(CLIENT_CAPS, v.caps));
      const twin = v.caps.twinSocket;
      if (twin?.supported === true && twin.fdIndex !== undefined) {
        const t: Connection = new Connection(new FdSocket(fds[twin.fdIndex]), DeviceLink.events(() => link!, () => t));
        t.negotiated(negotiatedLimits(CLIENT_CAPS, v.caps));
        link.twin = t;
      } else for (const fd of fds) closeFd(fd);
      const info = await link.ask('DEVICE_GET_INFO', { flags: 0, numRegions: 0, numIrqs: 0 });
      for (let i = 0; i < Math.min(info.numRegions, PCI_REGIONS); i++) {
        const r = await link.ask('DEVICE_GET_REGION_INFO', { argsz: 32, flags: 0, index: i, capOffset: 0, size: 0n, offset: 0n });
        link.regionSizes.push(Number(r.size));
      }
      // INTx, MSI and MSI-X: the interrupts isoroot observes (a refusal of the others is no matter).
      for (let i = 0; i < Math.min(info.numIrqs, IRQ.MSIX + 1); i++) {
        const r = await link.ask('DEVICE_GET_IRQ_INFO', { argsz: 16, flags: 0, index: i, count: 0 });
        link.irqCounts.push(r.count);
      }
    } catch (e) {
      link.close();
      throw e;
    }
    return link;
  }

  /** A request is answered on the connection it came on. */
  private static events(link: () => DeviceLink, conn: () => Connection): ConnectionEvents {
    return {
      onRequest: (m) => link().serve(m, conn()),
      onViolation: (v) => {
        link().violation = v;
      },
      onClose: () => {},
    };
  }

  /** Sends a request; a refusal or a broken connection throws LinkError. */
  async ask<C extends CommandName>(command: C, body: Bodies[C]['request'], fds: number[] = []): Promise<NonNullable<Bodies[C]['reply']>> {
    const r = await this.tryAsk(command, body, fds);
    if (typeof r === 'number') throw new LinkError(`${this.path}: ${command} refused with ${errnoLabel(r)}`);
    return r;
  }

  /** Sends a request; resolves with the reply's body, or the errno of a refusal. A broken connection throws LinkError. */
  async tryAsk<C extends CommandName>(command: C, body: Bodies[C]['request'], fds?: number[]): Promise<NonNullable<Bodies[C]['reply']> | number>;
  async tryAsk<C extends CommandName>(command: C, body: Bodies[C]['request'], fds: number[], keepFds: true): Promise<{ body: NonNullable<Bodies[C]['reply']>; fds: number[] } | number>;
  async tryAsk<C extends CommandName>(command: C, body: Bodies[C]['request'], fds: number[] = [], keepFds = false): Promise<unknown> {
    let r: Reply<C>;
    try {
      r = await this.conn.request(command, body, fds);
    } catch (e) {
      if (e instanceof ConnectionLost) throw new LinkError(`${this.path}: ${e.message}`, e.violation);
      throw e;
    }
    if (r.departure !== undefined) this.departures.push(r.departure);
    // Region fds (for mmap) are not used: every access goes as a message, so every access is seen.
    if (!keepFds || r.errno !== 0) for (const fd of r.fds) closeFd(fd);
    if (r.errno !== 0) return r.errno;
    if (r.body === null && command !== 'DMA_MAP' && command !== 'DEVICE_SET_IRQS' && command !== 'DEVICE_RESET') throw new LinkError(`${this.path}: ${command} reply without a body`);
    return keepFds ? { body: r.body, fds: r.fds } : r.body;
  }

  /** The departures read past since the last call. */
  takeDepartures(): ProtocolViolation[] {
    const d = this.departures;
    this.departures = [];
    return d;
  }

  /** An eventfd for every interrupt the device has: INTx, each MSI and MSI-X vector. */
  async armInterrupts(): Promise<void> {
    for (const index of [IRQ.INTX, IRQ.MSI, IRQ.MSIX]) {
      const count = this.irqCounts[index] ?? 0;
      if (count === 0) continue;
      const fds = Array.from({ length: count }, () => eventfdCreate());
      // At most max_msg_fds per message ("Version": max_msg_fds).
      const per = Math.max(1, this.conn.limits.maxMsgFds);
      for (let start = 0; start < count; start += per) {
        const part = fds.slice(start, start + per);
        await this.ask('DEVICE_SET_IRQS', { argsz: 20, flags: IRQ_SET_ACTION_TRIGGER | IRQ_SET_DATA_EVENTFD, index, start, count: part.length }, part);
      }
      fds.forEach((fd, vector) => this.triggers.push({ index, vector, fd }));
    }
  }

  /** The server's requests (on the twin socket when there is one): DMA to and from guest memory. */
  private serve(m: Request, conn: Connection): void {
    const ram = this.ram;
    if (m.command !== 'DMA_READ' && m.command !== 'DMA_WRITE') return conn.fail(m, ERRNO.EINVAL);
    if (ram === null) return conn.fail(m, ERRNO.EFAULT);
    const address = Number(m.body.address);
    const count = Number(m.body.count);
    const write = m.command === 'DMA_WRITE';
    const pieces = ram.resolve(address, count, write);
    if (typeof pieces === 'number') return conn.fail(m, pieces);
    if (write) {
      let done = 0;
      for (const p of pieces) {
        ram.write(p.gpa, m.body.data!.subarray(done, done + p.len));
        done += p.len;
      }
      return conn.reply(m as Request<'DMA_WRITE'>, { address: m.body.address, count: m.body.count });
    }
    const data = new Uint8Array(count);
    let done = 0;
    for (const p of pieces) {
      data.set(ram.read(p.gpa, p.len), done);
      done += p.len;
    }
    conn.reply(m as Request<'DMA_READ'>, { address: m.body.address, count: m.body.count, data });
  }

  close(): void {
    this.conn.close();
    this.twin?.close();
    for (const t of this.triggers) closeFd(t.fd);
    this.triggers.length = 0;
  }
}
