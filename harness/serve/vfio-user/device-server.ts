/**
 * One served device's end of a vfio-user connection: each request the
 * specification defines, answered from the reference model. Region
 * accesses reach the device the way a multi-client server must reach it
 * (seed 000): the BAR's current address in the device's own root, routed
 * through that root's address space, so that a server whose roots share
 * a space would be caught answering for the wrong device. Everything the
 * client did is recorded as model operations with their observations.
 */
import type { Model } from '../../model/model.ts';
import { REGION_XFER_MAX, type Op } from '../../ops/catalog.ts';
import type { Observation } from '../../ops/observation.ts';
import type { Connection } from '../../protocol/vfio-user/connection.ts';
import {
  DEVICE_FLAG_PCI,
  DEVICE_FLAG_RESET,
  DMA_READ_FLAG,
  DMA_UNMAP_ALL,
  DMA_WRITE_FLAG,
  IRQ,
  IRQ_INFO_EVENTFD,
  IRQ_INFO_MASKABLE,
  IRQ_INFO_NORESIZE,
  IRQ_SET_ACTION_MASK,
  IRQ_SET_ACTION_TRIGGER,
  IRQ_SET_ACTION_UNMASK,
  IRQ_SET_DATA_BOOL,
  IRQ_SET_DATA_EVENTFD,
  IRQ_SET_DATA_NONE,
  PCI_IRQS,
  PCI_REGIONS,
  REGION,
  REGION_FLAG_READ,
  REGION_FLAG_WRITE,
  type Request,
  type VersionCaps,
} from '../../protocol/vfio-user/messages.ts';
import { ERRNO } from '../../spec/errno.ts';
import { errnoOf } from '../../adapters/vfio-user/refusals.ts';
import { findCaps } from '../../protocol/vfio-user/pci-caps.ts';
import { closeFd, eventfdSignal } from '../../protocol/vfio-user/fd-socket.ts';
import { negotiatedLimits } from '../../protocol/vfio-user/limits.ts';
import type { ClientMemory } from './client-memory.ts';
import { regionSize } from '../../model/region-access.ts';

/** What the server offers in VERSION ("Version": capabilities). */
export const SERVER_CAPS: VersionCaps = { maxMsgFds: 16, maxDataXferSize: 1 << 20, pgsizes: 0x1000n, maxDmaMaps: 65535 };
const ADDR_MAX = 2 ** 52 - 1;
const SIZE_MAX = 2 ** 40;

export type Record = (op: Op, obs: Observation) => void;

export class DeviceServer {
  /** Trigger eventfds by IRQ index, then vector. */
  private readonly triggers: (number | undefined)[][] = Array.from({ length: PCI_IRQS }, () => []);
  private readonly masked: boolean[][] = Array.from({ length: PCI_IRQS }, () => []);

  constructor(
    private readonly model: Model,
    readonly root: number,
    readonly dev: string,
    readonly conn: Connection,
    private readonly memory: ClientMemory,
    private readonly record: Record,
  ) {}

  /** Applies an op to the model, records it, and signals the interrupts it raised. */
  private apply(op: Op): Observation {
    const obs = this.model.apply(op);
    this.record(op, obs);
    for (const i of obs.irqs ?? []) this.onIrq?.(i.dev ?? '', i.kind, i.vector ?? 0, i.level);
    return obs;
  }

  /** Set by the server: routes a model interrupt to the connection of the device that sent it. */
  onIrq: ((dev: string, kind: string, vector: number, level?: number) => void) | null = null;

  /** Signals this device's eventfd for a model interrupt, as VFIO does (unmasked triggers only). */
  signal(kind: string, vector: number, level?: number): void {
    const index = kind === 'msi' ? IRQ.MSI : kind === 'msix' ? IRQ.MSIX : kind === 'intx' && level === 1 ? IRQ.INTX : -1;
    if (index < 0) return;
    const v = index === IRQ.INTX ? 0 : vector;
    const fd = this.triggers[index][v];
    if (fd !== undefined && this.masked[index][v] !== true) eventfdSignal(fd);
  }

  private get fn() {
    const f = this.model.fnOf(this.dev);
    if (f === null) throw new Error(`served device ${this.dev} has no function`);
    return f;
  }

  private cfgRead(off: number, size: number): number {
    return this.fn.configRead(off, size);
  }

  handle(m: Request): void {
    switch (m.command) {
      case 'VERSION': {
        const ours = SERVER_CAPS;
        // The version the client asked for, when we speak it ("Version": the server may answer lower).
        if (m.body.major !== 0) return this.conn.fail(m, ERRNO.ENOTSUP);
        this.conn.reply(m, { major: 0, minor: Math.min(m.body.minor, 1), caps: ours });
        this.conn.negotiated(negotiatedLimits(ours, m.body.caps));
        return;
      }
      case 'DEVICE_GET_INFO':
        return this.conn.reply(m, { flags: DEVICE_FLAG_PCI | DEVICE_FLAG_RESET, numRegions: PCI_REGIONS, numIrqs: PCI_IRQS });
      case 'DEVICE_GET_REGION_INFO': {
        const i = m.body.index;
        if (i >= PCI_REGIONS) return this.conn.fail(m, ERRNO.EINVAL);
        const size = this.regionSize(i);
        const flags = size === 0 ? 0 : i === REGION.ROM ? REGION_FLAG_READ : REGION_FLAG_READ | REGION_FLAG_WRITE;
        return this.conn.reply(m, { argsz: m.body.argsz, flags, index: i, capOffset: 0, size: BigInt(size), offset: 0n });
      }
      case 'DEVICE_GET_REGION_IO_FDS':
        if (m.body.index >= PCI_REGIONS) return this.conn.fail(m, ERRNO.EINVAL);
        // No ioeventfds: every access comes as a message, so every access is seen.
        return this.conn.reply(m, { argsz: m.body.argsz, flags: 0, index: m.body.index, count: 0, entries: [] });
      case 'DEVICE_GET_IRQ_INFO': {
        const i = m.body.index;
        // ERR and REQ are not offered (QEMU asks for ERR and takes a refusal).
        if (i >= PCI_IRQS || i > IRQ.MSIX) return this.conn.fail(m, ERRNO.EINVAL);
        const flags = IRQ_INFO_EVENTFD | (i === IRQ.INTX ? IRQ_INFO_MASKABLE : IRQ_INFO_NORESIZE);
        return this.conn.reply(m, { argsz: m.body.argsz, flags, index: i, count: this.irqCount(i) });
      }
      case 'DEVICE_SET_IRQS':
        return this.setIrqs(m as Request<'DEVICE_SET_IRQS'>);
      case 'REGION_READ':
      case 'REGION_WRITE':
        return this.regionAccess(m as Request<'REGION_READ' | 'REGION_WRITE'>);
      case 'DMA_MAP':
        return this.dmaMap(m as Request<'DMA_MAP'>);
      case 'DMA_UNMAP':
        return this.dmaUnmap(m as Request<'DMA_UNMAP'>);
      case 'DEVICE_RESET':
        this.apply({ op: 'dev.reset', dev: this.dev });
        return this.conn.reply(m, null);
      case 'DEVICE_FEATURE':
      case 'MIG_DATA_READ':
      case 'MIG_DATA_WRITE':
        // No migration: the server offers none of its features.
        return this.conn.fail(m, ERRNO.ENOTSUP);
      case 'DMA_READ':
      case 'DMA_WRITE':
        // Server-to-client commands: a client has no business sending them.
        return this.conn.fail(m, ERRNO.EINVAL);
    }
  }

  /**
   * The function's own config space is sized as Linux's vfio-pci sizes the region (pdev->cfg_size): 4 KiB
   * for PCI Express, 256 bytes for conventional PCI, whose 0x100+ reads as all ones; QEMU walks the
   * extended capabilities of a 4 KiB region and loops forever on an all-ones header (next = 0xffc).
   */
  regionSize(i: number): number {
    return regionSize(this.fn, i);
  }

  private irqCount(i: number): number {
    const caps = findCaps((o, s) => this.cfgRead(o, s));
    if (i === IRQ.INTX) return caps.pin === 0 ? 0 : 1;
    if (i === IRQ.MSI) return caps.msiVectors ?? 0;
    if (i === IRQ.MSIX) return caps.msixVectors ?? 0;
    return 0;
  }

  private setIrqs(m: Request<'DEVICE_SET_IRQS'>): void {
    const { index, start, count, flags } = m.body;
    const n = this.irqCount(index);
    if (index >= PCI_IRQS || start + count > n || (count === 0 && (flags & IRQ_SET_DATA_NONE) === 0)) {
      for (const fd of m.fds) closeFd(fd);
      return this.conn.fail(m, ERRNO.EINVAL);
    }
    if ((flags & IRQ_SET_ACTION_TRIGGER) !== 0) {
      if ((flags & IRQ_SET_DATA_EVENTFD) !== 0) {
        for (let k = 0; k < count; k++) this.setTrigger(index, start + k, m.fds[k]);
      } else if ((flags & IRQ_SET_DATA_NONE) !== 0 && count === 0) {
        // count 0 with DATA_NONE: tear down every trigger of the index (VFIO_DEVICE_SET_IRQS).
        for (let v = 0; v < n; v++) this.setTrigger(index, v, undefined);
      } else {
        // Loopback triggers: fire the chosen ones now, as the specification lets a client test them.
        for (let k = 0; k < count; k++) {
          const fire = (flags & IRQ_SET_DATA_BOOL) === 0 || m.body.data?.[k] === 1;
          const fd = this.triggers[index][start + k];
          if (fire && fd !== undefined) eventfdSignal(fd);
        }
      }
    } else if ((flags & (IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK)) !== 0) {
      const mask = (flags & IRQ_SET_ACTION_MASK) !== 0;
      for (let k = 0; k < count; k++) if ((flags & IRQ_SET_DATA_BOOL) === 0 || m.body.data?.[k] === 1) this.masked[index][start + k] = mask;
    }
    this.conn.reply(m, null);
  }

  private setTrigger(index: number, v: number, fd: number | undefined): void {
    const old = this.triggers[index][v];
    if (old !== undefined) closeFd(old);
    // An fd of -1 in the array unsets the trigger.
    this.triggers[index][v] = fd === undefined || fd < 0 ? undefined : fd;
  }

  /**
   * REGION_READ / REGION_WRITE as the model's region operations (one per
   * REGION_XFER_MAX bytes: the client may have negotiated more), which
   * reach config space and the BARs through the device's root.
   */
  private regionAccess(m: Request<'REGION_READ' | 'REGION_WRITE'>): void {
    const { region, count } = m.body;
    const offset = Number(m.body.offset);
    // More than a message may carry: the codec refused a write already; a read's reply would be too big.
    if (count > this.conn.limits.maxDataXferSize) return this.conn.fail(m, ERRNO.E2BIG);
    if (region >= PCI_REGIONS) return this.conn.fail(m, errnoOf('region', 'no-region'));
    // No region is 4 GiB: an offset beyond that is past any region's end.
    if (offset > 2 ** 32) return this.conn.fail(m, errnoOf('region', 'past-end'));
    const write = m.command === 'REGION_WRITE' ? m.body.data! : null;
    const out = new Uint8Array(write === null ? count : 0);
    for (let at = 0; at < count; at += REGION_XFER_MAX) {
      const n = Math.min(REGION_XFER_MAX, count - at);
      const base = { dev: this.dev, region, offset: offset + at };
      const obs = this.apply(write === null ? { op: 'region.read', ...base, count: n } : { op: 'region.write', ...base, data: write.subarray(at, at + n) });
      if (obs.status !== 'ok') return this.conn.fail(m, errnoOf('region', obs.reason));
      if (write === null) out.set(obs.data!, at);
    }
    if (write === null) this.conn.reply(m, { offset: m.body.offset, region, count, data: out });
    else this.conn.reply(m, { offset: m.body.offset, region, count });
  }

  private dmaMap(m: Request<'DMA_MAP'>): void {
    const { flags } = m.body;
    const address = Number(m.body.address);
    const size = Number(m.body.size);
    const fd = m.fds[0] ?? null;
    const refuse = (errno: number): void => {
      if (fd !== null) closeFd(fd);
      this.conn.fail(m, errno);
    };
    const perm = (flags & DMA_READ_FLAG) !== 0 ? ((flags & DMA_WRITE_FLAG) !== 0 ? 'rw' : 'r') : (flags & DMA_WRITE_FLAG) !== 0 ? 'w' : null;
    if (perm === null || address > ADDR_MAX || size > SIZE_MAX || size < 1) return refuse(ERRNO.EINVAL);
    // VFIO type-1 wants the backing page aligned too (vfio_dma_do_map).
    if (fd !== null && m.body.offset % 0x1000n !== 0n) return refuse(ERRNO.EINVAL);
    // The domain translates each IOVA to itself: the client memory is keyed by IOVA.
    const obs = this.apply({ op: 'dma.map', root: this.root, domain: 0, iova: address, size, gpa: address, perm });
    if (obs.status !== 'ok') return refuse(errnoOf('dma', obs.reason));
    this.memory.add(address, size, fd, Number(m.body.offset));
    this.conn.reply(m, null);
  }

  private dmaUnmap(m: Request<'DMA_UNMAP'>): void {
    const { flags } = m.body;
    if ((flags & DMA_UNMAP_ALL) !== 0) {
      this.unmapAll();
      return this.conn.reply(m, m.body);
    }
    const address = Number(m.body.address);
    const size = Number(m.body.size);
    if (address > ADDR_MAX || size > SIZE_MAX || size < 1) return this.conn.fail(m, ERRNO.EINVAL);
    const obs = this.apply({ op: 'dma.unmap', root: this.root, domain: 0, iova: address, size });
    if (obs.status !== 'ok') return this.conn.fail(m, errnoOf('dma', obs.reason));
    this.memory.remove(address, size);
    this.conn.reply(m, m.body);
  }

  /** Every DMA region goes, one unmap each (the client left, or asked for all). */
  unmapAll(): void {
    for (const d of this.model.domainsOf(this.root)) for (const x of d.mappings()) this.apply({ op: 'dma.unmap', root: this.root, domain: 0, iova: x.iova, size: x.size });
    this.memory.removeAll();
  }

  /**
   * The client is gone: its triggers and memory go with it, and the next
   * client gets a device fresh from power-on (unplugged and plugged in the
   * model: edu keeps its state across a reset, not across a power cycle).
   */
  disconnected(): void {
    this.unmapAll();
    for (let i = 0; i < PCI_IRQS; i++) for (let v = 0; v < this.triggers[i].length; v++) this.setTrigger(i, v, undefined);
    this.apply({ op: 'dev.unplug', dev: this.dev });
    this.apply({ op: 'dev.plug', dev: this.dev });
  }
}
