/**
 * Generated writes stay out of what the model cannot follow: the config
 * space of an opaque function (a chipset function whose registers remap
 * memory or reset the machine) and reserved platform ranges (legacy ports,
 * firmware ROM, the interrupt controllers). Reads there are fine: the
 * model predicts "unknown" and the target answers. Writes are dropped,
 * whichever way they would get there: a config write, an MMIO write into
 * ECAM, or CF8/CFC port writes. A learned function (not the platform's
 * own) takes writes to the registers the specifications define for it:
 * its command register, BARs, ROM and interrupt capabilities.
 */
import { needs, type Op } from '../harness/ops/catalog.ts';
import { unhandled } from '../harness/ops/exhaustive.ts';
import { DEFAULT_ECAM, ownerOf, walkDevices, type DeviceSpec, type ReservedRange, type Topology } from '../harness/topology/types.ts';
import { learnedWritable } from '../harness/model/learned-layout.ts';
import { firmwarePlan } from './plan.ts';
import { withinReach } from './reach.ts';
import type { GenConstraints } from './constraints.ts';

interface Fence {
  /** Config owner → BDF → the opaque function there. */
  opaque: Map<number, Map<number, DeviceSpec>>;
  /** Root → reserved ranges of its memory / IO owner. */
  memory: Map<number, ReservedRange[]>;
  io: Map<number, ReservedRange[]>;
  ecam: Map<number, number | null>;
}

const fences = new WeakMap<Topology, Fence | null>();

function fenceOf(t: Topology): Fence | null {
  if (fences.has(t)) return fences.get(t)!;
  const hasOpaque = [...walkDevices(t)].some((w) => w.dev.kind === 'opaque');
  const hasReserved = t.roots.some((r) => (r.reserved ?? []).length > 0);
  if (!hasOpaque && !hasReserved) {
    fences.set(t, null);
    return null;
  }
  const plan = firmwarePlan(t);
  const f: Fence = { opaque: new Map(), memory: new Map(), io: new Map(), ecam: new Map() };
  for (const d of plan.devices.values()) {
    if (d.spec.kind !== 'opaque') continue;
    const owner = ownerOf(t, d.root, 'config');
    if (!f.opaque.has(owner)) f.opaque.set(owner, new Map());
    f.opaque.get(owner)!.set(d.bdf, d.spec);
  }
  t.roots.forEach((_, r) => {
    const reserved = (kind: 'memory' | 'io'): ReservedRange[] => (t.roots[ownerOf(t, r, kind)].reserved ?? []).filter((x) => x.space === kind);
    f.memory.set(r, reserved('memory'));
    f.io.set(r, reserved('io'));
    const cfg = t.roots[ownerOf(t, r, 'config')];
    f.ecam.set(r, cfg.ecam === undefined ? DEFAULT_ECAM : cfg.ecam);
  });
  fences.set(t, f);
  return f;
}

const inside = (rs: readonly ReservedRange[], a: number, size: number): boolean => rs.some((x) => a < x.base + x.size && x.base < a + size);

/** The ops without the writes that would reach an opaque function or a reserved range. */
export function guardWrites(t: Topology, ops: readonly Op[]): Op[] {
  const f = fenceOf(t);
  if (f === null) return [...ops];
  const latch = new Map<number, number>();
  const opaque = (root: number, bdf: number, reg: number, size: number): boolean => {
    const d = f.opaque.get(ownerOf(t, root, 'config'))?.get(bdf);
    if (d === undefined) return false;
    return d.learned === undefined || d.builtin === true || !learnedWritable(d.learned, reg, size);
  };
  return ops.filter((op) => {
    // VFIO ops are checked by the kernel, not guarded here.
    if (needs(op, 'vfio')) return true;
    switch (op.op) {
      case 'cfg.write':
        return !opaque(op.root, op.bdf, op.via === 'cf8' ? op.reg & 0xff : op.reg, op.size);
      case 'mmio.write': {
        if (inside(f.memory.get(op.root) ?? [], op.addr, op.size)) return false;
        const ecam = f.ecam.get(op.root);
        if (ecam === null || ecam === undefined || op.addr < ecam || op.addr >= ecam + 0x1000_0000) return true;
        return !opaque(op.root, Math.floor((op.addr - ecam) / 0x1000), (op.addr - ecam) % 0x1000, op.size);
      }
      case 'pio.write': {
        if (op.port === 0xcf8 && op.size === 4) {
          latch.set(ownerOf(t, op.root, 'io'), Number(op.value));
          return true;
        }
        if (inside(f.io.get(op.root) ?? [], op.port, op.size)) return false;
        const l = latch.get(ownerOf(t, op.root, 'io')) ?? 0;
        if (op.port < 0xcfc || op.port > 0xcff || (l & 0x80000000) === 0) return true;
        return !opaque(op.root, (l >>> 8) & 0xffff, (l & 0xfc) + (op.port - 0xcfc), op.size);
      }
      // Reads, and ops that write no register of a fenced function through a root's spaces.
      case 'cfg.read':
      case 'mmio.read':
      case 'pio.read':
      case 'dma.map':
      case 'dma.unmap':
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
      case 'dev.reset':
      case 'root.reset':
      case 'region.read':
      case 'region.write':
      case 'clock.step':
        return true;
    }
    return unhandled(op);
  });
}

/** Generated ops as the target may receive them: within its reach, and without the guarded writes. */
export function guardOps(t: Topology, c: GenConstraints, ops: readonly Op[]): Op[] {
  return guardWrites(t, withinReach(t, c, ops));
}
