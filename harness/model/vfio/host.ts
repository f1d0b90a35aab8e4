/**
 * Linux's VFIO as a user of it sees it (linux/vfio.h; drivers/vfio,
 * 6.1): drivers bound to devices, group files, containers with their
 * IOMMU model and type1 mappings, device files. Each prediction names the
 * rule it rests on (harness/spec/rules.ts). What isoroot itself refuses
 * before any syscall (a file it does not hold) is EBADF, so that a trace
 * never asks the kernel to act on a file that is not there.
 */
import type { KindsNeeding, OpOf } from '../../ops/catalog.ts';
import type { Observation } from '../../ops/observation.ts';
import type { RuleId } from '../../spec/rules.ts';
import { walkDevices, type DeviceSpec, type Topology } from '../../topology/types.ts';
import { vfioReason } from './errno-reasons.ts';
import { groupNodes, predictGroups, type Group } from './groups.ts';
import { regionInfo } from './regions.ts';

export type Driver = 'vfio-pci' | 'native' | 'none';
export const DRIVER_CODE: Record<Driver, bigint> = { none: 0n, 'vfio-pci': 1n, native: 2n };

const PAGE = 0x1000;

interface Mapping {
  iova: number;
  size: number;
  offset: number;
  perm: 'r' | 'w' | 'rw';
}

/** A container as the kernel holds it: it lives while its file is open or a group is in it. */
interface Container {
  /** The trace's index, which the file had when it was opened. */
  index: number;
  open: boolean;
  groups: Set<Group>;
  iommu: 'type1' | 'type1v2' | null;
  mappings: Mapping[];
  /** Pages that were mapped and are no longer (for coverage: DMA after an unmap). */
  unmapped: Set<number>;
}

/** The devices that have a driver of their own in Debian's cloud kernel: virtio's (virtio-pci); PCI Express ports (pcieport). */
export function nativeDriver(d: DeviceSpec): boolean {
  return d.kind === 'root-port' || (d.kind === 'opaque' && d.qdev?.startsWith('virtio-') === true);
}

/**
 * Drivers that use DMA through the kernel's own domain, and so make a
 * group not viable; pcieport does no DMA (driver_managed_dma), nor do
 * bridges without a driver.
 */
const dmaDriver = (d: DeviceSpec, drv: Driver): boolean => drv === 'native' && d.kind !== 'root-port';

type VfioOp = OpOf<KindsNeeding<'vfio'>>;

export class VfioHost {
  private readonly specs = new Map<string, DeviceSpec>();
  /** Walk order: the bit of each device in a members mask. */
  private readonly index = new Map<string, number>();
  private readonly groupOf = new Map<string, Group>();
  /** Devices with a reset method (VFIO_DEVICE_FLAGS_RESET). */
  private readonly resettable = new Set<string>();
  /** Devices Linux sees as PCI Express functions: virtio's below a root port (QEMU makes them so there). */
  private readonly pcie = new Set<string>();
  private drivers = new Map<string, Driver>();
  private openGroups = new Set<Group>();
  /**
   * Open group files whose last VFIO device was unbound: the kernel took the
   * group out of its container and cut the file from the IOMMU group
   * (vfio_device_remove_group), so it answers ENODEV; binding a device again
   * makes a new group file, which opens while the dead one is still held.
   */
  private deadGroups = new Set<Group>();
  private groupContainer = new Map<Group, Container>();
  private containers = new Map<number, Container>();
  private openDevices = new Set<string>();
  /** Command register Memory Space bit as written through the config region, per open device. */
  private memoryOff = new Set<string>();

  constructor(topology: Topology) {
    let i = 0;
    for (const { dev, parent } of walkDevices(topology)) {
      if (dev.kind === 'opaque' && parent?.kind === 'root-port') this.pcie.add(dev.id);
      this.specs.set(dev.id, dev);
      this.index.set(dev.id, i++);
      this.drivers.set(dev.id, nativeDriver(dev) ? 'native' : 'none');
    }
    for (const g of predictGroups(topology)) for (const m of g.members) this.groupOf.set(m, g);
    const perBus = new Map<string, number>();
    const nodes = groupNodes(topology);
    for (const n of nodes) perBus.set(n.bus, (perBus.get(n.bus) ?? 0) + 1);
    // A reset method (pci_reset_function): edu and pci-testdev have no FLR and no power management, so only a bus
    // reset remains, which needs the device alone below a bridge (pci_parent_bus_reset, pci_dev_reset_slot_function).
    for (const n of nodes) if (n.parent !== null && perBus.get(n.bus) === 1 && this.specs.get(n.id)!.children === undefined) this.resettable.add(n.id);
  }

  /** The group the model puts a device in, and why. */
  group(dev: string): Group | undefined {
    return this.groupOf.get(dev);
  }

  /** The device's topology entry. */
  spec(dev: string): DeviceSpec | undefined {
    return this.specs.get(dev);
  }

  /** Live mappings of the container a trace index names. */
  mappings(index: number): number {
    return this.containers.get(index)?.mappings.length ?? 0;
  }

  /** The device's container once had a mapping at this IOVA's page, which is gone: DMA there now tests an unmap. */
  wasMapped(dev: string, iova: number): boolean {
    const c = this.groupOf.has(dev) ? this.groupContainer.get(this.groupOf.get(dev)!) : undefined;
    return c !== undefined && c.unmapped.has(iova - (iova % PAGE));
  }

  /** The device's group is in a container whose file was closed (it lives on through the group). */
  orphaned(dev: string): boolean {
    const c = this.groupOf.has(dev) ? this.groupContainer.get(this.groupOf.get(dev)!) : undefined;
    return c !== undefined && !c.open;
  }

  /** Bit i set for the topology's i-th device (walk order) of a group. */
  membersMask(g: Group): bigint {
    let m = 0n;
    for (const id of g.members) m |= 1n << BigInt(this.index.get(id)!);
    return m;
  }

  apply(op: VfioOp): Observation {
    // The machine's own functions and the agent's channel are never handed to VFIO: a VFIO user of this guest has no business there.
    if ('dev' in op && op.op !== 'vfio.group.members' && this.specs.get(op.dev)?.builtin === true) return refuse('ENODEV', 'op.names');
    switch (op.op) {
      case 'vfio.bind':
        return this.bind(op);
      case 'vfio.group.open': {
        const g = this.groupOf.get(op.dev);
        if (g === undefined) return refuse('ENODEV', 'op.names');
        if (!g.members.some((m) => this.drivers.get(m) === 'vfio-pci')) return refuse('ENOENT', 'vfio.group.file');
        // A device's file holds its group's file: closed by the user, the group stays open until its devices close.
        if ((this.openGroups.has(g) && !this.deadGroups.has(g)) || g.members.some((m) => this.openDevices.has(m))) return refuse('EBUSY', 'vfio.group.file');
        this.openGroups.add(g);
        this.deadGroups.delete(g);
        return ok('vfio.group.file');
      }
      case 'vfio.group.close': {
        const g = this.heldGroup(op.dev);
        if (g === null) return notHeld();
        // Closing the file takes the group out of its container (vfio_group_fops_release), once no device of it is open.
        this.openGroups.delete(g);
        this.deadGroups.delete(g);
        if (!g.members.some((m) => this.openDevices.has(m))) this.detach(g);
        return ok('vfio.group.file');
      }
      case 'vfio.group.status': {
        const g = this.heldGroup(op.dev);
        if (g === null) return notHeld();
        if (this.deadGroups.has(g)) return refuse('ENODEV', 'vfio.group.file');
        const inContainer = this.groupContainer.has(g);
        const viable = inContainer || !g.members.some((m) => dmaDriver(this.specs.get(m)!, this.drivers.get(m)!));
        return { status: 'ok', value: (viable ? 1n : 0n) | (inContainer ? 2n : 0n), rule: 'vfio.viability' };
      }
      case 'vfio.group.members': {
        const g = this.groupOf.get(op.dev);
        if (g === undefined) return refuse('ENODEV', 'op.names');
        return { status: 'ok', value: this.membersMask(g), rule: 'isolation.vfio-group', valueRule: g.rule };
      }
      case 'vfio.container.open':
        if (this.containers.get(op.container)?.open === true) return refuse('EEXIST', 'vfio.container');
        this.containers.set(op.container, { index: op.container, open: true, groups: new Set(), iommu: null, mappings: [], unmapped: new Set() });
        return ok('vfio.container');
      case 'vfio.container.close': {
        const c = this.heldContainer(op.container);
        if (c === null) return notHeld();
        // The container lives on while a group is in it (its mappings with it); the trace's index is free again.
        c.open = false;
        this.containers.delete(op.container);
        return ok('vfio.container');
      }
      case 'vfio.set-container': {
        const g = this.heldGroup(op.dev);
        const c = this.heldContainer(op.container);
        if (g === null || c === null) return notHeld();
        if (this.deadGroups.has(g)) return refuse('ENODEV', 'vfio.group.file');
        if (this.groupContainer.has(g)) return refuse('EINVAL', 'vfio.container');
        if (g.members.some((m) => dmaDriver(this.specs.get(m)!, this.drivers.get(m)!))) return refuse('EPERM', 'vfio.viability');
        c.groups.add(g);
        this.groupContainer.set(g, c);
        return ok('vfio.container');
      }
      case 'vfio.unset-container': {
        const g = this.heldGroup(op.dev);
        if (g === null) return notHeld();
        if (!this.groupContainer.has(g)) return refuse('EINVAL', 'vfio.container');
        if (g.members.some((m) => this.openDevices.has(m))) return refuse('EBUSY', 'vfio.container');
        this.detach(g);
        return ok('vfio.container');
      }
      case 'vfio.set-iommu': {
        const c = this.heldContainer(op.container);
        if (c === null) return notHeld();
        // vfio_ioctl_set_iommu: a container needs a group first, and takes one model.
        if (c.groups.size === 0 || c.iommu !== null) return refuse('EINVAL', 'vfio.container');
        c.iommu = op.type;
        return ok('vfio.container');
      }
      case 'vfio.device.open': {
        const g = this.heldGroup(op.dev);
        if (g === null) return notHeld();
        if (this.openDevices.has(op.dev)) return refuse('EEXIST', 'vfio.device.open');
        if (this.deadGroups.has(g)) return refuse('ENODEV', 'vfio.group.file');
        if (this.drivers.get(op.dev) !== 'vfio-pci' || !g.members.includes(op.dev)) return refuse('ENODEV', 'vfio.device.open');
        const c = this.groupContainer.get(g);
        if (c === undefined || c.iommu === null) return refuse('EINVAL', 'vfio.device.open');
        this.openDevices.add(op.dev);
        this.memoryOff.delete(op.dev);
        return ok('vfio.device.open');
      }
      case 'vfio.device.close': {
        if (!this.openDevices.has(op.dev)) return notHeld();
        this.openDevices.delete(op.dev);
        const g = this.groupOf.get(op.dev)!;
        if (!this.openGroups.has(g) && !g.members.some((m) => this.openDevices.has(m))) this.detach(g);
        return ok('vfio.device.open');
      }
      case 'vfio.device.info': {
        if (!this.openDevices.has(op.dev)) return notHeld();
        // VFIO_DEVICE_FLAGS_RESET (bit 0) where a reset method exists; VFIO_DEVICE_FLAGS_PCI (bit 1); nine PCI regions.
        const value = (this.resettable.has(op.dev) ? 1n : 0n) | 2n | (9n << 32n);
        // A virtio device may also reset through power management, which the model does not follow: its RESET bit is unknown.
        return this.specs.get(op.dev)!.kind === 'opaque' ? { status: 'ok', value, known: ~1n, rule: 'vfio.reset' } : { status: 'ok', value, rule: 'vfio.reset' };
      }
      case 'vfio.region.info': {
        if (!this.openDevices.has(op.dev)) return notHeld();
        const spec = this.specs.get(op.dev)!;
        const r = regionInfo(spec, op.region, this.pcie.has(op.dev));
        if (r === null) return refuse('EINVAL', 'vfio.region');
        // A device the model does not emulate (virtio's): its regions are its own.
        if (spec.kind === 'opaque') return { status: 'ok', unknown: true, rule: 'vfio.region' };
        return { status: 'ok', value: BigInt(r.size) | (BigInt(r.flags) << 48n), rule: 'vfio.region' };
      }
      case 'vfio.region.read':
      case 'vfio.region.write':
        return this.regionAccess(op);
      case 'vfio.dma.map': {
        const c = this.heldContainer(op.container);
        if (c === null) return notHeld();
        if (c.iommu === null) return refuse('EINVAL', 'vfio.dma.map');
        if (op.size === 0 || (op.iova | op.size | op.offset) % PAGE !== 0) return refuse('EINVAL', 'vfio.dma.map');
        if (c.mappings.some((m) => m.iova < op.iova + op.size && op.iova < m.iova + m.size)) return refuse('EEXIST', 'vfio.dma.map');
        c.mappings.push({ iova: op.iova, size: op.size, offset: op.offset, perm: op.perm });
        return ok('vfio.dma.map');
      }
      case 'vfio.dma.unmap':
        return this.unmap(op);
      case 'vfio.reset':
        if (!this.openDevices.has(op.dev)) return notHeld();
        if (!this.resettable.has(op.dev)) return refuse('EINVAL', 'vfio.reset');
        // pci_reset_function saves and restores the config space: the Command register comes back as it was.
        return ok('vfio.reset');
      case 'vfio.dma':
        return this.dma(op);
    }
  }

  private bind(op: OpOf<'vfio.bind'>): Observation {
    const spec = this.specs.get(op.dev);
    if (spec === undefined) return refuse('ENODEV', 'op.names');
    const cur = this.drivers.get(op.dev)!;
    // Unbinding a device whose file is open waits for the user to close it (vfio_unregister_group_dev): isoroot does not ask.
    if (cur === 'vfio-pci' && op.driver !== 'vfio-pci' && this.openDevices.has(op.dev)) return refuse('EBUSY', 'vfio.viability');
    let after: Driver;
    if (op.driver === 'none') after = 'none';
    // vfio-pci takes type 0 headers only (vfio_pci_probe): a bridge, unbound from its driver on the way, is left without one.
    else if (op.driver === 'vfio-pci') after = spec.kind === 'root-port' || spec.kind === 'bridge' ? 'none' : 'vfio-pci';
    else {
      // A driver that does DMA through the kernel's domain cannot bind to a device whose group a VFIO user holds. The
      // device leaves vfio-pci first: if it was the group's last VFIO device, the group has left its container by then.
      const g = this.groupOf.get(op.dev);
      const owned = g !== undefined && this.groupContainer.has(g) && g.members.some((m) => m !== op.dev && this.drivers.get(m) === 'vfio-pci');
      after = nativeDriver(spec) && !(owned && dmaDriver(spec, 'native')) ? 'native' : 'none';
    }
    this.drivers.set(op.dev, after);
    // The group's last VFIO device gone: it leaves its container, and an open file of it is dead (vfio_device_remove_group).
    const g = this.groupOf.get(op.dev);
    if (cur === 'vfio-pci' && after !== 'vfio-pci' && g !== undefined && !g.members.some((m) => this.drivers.get(m) === 'vfio-pci')) {
      this.detach(g);
      if (this.openGroups.has(g)) this.deadGroups.add(g);
    }
    // The bind's own errno depends on sysfs's path through the write (unknown); the driver bound after is the observation.
    return { status: 'ok', value: DRIVER_CODE[after], rule: 'vfio.viability' };
  }

  private unmap(op: OpOf<'vfio.dma.unmap'>): Observation {
    const c = this.heldContainer(op.container);
    if (c === null) return notHeld();
    if (c.iommu === null) return refuse('EINVAL', 'vfio.dma.map');
    if (op.size === 0 || (op.iova | op.size) % PAGE !== 0) return refuse('EINVAL', 'vfio.dma.map');
    const end = op.iova + op.size;
    const overlapping = c.mappings.filter((m) => m.iova < end && op.iova < m.iova + m.size);
    const inside = overlapping.filter((m) => m.iova >= op.iova && m.iova + m.size <= end);
    if (overlapping.length !== inside.length && c.iommu === 'type1v2') return refuse('EINVAL', 'vfio.dma.map');
    if (c.iommu === 'type1') {
      // type1 v1 (vfio_dma_do_unmap): the overlapping mappings in IOVA order, each taken whole, until one that starts
      // before the range, which stops it.
      const gone: Mapping[] = [];
      for (const m of [...overlapping].sort((a, b) => a.iova - b.iova)) {
        if (m.iova < op.iova) break;
        gone.push(m);
      }
      c.mappings = c.mappings.filter((m) => !gone.includes(m));
      for (const m of gone) for (let a = m.iova; a < m.iova + m.size; a += PAGE) c.unmapped.add(a);
      return { status: 'ok', value: BigInt(gone.reduce((n, m) => n + m.size, 0)), rule: 'vfio.dma.map' };
    }
    c.mappings = c.mappings.filter((m) => !inside.includes(m));
    for (const m of inside) for (let a = m.iova; a < m.iova + m.size; a += PAGE) c.unmapped.add(a);
    return { status: 'ok', value: BigInt(inside.reduce((s, m) => s + m.size, 0)), rule: 'vfio.dma.map' };
  }

  private regionAccess(op: OpOf<'vfio.region.read'> | OpOf<'vfio.region.write'>): Observation {
    if (!this.openDevices.has(op.dev)) return notHeld();
    const spec = this.specs.get(op.dev)!;
    const r = regionInfo(spec, op.region, this.pcie.has(op.dev));
    // A device the model does not emulate: only its config space is known (its size, and nothing of what it holds).
    if (spec.kind === 'opaque' && op.region !== 7 && r !== null) return { status: 'ok', unknown: true, rule: 'vfio.region' };
    if (r === null || r.size === 0) return refuse('EINVAL', 'vfio.region');
    if (op.via === 'mmap' && (r.flags & 4) === 0) return refuse('EINVAL', 'vfio.region');
    if (op.offset + op.size > r.size) {
      // Config space refuses any access that does not fit (vfio_pci_config_rw: EFAULT); a BAR refuses one that starts
      // past its end (EINVAL) and cuts one that crosses it short; a mapping is never touched beyond its end (isoroot).
      if (op.via === 'pread' && op.region === 7) return refuse('EFAULT', 'vfio.region');
      if (op.via === 'pread' && op.offset >= r.size) return refuse('EINVAL', 'vfio.region');
      return { status: 'error', reason: 'past-end', rule: 'vfio.region' };
    }
    const isBar = op.region <= 5;
    if (isBar && this.memoryOff.has(op.dev) && r.kind === 'mem') return refuse(op.via === 'mmap' ? 'EFAULT' : 'EIO', 'vfio.region');
    if (op.op === 'vfio.region.write') {
      // The Command register's Memory Space Enable, which decides whether the memory BARs answer.
      if (op.region === 7 && op.offset <= 4 && op.offset + op.size > 4) {
        const cmd = Number((op.value >> BigInt(8 * (4 - op.offset))) & 0xffn);
        if ((cmd & 2) === 0) this.memoryOff.add(op.dev);
        else this.memoryOff.delete(op.dev);
      }
      return ok('vfio.region');
    }
    // What the model knows of what is read: the identity dword of config space, and edu's identification register.
    const known = op.offset === 0 && op.size <= 4 ? identity(spec, op.region, op.size) : null;
    return known === null ? { status: 'ok', unknown: true, rule: 'vfio.region' } : { status: 'ok', value: known, rule: 'vfio.region', valueRule: op.region === 7 ? 'header.identity' : 'vfio.region' };
  }

  /**
   * edu's engine writes `len` bytes from its buffer at the IOVA, page by
   * page: a page its container maps writable takes them, any other page
   * faults (VT-d fault reason 5 for both unmapped and read-only pages:
   * the model names both iova-unmapped). The value is the containers
   * whose memory changed.
   */
  private dma(op: OpOf<'vfio.dma'>): Observation {
    const spec = this.specs.get(op.dev);
    if (spec === undefined) return refuse('ENODEV', 'op.names');
    if (spec.kind !== 'edu') return { status: 'error', reason: 'unsupported', rule: 'vfio.device.open' };
    if (!this.openDevices.has(op.dev)) return { status: 'error', reason: 'unreachable', rule: 'vfio.device.open' };
    // The driver turns Memory Space and Bus Master on before it starts the engine.
    this.memoryOff.delete(op.dev);
    const c = this.groupContainer.get(this.groupOf.get(op.dev)!);
    let landed = false;
    let fault = false;
    for (let page = op.iova - (op.iova % PAGE); page < op.iova + op.len; page += PAGE) {
      const m = c?.mappings.find((x) => x.iova <= page && page < x.iova + x.size);
      if (m !== undefined && m.perm !== 'r') landed = true;
      else fault = true;
    }
    const value = landed && c !== undefined ? 1n << BigInt(c.index) : 0n;
    return fault ? { status: 'fault', reason: 'iova-unmapped', value, rule: 'isolation.vfio-container' } : { status: 'ok', value, rule: 'isolation.vfio-container' };
  }

  private heldGroup(dev: string): Group | null {
    const g = this.groupOf.get(dev);
    return g !== undefined && this.openGroups.has(g) ? g : null;
  }

  private heldContainer(index: number): Container | null {
    return this.containers.get(index) ?? null;
  }

  /** A group leaves its container; the last group to leave takes the IOMMU model and the mappings with it (vfio_container_detach_group). */
  private detach(g: Group): void {
    const c = this.groupContainer.get(g);
    if (c === undefined) return;
    this.groupContainer.delete(g);
    c.groups.delete(g);
    if (c.groups.size === 0) {
      c.iommu = null;
      c.mappings = [];
    }
  }
}

const ok = (rule: RuleId): Observation => ({ status: 'ok', rule });
const refuse = (errno: string, rule: RuleId): Observation => ({ status: 'error', reason: vfioReason(errno), errno, rule });
const notHeld = (): Observation => ({ status: 'error', reason: 'not-held', errno: 'EBADF', rule: 'vfio.container' });

function identity(d: DeviceSpec, region: number, size: number): bigint | null {
  const mask = (1n << BigInt(8 * size)) - 1n;
  if (region === 7) {
    const ids: Record<string, number> = { edu: 0x11e81234, 'pci-testdev': 0x00051b36 };
    const v = ids[d.kind] ?? (d.identity !== undefined ? d.identity.vendor | (d.identity.device << 16) : undefined);
    return v === undefined ? null : BigInt(v >>> 0) & mask;
  }
  // edu answers 4-byte reads of its registers (hw/misc/edu.c: a narrower access is not valid, and what QEMU returns
  // for it is QEMU's, not the kernel's).
  if (region === 0 && d.kind === 'edu' && size === 4) return 0x010000edn;
  return null;
}
