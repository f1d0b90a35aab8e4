/**
 * Operation sequences for a topology: a firmware-like setup (bus numbers,
 * windows, BARs placed and decode enabled, each chosen or dropped by
 * fast-check) followed by a body of purposeful fragments and raw ops.
 * Shrinking drops setup items and fragments and simplifies values.
 */
import fc from 'fast-check';
import type { Op } from '../harness/ops/catalog.ts';
import * as H from '../harness/model/header.ts';
import type { Topology } from '../harness/topology/types.ts';
import { FREE, type GenConstraints } from './constraints.ts';
import { cfg, fragmentContext, fragments, placeOps, windowOps } from './fragments/index.ts';
import { firmwarePlan, plannedDevices } from './plan.ts';
import { rawOpArb } from './raw.ts';
import { guardOps } from './guard.ts';
import { vfioSequenceArb } from './vfio.ts';

export interface SequenceOptions {
  /** Longest body, in fragments. */
  maxFragments?: number;
}

export function sequenceArb(t: Topology, c: GenConstraints = FREE, opts: SequenceOptions = {}): fc.Arbitrary<Op[]> {
  if (c.ops.includes('vfio')) return vfioSequenceArb(t);
  const plan = firmwarePlan(t);
  const devices = plannedDevices(t, plan);
  const x = fragmentContext(t, plan, c, devices);
  const frags = fragments(x);
  const body = [...frags.map((f) => ({ arbitrary: f.arb, weight: f.weight }))];
  if (c.ops.length > 0) body.push({ arbitrary: rawOpArb(t, c, plan.busesOfInterest).map((o) => [o]), weight: 3 });
  const bridges = [...plan.buses.keys()];
  const via = fc.constantFrom(...(c.vias.length > 0 ? c.vias : (['ecam'] as const)));
  const setup = c.ops.includes('config')
    ? fc.tuple(fc.subarray(bridges), fc.subarray(bridges), fc.subarray(plan.bars), fc.subarray(devices), via).map(([busesOf, windowsOf, bars, enabled, v]) => {
        const ops: Op[] = [];
        for (const b of busesOf) {
          const [p, s, u] = plan.buses.get(b)!;
          ops.push(cfg(plan.devices.get(b)!, v, H.PRIMARY_BUS, 4, BigInt(p | (s << 8) | (u << 16))));
        }
        for (const b of windowsOf) ops.push(...windowOps(x, b, v, 0, { mem: true, pref: false, io: false }));
        for (const bar of bars) ops.push(...placeOps(x, bar, bar.a, v));
        for (const d of enabled) ops.push(cfg(d, v, H.COMMAND, 2, BigInt(H.CMD_IO | H.CMD_MEMORY | H.CMD_MASTER)));
        return ops;
      })
    : fc.constant([] as Op[]);
  const bodyArb = body.length > 0 ? fc.array(fc.oneof(...body), { maxLength: opts.maxFragments ?? 30 }) : fc.constant([] as Op[][]);
  return fc.tuple(setup, bodyArb).map(([s, b]) => guardOps(t, c, [...s, ...b.flat()]));
}

/** A topology and a sequence for it. */
export interface Scenario {
  topology: Topology;
  ops: Op[];
}

export function scenarioArb(topologies: fc.Arbitrary<Topology>, c: GenConstraints = FREE, opts: SequenceOptions = {}): fc.Arbitrary<Scenario> {
  return topologies.chain((topology) => sequenceArb(topology, c, opts).map((ops) => ({ topology, ops })));
}

/** Pure random generation, the baseline that feedback must beat: operations drawn from the catalog alone. */
export function rawSequenceArb(t: Topology, c: GenConstraints = FREE, maxOps = 60): fc.Arbitrary<Op[]> {
  if (c.ops.includes('vfio')) return vfioSequenceArb(t);
  return fc.array(rawOpArb(t, c, firmwarePlan(t).busesOfInterest), { maxLength: maxOps }).map((ops) => guardOps(t, c, ops));
}
