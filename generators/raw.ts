/**
 * Raw operations drawn straight from the operation catalog's field
 * arbitraries: the noise and hostile input beside the purposeful
 * fragments (unmapped IOVAs, odd registers, random ports).
 */
import fc from 'fast-check';
import { CATALOG, OP_KINDS, specOf, type Op } from '../harness/ops/catalog.ts';
import type { OpDomain } from '../harness/ops/fields.ts';
import { walkDevices, type Topology } from '../harness/topology/types.ts';
import type { GenConstraints } from './constraints.ts';

export function opDomain(t: Topology, c: GenConstraints, buses: readonly number[]): OpDomain {
  return {
    roots: t.roots.length,
    devices: [...walkDevices(t)].map((d) => d.dev.id),
    emulators: t.emulators ?? [],
    domains: Math.max(1, ...t.roots.map((r) => r.domains ?? 0)),
    vias: c.vias,
    buses,
    ops: c.ops,
  };
}

/** An arbitrary for one op kind, derived from its description. */
export function opArb(kind: keyof typeof CATALOG, d: OpDomain): fc.Arbitrary<Op> {
  const s = specOf(kind);
  const rec = fc.record(Object.fromEntries(Object.entries(s.fields).map(([k, f]) => [k, f.arb(d)])), { requiredKeys: Object.entries(s.fields).filter(([, f]) => !f.optional).map(([k]) => k) });
  return rec.map((fields) => {
    const clean = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    const o = s.fix === undefined ? clean : s.fix(clean as never);
    return { op: kind, ...o } as unknown as Op;
  });
}

export function rawOpArb(t: Topology, c: GenConstraints, buses: readonly number[]): fc.Arbitrary<Op> {
  const d = opDomain(t, c, buses);
  const kinds = OP_KINDS.filter((k) => c.ops.includes(CATALOG[k].needs));
  return fc.oneof(...kinds.map((k) => opArb(k, d)));
}
