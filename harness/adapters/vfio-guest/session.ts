/**
 * One run on the guest: each VFIO op becomes the agent's requests, and
 * its observation is what the kernel answered (an errno, a flag word, a
 * driver link, a DMAR fault record), never something isoroot worked out.
 * Where isoroot holds no file for an op it refuses it itself, marked as
 * the harness's (oracles skip those).
 */
import { needs, VFIO_BUFFER, type Op, type OpOf } from '../../ops/catalog.ts';
import { unhandled } from '../../ops/exhaustive.ts';
import type { Observation, Reason } from '../../ops/observation.ts';
import { walkDevices, type DeviceSpec, type Topology } from '../../topology/types.ts';
import { vfioReason } from '../../model/vfio/errno-reasons.ts';
import { nativeDriver } from '../../model/vfio/host.ts';
import { TargetFailed, type RunResult, type Session } from '../target.ts';
import { AgentLost, type AgentReply } from './agent-link.ts';
import { bytesToHex, hexToBytes } from '../../util/hex.ts';
import { readLe, writeLe } from '../../util/access-split.ts';
import type { Scanned } from './devices.ts';
import type { GuestVm } from './vm.ts';

/** The byte a container's user memory holds wherever no device wrote (agent.c bclaim). */
export const FILL = 0xa5;
/** edu's registers (hw/misc/edu.c): DMA source, destination, count, command; its buffer's device address. */
const EDU = { src: 0x80, dst: 0x88, cnt: 0x90, cmd: 0x98, buffer: 0x40000, bar: 0x100000 } as const;
/** How long edu's DMA may take: its timer is 100 ms of virtual time, which TCG runs at about real time. */
const EDU_DMA_MS = 5000;

const own = (reason: Reason, errno?: string): Observation => ({ status: 'error', reason, ...(errno !== undefined ? { errno } : {}), source: 'harness' });
const okObs = (value?: bigint): Observation => (value === undefined ? { status: 'ok' } : { status: 'ok', value });
const fromErr = (r: Extract<AgentReply, { kind: 'err' }>): Observation => ({ status: 'error', reason: vfioReason(r.errno), errno: r.errno });
/** Bytes the agent read, as the little-endian value they hold; anything but hex bytes breaks its protocol. */
const leValue = (hex: string, what: string): bigint => {
  const b = hexToBytes(hex);
  if (b === null) throw new AgentLost('protocol', `agent reply to ${what}: hex bytes, got "${hex.slice(0, 40)}"`);
  return readLe(b, 0, b.length);
};
/** A value as the `size` little-endian bytes a write carries, in the agent's hex. */
const leHex = (v: bigint, size: number): string => {
  const b = new Uint8Array(size);
  writeLe(b, 0, size, v);
  return bytesToHex(b);
};

/** The driver a device has when the guest boots, by the name its bind takes back ('none': no driver). */
export function bootDriver(d: DeviceSpec): string {
  if (d.kind === 'root-port') return 'pcieport';
  return nativeDriver(d) ? 'virtio-pci' : 'none';
}

interface ContainerFile {
  name: string;
  buffer: string;
}

export class GuestSession implements Session {
  private readonly groups = new Map<number, string>();
  private readonly containers = new Map<number, ContainerFile>();
  /** Every container's memory, open or orphaned, with the trace's index it had: where a DMA may land. */
  private readonly buffers: { index: number; name: string }[] = [];
  private readonly devicesHeld = new Set<string>();
  private readonly specs = new Map<string, DeviceSpec>();
  private gen = 0;
  private closed = false;

  constructor(
    private readonly vm: GuestVm,
    private readonly topology: Topology,
    private readonly placed: ReadonlyMap<string, Scanned>,
    /** Called when the session ends: the target cleans the guest for the next one, or stops it. */
    private readonly onClose: (s: GuestSession, healthy: boolean) => Promise<void>,
  ) {
    for (const { dev } of walkDevices(topology)) this.specs.set(dev.id, dev);
  }

  private healthy = true;

  async apply(op: Op): Promise<Observation> {
    try {
      return await this.carry(op);
    } catch (e) {
      if (e instanceof AgentLost) {
        this.healthy = false;
        throw new TargetFailed({ kind: e.how, index: 0, message: e.message, stderr: `${this.vm.stderr}\n--- guest console ---\n${this.vm.console()}` });
      }
      throw e;
    }
  }

  async run(ops: readonly Op[]): Promise<RunResult> {
    const observations: Observation[] = [];
    for (let i = 0; i < ops.length; i++) {
      try {
        observations.push(await this.apply(ops[i]));
      } catch (e) {
        if (e instanceof TargetFailed) return { observations, failure: { ...e.failure, index: i } };
        throw e;
      }
    }
    return { observations };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.onClose(this, this.healthy);
  }

  /** Raw agent requests, all in flight at once (the bench's pipelined rate). */
  pipelined(requests: readonly string[]): Promise<AgentReply[]> {
    return this.vm.link.batch(requests);
  }

  /** Closes every file and frees every buffer the session holds (devices first: a group with an open device stays). */
  async release(): Promise<void> {
    const reqs = [...[...this.devicesHeld].map((d) => `dclose d-${d}`), ...[...this.groups.values()].map((g) => `gclose ${g}`), ...[...this.containers.values()].map((c) => `cclose ${c.name}`), ...this.buffers.map((b) => `bfree ${b.name}`)];
    if (reqs.length > 0) await this.vm.link.batch(reqs);
    this.devicesHeld.clear();
    this.groups.clear();
    this.containers.clear();
    this.buffers.length = 0;
  }

  private async req(r: string): Promise<Exclude<AgentReply, { kind: 'bad' }>> {
    const reply = await this.vm.link.one(r);
    if (reply.kind === 'bad') throw new AgentLost('protocol', `the agent refused "${r}" as malformed: ${reply.message} (isoroot's request; report it)`);
    return reply;
  }

  private bdf(dev: string): string | null {
    return this.placed.get(dev)?.bdf ?? null;
  }

  private groupName(dev: string): { no: number; name: string | undefined } | null {
    const g = this.placed.get(dev)?.group;
    return g === null || g === undefined ? null : { no: g, name: this.groups.get(g) };
  }

  private async carry(op: Op): Promise<Observation> {
    if (!needs(op, 'vfio')) return own('unsupported');
    // The machine's own functions (and the agent's channel) are looked at, never handed to VFIO.
    if ('dev' in op && (this.bdf(op.dev) === null || (this.specs.get(op.dev)?.builtin === true && op.op !== 'vfio.group.members'))) return own('no-device', 'ENODEV');
    switch (op.op) {
      case 'vfio.bind':
        return this.bind(op);
      case 'vfio.group.open': {
        const g = this.groupName(op.dev)!;
        // Each open under a name of its own: the kernel must refuse a second open of a live group (EBUSY); a group file
        // whose last VFIO device went is dead, and the new one replaces it.
        const name = `g${g.no}-${this.gen++}`;
        const r = await this.req(`gopen ${name} ${g.no}`);
        if (r.kind === 'err') return fromErr(r);
        if (g.name !== undefined) await this.req(`gclose ${g.name}`);
        this.groups.set(g.no, name);
        return okObs();
      }
      case 'vfio.group.close': {
        const g = this.groupName(op.dev)!;
        if (g.name === undefined) return own('not-held', 'EBADF');
        this.groups.delete(g.no);
        const r = await this.req(`gclose ${g.name}`);
        return r.kind === 'err' ? fromErr(r) : okObs();
      }
      case 'vfio.group.status': {
        const g = this.groupName(op.dev)!;
        if (g.name === undefined) return own('not-held', 'EBADF');
        const r = await this.req(`gstatus ${g.name}`);
        return r.kind === 'err' ? fromErr(r) : okObs(BigInt(r.words[0]));
      }
      case 'vfio.group.members': {
        const r = await this.req('scan');
        if (r.kind === 'err') return fromErr(r);
        const mine = this.placed.get(op.dev)!;
        const now = new Map(r.words.map((w) => [w.split(',')[0].split('/').pop()!, w.split(',')[1]]));
        const group = now.get(mine.bdf);
        let mask = 0n;
        let i = 0;
        for (const { dev } of walkDevices(this.topology)) {
          const s = this.placed.get(dev.id);
          if (s !== undefined && group !== '-' && now.get(s.bdf) === group) mask |= 1n << BigInt(i);
          i++;
        }
        return okObs(mask);
      }
      case 'vfio.container.open': {
        if (this.containers.has(op.container)) return own('exists', 'EEXIST');
        const name = `c${op.container}-${this.gen++}`;
        const buffer = `b${name}`;
        const r = await this.req(`copen ${name}`);
        if (r.kind === 'err') return fromErr(r);
        const b = await this.req(`buf ${buffer} ${VFIO_BUFFER}`);
        if (b.kind === 'err') throw new AgentLost('protocol', `the agent could not allocate ${VFIO_BUFFER} bytes: ${b.errno}`);
        await this.req(`bclaim ${buffer} ${FILL}`);
        this.containers.set(op.container, { name, buffer });
        this.buffers.push({ index: op.container, name: buffer });
        return okObs();
      }
      case 'vfio.container.close': {
        const c = this.containers.get(op.container);
        if (c === undefined) return own('not-held', 'EBADF');
        this.containers.delete(op.container);
        const r = await this.req(`cclose ${c.name}`);
        return r.kind === 'err' ? fromErr(r) : okObs();
      }
      case 'vfio.set-container': {
        const g = this.groupName(op.dev)!;
        const c = this.containers.get(op.container);
        if (g.name === undefined || c === undefined) return own('not-held', 'EBADF');
        const r = await this.req(`setc ${g.name} ${c.name}`);
        return r.kind === 'err' ? fromErr(r) : okObs();
      }
      case 'vfio.unset-container': {
        const g = this.groupName(op.dev)!;
        if (g.name === undefined) return own('not-held', 'EBADF');
        const r = await this.req(`unsetc ${g.name}`);
        return r.kind === 'err' ? fromErr(r) : okObs();
      }
      case 'vfio.set-iommu': {
        const c = this.containers.get(op.container);
        if (c === undefined) return own('not-held', 'EBADF');
        const r = await this.req(`iommu ${c.name} ${op.type === 'type1v2' ? 3 : 1}`);
        return r.kind === 'err' ? fromErr(r) : okObs();
      }
      case 'vfio.device.open': {
        const g = this.groupName(op.dev)!;
        if (g.name === undefined) return own('not-held', 'EBADF');
        if (this.devicesHeld.has(op.dev)) return own('exists', 'EEXIST');
        const r = await this.req(`dopen d-${op.dev} ${g.name} ${this.bdf(op.dev)}`);
        if (r.kind === 'err') return fromErr(r);
        this.devicesHeld.add(op.dev);
        return okObs();
      }
      case 'vfio.device.close': {
        if (!this.devicesHeld.has(op.dev)) return own('not-held', 'EBADF');
        this.devicesHeld.delete(op.dev);
        const r = await this.req(`dclose d-${op.dev}`);
        return r.kind === 'err' ? fromErr(r) : okObs();
      }
      case 'vfio.device.info': {
        if (!this.devicesHeld.has(op.dev)) return own('not-held', 'EBADF');
        const r = await this.req(`dinfo d-${op.dev}`);
        return r.kind === 'err' ? fromErr(r) : okObs(BigInt(r.words[0]) | (BigInt(r.words[1]) << 32n));
      }
      case 'vfio.region.info': {
        if (!this.devicesHeld.has(op.dev)) return own('not-held', 'EBADF');
        const r = await this.req(`rinfo d-${op.dev} ${op.region}`);
        return r.kind === 'err' ? fromErr(r) : okObs(BigInt(r.words[1]) | (BigInt(r.words[0]) << 48n));
      }
      case 'vfio.region.read':
      case 'vfio.region.write':
        return this.regionAccess(op);
      case 'vfio.dma.map': {
        const c = this.containers.get(op.container);
        if (c === undefined) return own('not-held', 'EBADF');
        const r = await this.req(`map ${c.name} ${c.buffer} ${op.offset} ${op.iova} ${op.size} ${op.perm}`);
        return r.kind === 'err' ? fromErr(r) : okObs();
      }
      case 'vfio.dma.unmap': {
        const c = this.containers.get(op.container);
        if (c === undefined) return own('not-held', 'EBADF');
        const r = await this.req(`unmap ${c.name} ${op.iova} ${op.size}`);
        return r.kind === 'err' ? fromErr(r) : okObs(BigInt(r.words[0]));
      }
      case 'vfio.reset': {
        if (!this.devicesHeld.has(op.dev)) return own('not-held', 'EBADF');
        const r = await this.req(`reset d-${op.dev}`);
        return r.kind === 'err' ? fromErr(r) : okObs();
      }
      case 'vfio.dma':
        return this.dma(op);
    }
    return unhandled(op);
  }

  private async bind(op: OpOf<'vfio.bind'>): Promise<Observation> {
    const spec = this.specs.get(op.dev)!;
    // Unbinding a device whose file is open would wait for the file to close (vfio_unregister_group_dev).
    if (this.devicesHeld.has(op.dev) && op.driver !== 'vfio-pci') return own('busy', 'EBUSY');
    const name = op.driver === 'native' ? bootDriver(spec) : op.driver;
    const r = await this.req(`bind ${this.bdf(op.dev)} ${name}`);
    // The observation is the driver bound afterwards, as sysfs shows it; the write's own errno goes with it.
    const after = r.kind === 'ok' ? r.words[0] : await this.driverNow(op.dev);
    const code = after === '-' || after === undefined ? 0n : after === 'vfio-pci' ? 1n : 2n;
    return r.kind === 'ok' ? okObs(code) : { status: 'ok', value: code, errno: r.errno };
  }

  private async driverNow(dev: string): Promise<string> {
    const r = await this.req('scan');
    if (r.kind !== 'ok') return '-';
    const w = r.words.find((x) => x.split(',')[0].endsWith(this.bdf(dev)!));
    return w?.split(',')[2] ?? '-';
  }

  private async regionAccess(op: OpOf<'vfio.region.read'> | OpOf<'vfio.region.write'>): Promise<Observation> {
    if (!this.devicesHeld.has(op.dev)) return own('not-held', 'EBADF');
    const d = `d-${op.dev}`;
    if (op.via === 'pread') {
      const r = op.op === 'vfio.region.read' ? await this.req(`pread ${d} ${op.region} ${op.offset} ${op.size}`) : await this.req(`pwrite ${d} ${op.region} ${op.offset} ${leHex(op.value, op.size)}`);
      if (r.kind === 'err') return fromErr(r);
      const moved = op.op === 'vfio.region.read' ? (r.words[0] === '-' ? 0 : r.words[0].length / 2) : Number(r.words[0]);
      if (moved < op.size) return { status: 'error', reason: 'past-end' };
      return op.op === 'vfio.region.read' ? okObs(leValue(r.words[0], 'pread')) : okObs();
    }
    // By mmap: the whole region mapped (the kernel says whether it may be), the access, unmapped.
    const info = await this.req(`rinfo ${d} ${op.region}`);
    if (info.kind === 'err') return fromErr(info);
    const size = Number(BigInt(info.words[1]));
    if (op.offset + op.size > size && (Number(BigInt(info.words[0])) & 4) !== 0) return own('past-end');
    const m = await this.req(`mmap m-${op.dev} ${d} ${op.region} 0 ${Math.max(size, 0x1000)}`);
    if (m.kind === 'err') return fromErr(m);
    if (op.offset + op.size > size) {
      await this.req(`munmap m-${op.dev}`);
      return own('past-end');
    }
    const r = op.op === 'vfio.region.read' ? await this.req(`mread m-${op.dev} ${op.offset} ${op.size}`) : await this.req(`mwrite m-${op.dev} ${op.offset} ${op.size} 0x${op.value.toString(16)}`);
    await this.req(`munmap m-${op.dev}`);
    if (r.kind === 'err') return fromErr(r);
    return op.op === 'vfio.region.read' ? okObs(BigInt(r.words[0])) : okObs();
  }

  /**
   * edu's engine, as a driver runs it: Memory Space and Bus Master on in
   * the Command register (through the config region), source its buffer,
   * destination the IOVA, the count, then start towards memory, and wait
   * until it is done. Then the kernel's DMAR fault records for this device
   * and address, and which containers' memory changed.
   */
  private async dma(op: OpOf<'vfio.dma'>): Promise<Observation> {
    const spec = this.specs.get(op.dev)!;
    if (spec.kind !== 'edu') return own('unsupported');
    if (!this.devicesHeld.has(op.dev)) return own('unreachable');
    const d = `d-${op.dev}`;
    const m = `m-${op.dev}`;
    const cmd = await this.req(`pread ${d} 7 4 2`);
    if (cmd.kind === 'err') return fromErr(cmd);
    const steps = await this.vm.link.batch([
      `pwrite ${d} 7 4 ${leHex(leValue(cmd.words[0], 'pread of the Command register') | 6n, 2)}`,
      `mmap ${m} ${d} 0 0 ${EDU.bar}`,
      `mwrite ${m} ${EDU.src} 8 ${EDU.buffer}`,
      `mwrite ${m} ${EDU.dst} 8 ${op.iova}`,
      `mwrite ${m} ${EDU.cnt} 8 ${op.len}`,
      `mwrite ${m} ${EDU.cmd} 8 3`,
      `mpoll ${m} ${EDU.cmd} 8 1 0 ${EDU_DMA_MS}`,
      `munmap ${m}`,
    ], EDU_DMA_MS + 5000);
    const failed = steps.find((s) => s.kind !== 'ok');
    if (failed !== undefined) {
      if (failed.kind === 'bad') throw new AgentLost('protocol', `the agent refused edu's DMA request as malformed: ${failed.message}`);
      if (failed.errno === 'ETIMEDOUT') throw new AgentLost('hang', `edu's DMA did not finish within ${EDU_DMA_MS} ms`);
      return fromErr(failed);
    }
    const [log, ...claims] = await this.vm.link.batch(['kmsg', ...this.buffers.map((b) => `bclaim ${b.name} ${FILL}`)]);
    let value = 0n;
    claims.forEach((c, i) => {
      if (c.kind === 'ok' && c.words.length > 0) value |= 1n << BigInt(this.buffers[i].index);
    });
    const fault = log.kind === 'ok' && log.words.some((w) => this.faultOf(decodeURIComponent(w), op));
    return fault ? { status: 'fault', reason: 'iova-unmapped', value } : okObs(value);
  }

  /** A DMAR fault record of this DMA: its requester is the device (or the bridge that takes its requests), its address in the transfer's pages. */
  private faultOf(line: string, op: OpOf<'vfio.dma'>): boolean {
    const m = /Request device \[([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])\] fault addr 0x([0-9a-f]+)/.exec(line);
    if (m === null) return false;
    const addr = Number.parseInt(m[4], 16);
    if (addr < op.iova - (op.iova % 0x1000) || addr >= op.iova + op.len) return false;
    const rid = `${m[1]}:${m[2]}.${m[3]}`;
    const bdf = this.bdf(op.dev)!.slice(5);
    return rid === bdf || rid === `${bdf.slice(0, 2)}:00.0` || [...this.placed.values()].some((s) => s.bdf.slice(5) === rid && s.path.length < this.placed.get(op.dev)!.path.length && this.placed.get(op.dev)!.path.startsWith(s.path));
  }
}
