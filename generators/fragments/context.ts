/**
 * What every fragment family shares: the topology, its firmware plan, the
 * target's constraints, each device's capability offsets, and helpers that
 * turn a planned device or BAR into config operations.
 */
import fc from 'fast-check';
import type { Op } from '../../harness/ops/catalog.ts';
import type { Via } from '../../harness/ops/fields.ts';
import { createFunction } from '../../harness/model/personalities/index.ts';
import type { Caps } from '../../harness/model/capabilities.ts';
import * as H from '../../harness/model/header.ts';
import type { Topology } from '../../harness/topology/types.ts';
import type { GenConstraints } from '../constraints.ts';
import type { BarPlan, DevicePlan, Plan } from '../plan.ts';

export interface FragmentContext {
  t: Topology;
  plan: Plan;
  c: GenConstraints;
  devices: DevicePlan[];
  caps: Map<string, Caps>;
}

export const IOVAS = [0x10000, 0x20000, 0x30000];
export const GPAS = [0x10000, 0x20000, 0x40000];
export const MSI_ADDR = 0xfee00000;

/** The k-th message address a fragment uses: a dword of the target's message window if it has one, else the x86 interrupt range. */
export function msiAddress(x: FragmentContext, k: number): number {
  const w = x.c.msiWindow;
  return w === null ? MSI_ADDR : w.base + 4 * (k % Math.floor(w.size / 4));
}

export function fragmentContext(t: Topology, plan: Plan, c: GenConstraints, devices: DevicePlan[]): FragmentContext {
  const caps = new Map<string, Caps>();
  for (const d of devices) caps.set(d.spec.id, createFunction(d.spec, d.root, 0, false).caps);
  return { t, plan, c, devices, caps };
}

export const viaArb = (x: FragmentContext): fc.Arbitrary<Via> => fc.constantFrom(...(x.c.vias.length > 0 ? x.c.vias : (['ecam'] as Via[])));

/** A config op addressed to a device's planned BDF, from its own root. Writes above 0xff go through ECAM. */
export function cfg(d: DevicePlan, via: Via, reg: number, size: number, value?: bigint): Op {
  const v: Via = reg > 0xff ? 'ecam' : via;
  return value === undefined ? { op: 'cfg.read', root: d.root, via: v, bdf: d.bdf, reg, size } : { op: 'cfg.write', root: d.root, via: v, bdf: d.bdf, reg, size, value };
}

export const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);

/** Where a fragment puts or finds a BAR. */
export type Spot = 'a' | 'b' | 'end' | number;

export function spotAddress(x: FragmentContext, bar: BarPlan, spot: Spot): number {
  if (spot === 'a') return bar.a;
  if (spot === 'b') return bar.b;
  if (spot === 'end') return bar.end;
  // Another BAR's packed address (of the same kind), aligned for this one: collision bait.
  const same = x.plan.bars.filter((o) => (o.kind === 'io') === (bar.kind === 'io'));
  const other = same[spot % same.length];
  return Math.floor(other.a / bar.size) * bar.size;
}

export const spotArb: fc.Arbitrary<Spot> = fc.oneof({ arbitrary: fc.constantFrom<Spot>('a', 'a', 'b', 'end'), weight: 4 }, { arbitrary: fc.nat(31), weight: 1 });

export const devOf = (x: FragmentContext, id: string): DevicePlan => x.plan.devices.get(id)!;

/** Writes a BAR's address: the low dword, then the high dword of a 64-bit BAR. */
export function placeOps(x: FragmentContext, bar: BarPlan, addr: number, via: Via): Op[] {
  const d = devOf(x, bar.dev);
  const reg = bar.region === 6 ? (d.spec.kind === 'bridge' || d.spec.kind === 'root-port' ? H.ROM_TYPE1 : H.ROM_TYPE0) : H.BAR0 + 4 * bar.region;
  const lo = BigInt(addr % 2 ** 32) | (bar.region === 6 ? 1n : 0n);
  const ops = [cfg(d, via, reg, 4, lo)];
  if (bar.kind === 'mem64') ops.push(cfg(d, via, reg + 4, 4, BigInt(Math.floor(addr / 2 ** 32))));
  return ops;
}


/** A fragment and how often to draw it. */
export interface Weighted {
  arb: fc.Arbitrary<Op[]>;
  weight: number;
}

/** The names every family uses. */
export function scope(x: FragmentContext): {
  has: (cap: GenConstraints['ops'][number]) => boolean;
  via: fc.Arbitrary<Via>;
  withCap: (k: keyof Caps) => DevicePlan[];
} {
  return {
    has: (cap) => x.c.ops.includes(cap),
    via: viaArb(x),
    withCap: (k) => x.devices.filter((d) => x.caps.get(d.spec.id)?.[k] !== undefined),
  };
}
