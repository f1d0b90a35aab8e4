/**
 * The enumerated coverage features. The targets are black boxes, so
 * coverage comes from the reference model: which register states, BAR
 * placements, bridge window shapes, IOMMU and PASID states and routing
 * outcomes a run reached, and pairs of a routing outcome with the contract
 * of the space it happened in (or the translation it went through).
 * Every feature listed here can be reached by the generators on some
 * generated topology, except those of learned functions (kind 'learned'),
 * which only a target with functions isoroot learns has (a vfio-user
 * server's device, an imported reproducer's); combinations that cannot
 * exist are left out, each with the reason beside it.
 */

import { ISOLATION_EVENTS } from './isolation-history.ts';

/** Personalities, and 'learned': a function isoroot learned from the target (an opaque one it does not emulate counts not). */
const KINDS = ['endpoint', 'edu', 'pci-testdev', 'iommu-testdev', 'bridge', 'root-port', 'host-bridge', 'learned'] as const;

/** Routing outcomes per operation family. */
export const ROUTES: Record<'cfg' | 'mmio' | 'pio' | 'dma', readonly string[]> = {
  cfg: [...KINDS.map((k) => `dev:${k}`), 'ur', 'ma', 'emu-dev', 'emu-none', 'error'],
  // Endpoints, edu, the two testdevs and learned functions have BARs, and root ports their MSI-X BAR (QEMU's); only endpoints have a ROM.
  mmio: ['endpoint.bar', 'endpoint.rom', 'edu.bar', 'pci-testdev.bar', 'iommu-testdev.bar', 'root-port.bar', 'learned.bar', 'ram', 'ecam', 'ma', 'emu-dev', 'emu-none'],
  // IO BARs: endpoints and pci-testdev; the CF8 latch; config through CFC; nobody; emulators.
  pio: ['endpoint.bar', 'pci-testdev.bar', 'learned.bar', 'cf8', 'cfc', 'ma', 'emu-dev', 'emu-none'],
  // pasid-range cannot happen: operations carry 20-bit PASIDs and every PASID capability is 20 bits wide.
  dma: ['ok', 'ok-pasid', 'error', ...['bus-master-disabled', 'no-domain', 'iova-unmapped', 'perm', 'no-pasid-support', 'pasid-disabled', 'pasid-unbound', 'pasid-freed', 'no-memory'].map((r) => `fault:${r}`)],
};

/** DMA outcomes that each translation mode can produce. */
const DMA_PAIRS: Record<'identity' | 'domain' | 'rid-pasid' | 'pasid', readonly string[]> = {
  identity: ['ok', 'fault:bus-master-disabled', 'fault:no-memory'],
  domain: ['ok', 'fault:bus-master-disabled', 'fault:no-domain', 'fault:iova-unmapped', 'fault:perm', 'fault:no-memory'],
  // VT-d scalable mode: a request without PASID goes through RID_PASID's entry.
  'rid-pasid': ['ok', 'fault:bus-master-disabled', 'fault:pasid-unbound', 'fault:iova-unmapped', 'fault:perm', 'fault:no-memory'],
  pasid: ['ok-pasid', 'fault:bus-master-disabled', 'fault:no-pasid-support', 'fault:pasid-disabled', 'fault:pasid-unbound', 'fault:pasid-freed', 'fault:iova-unmapped', 'fault:perm', 'fault:no-memory'],
};

const BITS = ['000', '001', '010', '011', '100', '101', '110', '111'];

/**
 * BAR classes per BAR kind. A ROM is 32-bit. An IO BAR is never clipped:
 * it is at most 256 bytes and IO windows are 4 KiB aligned.
 */
const BAR_CLASSES: Record<'mem32' | 'mem64' | 'io' | 'rom', readonly string[]> = {
  mem32: ['low', 'overlap', 'below-bridge', 'clipped', 'moved', 'off'],
  mem64: ['low', 'high', 'overlap', 'below-bridge', 'clipped', 'moved', 'off'],
  io: ['low', 'overlap', 'below-bridge', 'moved', 'off'],
  rom: ['low', 'moved', 'off'],
};

/** Window states; an IO window is never short, for the reason above. */
const WINDOW_STATES: Record<'io' | 'mem' | 'pref', readonly string[]> = {
  io: ['open', 'empty', 'closed'],
  mem: ['open', 'empty', 'closed', 'short'],
  pref: ['open', 'empty', 'closed', 'short'],
};

export const EVENTS: Record<string, readonly string[]> = {
  irq: ['msi:sent', 'msix:sent', 'intx:assert', 'intx:deassert', 'msi:pending', 'msix:pending', 'msi:unmask', 'msix:unmask', 'intx:disabled'],
  iommu: ['map', 'map-exists', 'map-align', 'unmap', 'unmap-partial', 'unmap-not-mapped', 'attach', 'attach-busy', 'detach', 'detach-none', 'mappings:1', 'mappings:2-4', 'mappings:5+'],
  pasid: ['alloc', 'alloc-second', 'no-context', 'free', 'free-bound', 'free-invalid', 'bind', 'bind-bound', 'bind-invalid', 'unbind', 'unbind-not-bound', 'invalidate', 'invalidate-invalid'],
  // VT-d scalable mode: how PASID entries were cleared and invalidated, which stage a binding took, a cached
  // translation the specification still allows (and a target took), DMA through a table another device bound.
  scalable: ['unbind-present', 'unbind-zero', 'invalidate-pasid', 'invalidate-page', 'bind-first', 'bind-second', 'bind-unsupported', 'stale-allowed', 'stale-taken', 'shared-dma'],
  emu: ['map-bdf', 'map-bdf-busy', 'unmap-bdf', 'unmap-bdf-none', 'map-range', 'map-range-busy', 'unmap-range', 'unmap-range-none', 'no-emulator'],
  life: ['plug', 'plug-present', 'plug-slot', 'unplug', 'unplug-absent', 'reset', 'flr', 'root-reset', 'sec-bus-reset', 'hotplug-irq'],
  edu: ['factorial', 'liveness', 'raise', 'ack', 'dma-start', 'dma-to-ram', 'dma-from-ram', 'dma-skipped'],
  testdev: ['select-mmio', 'select-io', 'count', 'swallow'],
  // iommu-testdev: armed, and a trigger that ran a transfer.
  itd: ['arm', 'trigger'],
  // What isoroot exists for: the same place touched from two roots, mappings moved or taken away then accessed.
  ...ISOLATION_EVENTS,
};

function build(): string[] {
  const out: string[] = [];
  for (const [fam, outs] of Object.entries(ROUTES)) for (const o of outs) out.push(`route:${fam}:${o}`);
  for (const v of ['ecam', 'cf8']) for (const h of ['hit', 'miss']) out.push(`cfgvia:${v}:${h}`);
  for (const k of KINDS) for (const b of BITS) out.push(`cmd:${k}:${b}`);
  for (const [k, cs] of Object.entries(BAR_CLASSES)) for (const c of cs) out.push(`bar:${k}:${c}`);
  for (const [w, states] of Object.entries(WINDOW_STATES)) for (const s of states) out.push(`window:${w}:${s}`);
  for (const [dim, evs] of Object.entries(EVENTS)) for (const e of evs) out.push(`${dim}:${e}`);
  // Pairs: where an access went, with the contract of the space it went through.
  // 'error' is excluded: a refused config op went through no space.
  for (const fam of ['cfg', 'mmio', 'pio'] as const) for (const o of ROUTES[fam]) if (o !== 'error') for (const c of ['isolated', 'shared']) out.push(`pair:${fam}:${o}:${c}`);
  for (const [mode, outs] of Object.entries(DMA_PAIRS)) for (const o of outs) out.push(`pair:dma:${o}:${mode}`);
  return out;
}

export const UNIVERSE: readonly string[] = build();
export const UNIVERSE_SET: ReadonlySet<string> = new Set(UNIVERSE);

/**
 * Linux VFIO's features (a target whose ops are the 'vfio' family): each
 * op's outcome as the model predicts it, by errno where it refuses, and
 * the group rule of the devices it looked at.
 */
export const VFIO_EVENTS: Record<string, readonly string[]> = {
  bind: ['vfio-pci', 'native', 'none', 'EBUSY'],
  group: ['isolated', 'no-acs', 'multifunction', 'open', 'open-EBUSY', 'open-ENOENT', 'close', 'viable', 'not-viable', 'in-container'],
  container: ['open', 'close', 'set', 'set-EINVAL', 'set-EPERM', 'unset', 'unset-EINVAL', 'unset-EBUSY', 'type1v2', 'type1', 'iommu-EINVAL', 'orphan-dma'],
  device: ['open', 'open-ENODEV', 'open-EINVAL', 'close', 'reset-works', 'no-reset', 'reset', 'reset-EINVAL'],
  region: ['info-mem', 'info-io', 'info-config', 'info-none', 'info-EINVAL', 'pread', 'mmap', 'write', 'past-end', 'EINVAL', 'memory-off'],
  map: ['map', 'map-EEXIST', 'map-EINVAL', 'unmap', 'unmap-none', 'unmap-EINVAL', 'mappings:2+'],
  dma: ['landed', 'fault', 'partial', 'unreachable', 'after-unmap'],
};
export const VFIO_UNIVERSE: readonly string[] = Object.entries(VFIO_EVENTS).flatMap(([dim, evs]) => evs.map((e) => `vfio:${dim}:${e}`));

/** The features a campaign is measured against: Linux VFIO's for a target of the 'vfio' family, else the PCI model's. */
export function universeFor(vfio: boolean): { list: readonly string[]; set: ReadonlySet<string> } {
  return vfio ? { list: VFIO_UNIVERSE, set: VFIO_SET } : { list: UNIVERSE, set: UNIVERSE_SET };
}
const VFIO_SET: ReadonlySet<string> = new Set(VFIO_UNIVERSE);
/** A run's universe from the features it reached (reports and merges, which have no target to ask). */
export const universeOfFeatures = (features: Iterable<string>): { list: readonly string[]; set: ReadonlySet<string> } => universeFor([...features].some((f) => f.startsWith('vfio:')));
