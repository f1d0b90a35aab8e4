/** A topology with its keys in one fixed order, so that traces written from equal topologies are equal bytes. */
import type { BarSpec, DeviceSpec, LearnedFunction, OpaqueIdentity, QemuLine, ReservedRange, RootSpec, Topology } from './types.ts';

function pick<T extends object>(o: T, keys: readonly (keyof T)[]): Partial<T> {
  const out: Partial<T> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

const bar = (b: BarSpec): BarSpec => pick(b, ['kind', 'size', 'prefetch']) as BarSpec;

function device(d: DeviceSpec): DeviceSpec {
  const out = pick(d, ['id', 'kind', 'slot', 'fn', 'bars', 'rom', 'caps', 'msiVectors', 'msixVectors', 'children', 'domain', 'pasidContext', 'emulator', 'present', 'identity', 'learned', 'qdev', 'builtin', 'resetPowerIndicator', 'acs', 'uid']) as DeviceSpec;
  if (d.identity !== undefined) out.identity = pick(d.identity, ['vendor', 'device', 'classCode', 'revision', 'headerType']) as OpaqueIdentity;
  if (d.bars !== undefined) out.bars = d.bars.map(bar);
  if (d.learned !== undefined) out.learned = pick(d.learned, ['config', 'wmask', 'regions', 'irqs']) as LearnedFunction;
  if (d.caps !== undefined) out.caps = [...d.caps];
  if (d.children !== undefined) out.children = d.children.map(device);
  return out;
}

function root(r: RootSpec): RootSpec {
  const out = pick(r, ['bus', 'busLimit', 'share', 'ram', 'ecam', 'cf8', 'iommu', 'scalable', 'domains', 'pasidContexts', 'reserved', 'intxRouting', 'view', 'devices']) as RootSpec;
  if (r.reserved !== undefined) out.reserved = r.reserved.map((x) => pick(x, ['space', 'base', 'size', 'name', 'pciWins']) as ReservedRange);
  if (r.intxRouting !== undefined) out.intxRouting = r.intxRouting.map((x) => ({ slot: x.slot, lines: [...x.lines] }));
  if (r.share !== undefined) out.share = pick(r.share, ['memory', 'io', 'dma', 'irq', 'pasid', 'config']);
  out.devices = r.devices.map(device);
  return out;
}

export function canonicalTopology(t: Topology): Topology {
  const out = pick(t, ['name', 'clock', 'roots', 'emulators', 'qemu']) as Topology;
  out.roots = t.roots.map(root);
  if (t.emulators !== undefined) out.emulators = [...t.emulators];
  if (t.qemu !== undefined) out.qemu = pick(t.qemu, ['args', 'machine', 'defaults', 'added']) as QemuLine;
  return out;
}
