/**
 * A client session: isoroot's operations carried out as a VMM carries
 * them out on vfio-user devices, one device per root. The client decodes
 * the CPU's accesses itself (guest RAM, the ECAM window, the BARs where
 * config space says they are) and sends what reaches a device as region
 * accesses; DMA maps go with or without the RAM's memfd; interrupts come
 * as eventfds. Nothing here predicts: what the device answers is the
 * observation.
 */
import { needs, writeValue, type Op } from '../../ops/catalog.ts';
import { unhandled } from '../../ops/exhaustive.ts';
import { allOnes, type Irq, type Observation } from '../../ops/observation.ts';
import { busOf, devfnOf, ecamDecode } from '../../topology/bdf.ts';
import type { Topology } from '../../topology/types.ts';
import { DEFAULT_ECAM, DEFAULT_RAM, ECAM_BUSES } from '../../topology/types.ts';
import type { RunResult, Session } from '../target.ts';
import { applyOne } from '../target.ts';
import { readLe, writeLe } from '../../util/access-split.ts';
import { DeviceLink, LinkError } from './device-link.ts';
import { eventfdTakeAll } from '../../protocol/vfio-user/fd-socket.ts';
import { GuestRam } from './guest-ram.ts';
import { HostDecode, hostBars } from './host-decode.ts';
import { findCaps } from '../../protocol/vfio-user/pci-caps.ts';
import { DMA_READ_FLAG, DMA_WRITE_FLAG, REGION } from '../../protocol/vfio-user/messages.ts';
import { errnoName } from '../../spec/errno.ts';
import type { FdSocket } from '../../protocol/vfio-user/fd-socket.ts';

const ok = (o: Partial<Observation> = {}): Observation => ({ status: 'ok', ...o });
/** A refusal as the server gave it: its errno, by name; isoroot's reason for it is the model's to predict. */
const refused = (errno: number): Observation => ({ status: 'error', errno: errnoName(errno) });
/** What the client, as the VMM, decided itself (its own decode): no evidence about the server. */
const own = (o: Observation): Observation => ({ ...o, source: 'harness' });

/** One root: its device link, guest memory and decode. */
class RootSide {
  decode!: HostDecode;
  constructor(
    readonly root: number,
    readonly dev: string,
    readonly link: DeviceLink,
    readonly ram: GuestRam,
  ) {}

  async cfgRead(off: number, size: number): Promise<number> {
    const r = await this.link.ask('REGION_READ', { offset: BigInt(off), region: REGION.CONFIG, count: size });
    return Number(readLe(r.data!, 0, size));
  }

  /**
   * Re-reads the header registers that place BARs (Command, BARs, ROM) and
   * PMCSR, and re-decodes: one read from offset 0 through PMCSR when the
   * config region holds both, else the header and PMCSR apart.
   */
  async refresh(): Promise<void> {
    const pm = this.decode.pm;
    const span = pm !== null && pm + 6 <= (this.link.regionSizes[REGION.CONFIG] ?? 0) ? Math.max(0x40, pm + 6) : 0x40;
    const r = await this.link.ask('REGION_READ', { offset: 0n, region: REGION.CONFIG, count: span });
    const head = r.data!;
    const pmcsr = pm === null ? 0 : span >= pm + 6 ? Number(readLe(head, pm + 4, 2)) : await this.cfgRead(pm + 4, 2);
    this.decode.refresh((off, size) => (pm !== null && off === pm + 4 ? pmcsr : Number(readLe(head, off, size))));
  }
}

export interface ClientSessionOptions {
  topology: Topology;
  sockets: readonly string[];
  /** Connects to socket r (a retry loop for a server isoroot started); default: once. */
  connect?: (r: number) => Promise<FdSocket>;
  /** Whether root r's device, whose config header reads `head`, is as after reset (default: yes). */
  fresh?: (r: number, head: Uint8Array) => boolean;
  /** What the servers printed, for a failure's finding. */
  output?: () => string;
  /** Connections kept open from the last session: reset with DEVICE_RESET and used again when the devices then show as after reset. */
  reuse?: KeptSides | null;
  /** Whether root r's device comes back to its power-on state by DEVICE_RESET (only those connections are reused). */
  resettable?: (r: number) => boolean;
  /** Takes the connections when the session closes cleanly, for the next one, instead of closing them. */
  keep?: (sides: KeptSides) => void;
}

/** The open connections of a closed session, with their guest memory. */
export type KeptSides = readonly RootSide[];

/** Closes kept connections that will not be used again. */
export function closeKept(sides: KeptSides): void {
  for (const s of sides) close(s);
}

/**
 * A device back to its state after reset, on its open connection: DEVICE_RESET
 * (vfio-user "Device Reset"), every DMA mapping undone, guest memory zeroed,
 * pending interrupt counts drained; then it must read back as after reset.
 * False (and the caller connects afresh) when anything of that fails.
 */
async function resetSide(s: RootSide, fresh: ClientSessionOptions['fresh']): Promise<boolean> {
  if (s.link.violation !== null) return false;
  if (typeof (await s.link.tryAsk('DEVICE_RESET', null)) === 'number') return false;
  for (const m of s.ram.table.clear()) if (typeof (await s.link.tryAsk('DMA_UNMAP', { flags: 0, address: BigInt(m.iova), size: BigInt(m.size) })) === 'number') return false;
  s.ram.zero();
  eventfdTakeAll(s.link.triggers.map((t) => t.fd));
  if (s.link.takeDepartures().length > 0) return false;
  const head = await s.link.ask('REGION_READ', { offset: 0n, region: REGION.CONFIG, count: 0x100 });
  if (fresh !== undefined && !fresh(s.root, head.data!)) return false;
  await s.refresh();
  return true;
}

export async function openClientSession(o: ClientSessionOptions): Promise<Session> {
  const sides: RootSide[] = [];
  /** Root r's kept connection, reset, when its device allows it and comes back as after reset; else null (and it is closed). */
  const unclaimed = new Set(o.reuse ?? []);
  const reused = async (r: number): Promise<RootSide | null> => {
    const s = o.reuse?.[r];
    if (s === undefined) return null;
    unclaimed.delete(s);
    if (o.resettable?.(r) === true) {
      try {
        if (await resetSide(s, o.fresh)) return s;
      } catch (e) {
        if (!(e instanceof LinkError)) throw e;
      }
    }
    close(s);
    return null;
  };
  try {
    for (let r = 0; r < o.sockets.length; r++) {
      const kept = await reused(r);
      if (kept !== null) {
        sides.push(kept);
        continue;
      }
      const link = await DeviceLink.open(o.sockets[r], o.connect === undefined ? undefined : () => o.connect!(r));
      const ram = new GuestRam(o.topology.roots[r].ram ?? DEFAULT_RAM, `isoroot-root${r}`);
      link.ram = ram;
      const side = new RootSide(r, o.topology.roots[r].devices[0].id, link, ram);
      sides.push(side);
      await link.armInterrupts();
      const head = await link.ask('REGION_READ', { offset: 0n, region: REGION.CONFIG, count: 0x100 });
      o.fresh?.(r, head.data!);
      const cfg = (off: number, size: number): number => Number(readLe(head.data!, off, size));
      const caps = findCaps(cfg);
      side.decode = new HostDecode(hostBars(cfg, (i) => link.regionSizes[i] ?? 0), caps.pm ?? null, caps.pcie ?? null);
      await side.refresh();
    }
  } catch (e) {
    for (const s of [...sides, ...unclaimed]) close(s);
    throw e;
  }
  return new ClientSession(o.topology, sides, o.output ?? (() => ''), o.keep);
}

function close(s: RootSide): void {
  s.link.close();
  s.ram.close();
}

class ClientSession implements Session {
  /** A failure ended the session: its connections are not trusted with the next one. */
  private failed = false;

  constructor(
    private readonly topology: Topology,
    private readonly sides: RootSide[],
    private readonly output: () => string,
    private readonly keep?: (sides: KeptSides) => void,
  ) {}

  apply(op: Op): Promise<Observation> {
    return applyOne(this, op);
  }

  async run(ops: readonly Op[]): Promise<RunResult> {
    const observations: Observation[] = [];
    for (let i = 0; i < ops.length; i++) {
      try {
        const o = await this.one(ops[i]);
        const irqs = this.interrupts();
        if (irqs.length > 0) o.irqs = irqs;
        const departures = this.sides.flatMap((s) => s.link.takeDepartures());
        if (departures.length > 0) o.departures = departures.map((v) => ({ field: `${v.command}.${v.field}`, message: v.message }));
        observations.push(o);
      } catch (e) {
        if (!(e instanceof LinkError)) throw e;
        this.failed = true;
        const v = e.violation ?? this.sides.find((s) => s.link.violation !== null)?.link.violation ?? undefined;
        const out = this.output().trim();
        const stderr = out === '' ? {} : { stderr: out };
        if (v !== undefined) return { observations, failure: { kind: 'protocol', index: i, message: v.message, field: `${v.command}.${v.field}`, ...stderr } };
        return { observations, failure: { kind: 'crash', index: i, message: e.message, ...stderr } };
      }
    }
    return { observations };
  }

  async close(): Promise<void> {
    if (this.keep !== undefined && !this.failed) this.keep(this.sides);
    else for (const s of this.sides) close(s);
  }

  /** Interrupts signalled since the last op, on every root (a device may signal during another root's op). */
  private interrupts(): Irq[] {
    const out: Irq[] = [];
    const all = this.sides.flatMap((s) => s.link.triggers.map((t) => ({ s, t })));
    const counts = eventfdTakeAll(all.map((x) => x.t.fd));
    all.forEach(({ s, t }, i) => {
      for (let k = 0; k < Number(counts[i]); k++) {
        if (t.index === 0) out.push({ space: s.root, dev: s.dev, kind: 'intx', level: 1 });
        else out.push({ space: s.root, dev: s.dev, kind: t.index === 1 ? 'msi' : 'msix', vector: t.vector });
      }
    });
    return out;
  }

  private side(root: number): RootSide | null {
    return this.sides[root] ?? null;
  }

  private async one(op: Op): Promise<Observation> {
    // Linux VFIO's user API is a kernel's, not a vfio-user server's.
    if (needs(op, 'vfio')) return own({ status: 'error', reason: 'unsupported' });
    switch (op.op) {
      case 'cfg.read':
      case 'cfg.write': {
        const s = this.side(op.root);
        if (s === null) return own({ status: 'error', reason: 'no-device' });
        return this.config(s, busOf(op.bdf), devfnOf(op.bdf), op.reg, op.size, writeValue(op));
      }
      case 'mmio.read':
      case 'mmio.write':
        return this.memory(op.root, op.addr, op.size, writeValue(op));
      case 'pio.read':
      case 'pio.write': {
        const s = this.side(op.root);
        if (s === null) return own({ status: 'error', reason: 'no-device' });
        const value = writeValue(op);
        const p = s.decode.lookup({ addr: op.port, io: true });
        if (p === null) return own(value === null ? { status: 'ma', value: allOnes(op.size) } : { status: 'ma' });
        return this.region(s, p.region, op.port - p.base, op.size, value);
      }
      case 'dma.map': {
        const s = this.side(op.root);
        if (s === null) return own({ status: 'error', reason: 'no-device' });
        if (op.domain !== 0) return own({ status: 'error', reason: 'no-domain' });
        const flags = (op.perm.includes('r') ? DMA_READ_FLAG : 0) | (op.perm.includes('w') ? DMA_WRITE_FLAG : 0);
        const msg = s.ram.byMessages(op);
        // Alignment is the server's to require or not (choice dma-map.alignment): the client sends what it is given.
        const r = await s.link.tryAsk('DMA_MAP', { flags, offset: msg ? 0n : BigInt(op.gpa), address: BigInt(op.iova), size: BigInt(op.size) }, msg ? [] : [s.ram.fd]);
        if (typeof r === 'number') return refused(r);
        s.ram.table.map({ iova: op.iova, size: op.size, gpa: op.gpa, perm: op.perm }, 'any');
        return ok();
      }
      case 'dma.unmap': {
        const s = this.side(op.root);
        if (s === null) return own({ status: 'error', reason: 'no-device' });
        if (op.domain !== 0) return own({ status: 'error', reason: 'no-domain' });
        const r = await s.link.tryAsk('DMA_UNMAP', { flags: 0, address: BigInt(op.iova), size: BigInt(op.size) });
        if (typeof r === 'number') return refused(r);
        s.ram.table.unmap(op.iova, op.size, 'any');
        return ok();
      }
      case 'region.read':
      case 'region.write': {
        // The hostile vocabulary too: past the end, beyond the negotiated transfer size, the ROM written.
        const s = this.sides.find((x) => x.dev === op.dev);
        if (s === undefined) return own({ status: 'error', reason: 'no-device' });
        const body = { offset: BigInt(op.offset), region: op.region, count: 'data' in op ? op.data.length : op.count };
        if (!('data' in op)) {
          const r = await s.link.tryAsk('REGION_READ', body);
          return typeof r === 'number' ? refused(r) : ok({ data: r.data ?? new Uint8Array(0) });
        }
        const r = await s.link.tryAsk('REGION_WRITE', { ...body, data: op.data });
        if (typeof r === 'number') return refused(r);
        if (op.region === REGION.CONFIG && s.decode.affectedBy(op.offset, op.data.length)) await s.refresh();
        return ok();
      }
      case 'dev.reset': {
        const s = this.sides.find((x) => x.dev === op.dev);
        if (s === undefined) return own({ status: 'error', reason: 'no-device' });
        const r = await s.link.tryAsk('DEVICE_RESET', null);
        if (typeof r === 'number') return refused(r);
        await s.refresh();
        return ok();
      }
      // One device per connection, one DMA space: no IOMMU domains, PASIDs, emulators, hot-plug or virtual clock here.
      case 'dma.attach':
      case 'dma.detach':
      case 'dma.read':
      case 'dma.write':
      case 'pasid.alloc':
      case 'pasid.free':
      case 'pasid.bind':
      case 'pasid.unbind':
      case 'pasid.invalidate':
      case 'emu.map-bdf':
      case 'emu.unmap-bdf':
      case 'emu.map-range':
      case 'emu.unmap-range':
      case 'dev.plug':
      case 'dev.unplug':
      case 'root.reset':
      case 'clock.step':
        return own({ status: 'error', reason: 'unsupported' });
    }
    return unhandled(op);
  }

  /** A CPU access to a root's memory space: RAM, then the ECAM window, then the BARs (platform decoders outrank PCI). */
  private async memory(root: number, addr: number, size: number, value: bigint | null): Promise<Observation> {
    const s = this.side(root);
    if (s === null) return own({ status: 'error', reason: 'no-device' });
    if (addr + size <= s.ram.size) {
      if (value === null) return ok({ value: readLe(s.ram.read(addr, size), 0, size) });
      const b = new Uint8Array(size);
      writeLe(b, 0, size, value);
      s.ram.write(addr, b);
      return ok();
    }
    const ecam = this.topology.roots[root].ecam === undefined ? DEFAULT_ECAM : this.topology.roots[root].ecam;
    if (ecam !== null && addr >= ecam && addr < ecam + ECAM_BUSES * 0x100000) {
      // PCIe Base §7.2.2: bus, device, function and register from the offset; 8 bytes are two dwords.
      const { bus, devfn, reg } = ecamDecode(addr - ecam);
      if (size < 8) return this.config(s, bus, devfn, reg, size, value);
      const lo = await this.config(s, bus, devfn, reg, 4, value === null ? null : value & 0xffffffffn);
      const hi = await this.config(s, bus, devfn, reg + 4, 4, value === null ? null : value >> 32n);
      if (value === null) lo.value = (lo.value ?? 0n) | ((hi.value ?? 0n) << 32n);
      return lo;
    }
    const p = s.decode.lookup({ addr, io: false });
    if (p === null) return own(value === null ? { status: 'ma', value: allOnes(size) } : { status: 'ma' });
    return this.region(s, p.region, addr - p.base, size, value);
  }

  /** A config access on the root's bus: the device is 00:00.0, nobody else answers (PCIe Base §7.3.1: UR). */
  private async config(s: RootSide, bus: number, devfn: number, reg: number, size: number, value: bigint | null): Promise<Observation> {
    if (bus !== this.topology.roots[s.root].bus || devfn !== 0) return own(value === null ? { status: 'ur', value: allOnes(size) } : { status: 'ur' });
    // Past the config region (256 bytes for a conventional PCI function) there is no config space: reads
    // give all ones and writes go nowhere, as QEMU's vfio-pci answers them, without a message.
    if (reg + size > (s.link.regionSizes[REGION.CONFIG] ?? 0)) return own(value === null ? ok({ value: allOnes(size) }) : ok());
    const o = await this.region(s, REGION.CONFIG, reg, size, value);
    if (value !== null && o.status === 'ok' && s.decode.affectedBy(reg, size)) await s.refresh();
    return o;
  }

  private async region(s: RootSide, region: number, offset: number, size: number, value: bigint | null): Promise<Observation> {
    if (value === null) {
      const r = await s.link.tryAsk('REGION_READ', { offset: BigInt(offset), region, count: size });
      if (typeof r === 'number') return refused(r);
      return ok({ value: readLe(r.data!, 0, size) });
    }
    const data = new Uint8Array(size);
    writeLe(data, 0, size, value);
    const r = await s.link.tryAsk('REGION_WRITE', { offset: BigInt(offset), region, count: size, data });
    return typeof r === 'number' ? refused(r) : ok();
  }
}
