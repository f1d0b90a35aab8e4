/**
 * What a target accepts, as the generators need it: derived from the
 * target's capabilities so that generated topologies and operations stay
 * within what it supports.
 */
import type { Capabilities } from '../harness/adapters/target.ts';
import { CAPABILITIES, type Capability } from '../harness/ops/catalog.ts';
import { VIAS, type Via } from '../harness/ops/fields.ts';
import { CAP_NAMES, PERSONALITIES, SPACE_KINDS, type CapName, type Personality, type SpaceKind } from '../harness/topology/types.ts';

export interface GenConstraints {
  maxRoots: number;
  maxDevices: number;
  personalities: readonly Personality[];
  /** Capabilities an endpoint may have. */
  caps: readonly CapName[];
  ops: readonly Capability[];
  vias: readonly Via[];
  /** Per space kind: forced sharing, forced isolation, or free. */
  contract: Partial<Record<SpaceKind, 'shared' | 'isolated'>>;
}

export const FREE: GenConstraints = {
  maxRoots: 8,
  maxDevices: 32,
  personalities: PERSONALITIES,
  caps: CAP_NAMES,
  ops: CAPABILITIES,
  vias: VIAS,
  contract: {},
};

export function constraintsFor(c: Capabilities): GenConstraints {
  return {
    maxRoots: Math.min(8, c.maxRoots),
    maxDevices: 32,
    personalities: c.personalities,
    caps: c.caps,
    ops: c.ops,
    vias: c.vias,
    contract: c.contract === 'topology' ? {} : Object.fromEntries(SPACE_KINDS.filter((k) => (c.contract as Record<string, string>)[k] !== undefined).map((k) => [k, (c.contract as Record<string, 'shared' | 'isolated'>)[k]])),
  };
}
