/**
 * What a target accepts, as the generators need it: derived from the
 * target's capabilities so that generated topologies and operations stay
 * within what it supports.
 */
import { prepared, type HotplugSlots, type Target } from '../harness/adapters/target.ts';
import { PCI_CAPABILITIES, type Capability } from '../harness/ops/catalog.ts';
import { VIAS, type Via } from '../harness/ops/fields.ts';
import { CAP_NAMES, PERSONALITIES, SCALABLE_STAGES, SPACE_KINDS, type ScalableStages, type CapName, type Personality, type SpaceKind, type Topology } from '../harness/topology/types.ts';

export interface GenConstraints {
  maxRoots: number;
  maxDevices: number;
  personalities: readonly Personality[];
  /** Personalities allowed directly on roots other than root 0. */
  expanderPersonalities: readonly Personality[];
  /** Completes a generated topology as the target builds it (Target.prepare). */
  prepare: (t: Topology) => Topology;
  /** Which devices may be hot-plugged (Capabilities.hotplugSlots). */
  hotplugSlots: HotplugSlots;
  /** Capabilities an endpoint may have. */
  caps: readonly CapName[];
  /** Whether slots may hold several functions (Capabilities.multifunction). */
  multifunction: boolean;
  /** Whether root ports may be built without ACS (Capabilities.acsOptional). */
  acsOptional: boolean;
  /** Whether an emulator may host devices (Capabilities.emulatedDevices). */
  emulatedDevices: boolean;
  /** How often a sequence may repeat a lifecycle op (Capabilities.lifecycleRepeat). */
  lifecycleRepeat: number;
  /** Whether IOMMU roots may run VT-d scalable mode, where PASID contexts live (Capabilities.scalableIommu). */
  scalableIommu: readonly ScalableStages[];
  ops: readonly Capability[];
  vias: readonly Via[];
  /** Per space kind: forced sharing, forced isolation, or free. */
  contract: Partial<Record<SpaceKind, 'shared' | 'isolated'>>;
  /** Memory where the target sees messages land (its IrqView), so that fragments address MSIs there; null: anywhere. */
  msiWindow: { base: number; size: number } | null;
}

export const FREE: GenConstraints = {
  maxRoots: 8,
  maxDevices: 32,
  personalities: PERSONALITIES,
  expanderPersonalities: PERSONALITIES,
  prepare: (t) => t,
  hotplugSlots: 'any',
  caps: CAP_NAMES,
  multifunction: true,
  acsOptional: false,
  emulatedDevices: true,
  lifecycleRepeat: 0,
  scalableIommu: SCALABLE_STAGES,
  ops: PCI_CAPABILITIES,
  vias: VIAS,
  contract: {},
  msiWindow: null,
};

export function constraintsFor(target: Target): GenConstraints {
  const c = target.capabilities;
  return {
    maxRoots: Math.min(8, c.maxRoots),
    maxDevices: 32,
    personalities: c.personalities,
    expanderPersonalities: c.expanderPersonalities ?? c.personalities,
    prepare: (t) => prepared(target, t),
    hotplugSlots: c.hotplugSlots ?? 'any',
    caps: c.caps,
    multifunction: c.multifunction ?? true,
    acsOptional: c.acsOptional ?? false,
    emulatedDevices: c.emulatedDevices ?? true,
    lifecycleRepeat: c.lifecycleRepeat ?? 0,
    scalableIommu: c.scalableIommu ?? [],
    ops: c.ops,
    vias: c.vias,
    msiWindow: typeof c.observes.irqs === 'object' && c.observes.irqs.messages !== null ? { base: c.observes.irqs.messages.base, size: c.observes.irqs.messages.size } : null,
    contract: c.contract === 'topology' ? {} : Object.fromEntries(SPACE_KINDS.filter((k) => (c.contract as Record<string, string>)[k] !== undefined).map((k) => [k, (c.contract as Record<string, 'shared' | 'isolated'>)[k]])),
  };
}
