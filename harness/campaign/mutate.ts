/**
 * Mutations of a seed sequence: truncate, splice with another seed of the
 * same topology, move to another root, perturb addresses and sizes, repeat
 * a slice at moved places, and insert or append a fresh purposeful fragment. Every mutated op is
 * brought back within its description's ranges; ops that cannot be are
 * dropped.
 */
import fc from 'fast-check';
import { routeSpace, specOf, type Op } from '../ops/catalog.ts';
import { opToJson, parseOp } from '../ops/codec.ts';
import { JsonReader } from '../util/json-read.ts';
import { walkDevices, type Topology } from '../topology/types.ts';
import { fragmentContext, fragments } from '../../generators/fragments/index.ts';
import { firmwarePlan, plannedDevices } from '../../generators/plan.ts';
import { guardOps } from '../../generators/guard.ts';
import type { GenConstraints } from '../../generators/constraints.ts';
import type { Prng } from './prng.ts';
import type { Seed, SeedPool } from './seeds.ts';

const fragmentArbs = new WeakMap<Topology, fc.Arbitrary<Op[]> | null>();

/** One arbitrary over the purposeful fragments of a topology (cached). */
function fragmentArb(t: Topology, c: GenConstraints): fc.Arbitrary<Op[]> | null {
  if (fragmentArbs.has(t)) return fragmentArbs.get(t)!;
  const plan = firmwarePlan(t);
  const fs = fragments(fragmentContext(t, plan, c, plannedDevices(t, plan)));
  const arb = fs.length === 0 ? null : fc.oneof(...fs.map((f) => ({ arbitrary: f.arb, weight: f.weight })));
  fragmentArbs.set(t, arb);
  return arb;
}

function fresh(t: Topology, c: GenConstraints, rng: Prng): Op[] {
  const arb = fragmentArb(t, c);
  return arb === null ? [] : fc.sample(arb, { seed: rng.u32() | 0, numRuns: 1 })[0];
}

const STEPS = [0x4, 0x10, 0x100, 0x1000, 0x10000, 0x100000];
/**
 * The longest mutated sequence: about three generated ones. Appending,
 * splicing and repeating would otherwise let mutations grow to hundreds of
 * ops, and on a real target a run costs by the op.
 */
const MAX_MUTATED = 128;

function perturbNumber(rng: Prng, v: number, max: number): number {
  const step = rng.pick(STEPS);
  const n = rng.next() < 0.5 ? v + step : v - step;
  return Math.min(max, Math.max(0, n));
}

/** Changes one field of one op: an address, a size, a value or a PASID. */
function perturb(op: Op, rng: Prng): Op {
  const o = { ...op } as Record<string, unknown>;
  const keys = Object.keys(specOf(op.op).fields).filter((k) => ['addr', 'port', 'iova', 'gpa', 'start', 'size', 'len', 'value', 'reg', 'pasid'].includes(k));
  if (keys.length === 0) return op;
  const k = rng.pick(keys);
  const v = o[k];
  if (k === 'value') o[k] = rng.pick([0n, 1n, 0xffffffffn, (v as bigint) ^ 1n, (v as bigint) + 0x1000n]);
  else if (k === 'size' && routeSpace(op) !== null) o[k] = rng.pick([1, 2, 4, 8]);
  else if (k === 'pasid') o[k] = rng.pick([1, 2, 3, (v as number) + 1]);
  else if (k === 'reg') o[k] = perturbNumber(rng, v as number, 0xfff);
  else if (k === 'port') o[k] = perturbNumber(rng, v as number, 0xffff);
  else if (k === 'len') o[k] = rng.pick([1, 4, 8, 64, 4096]);
  else o[k] = perturbNumber(rng, v as number, 2 ** 52 - 1);
  return o as unknown as Op;
}

/** Fields that place an op in its space: a copy moved by a step reaches the next address, port, IOVA or PASID. */
const PLACES = ['addr', 'port', 'iova', 'pasid'] as const;

/**
 * Repeats a slice of ops up to four times, each copy moved one step further
 * (AFL's block cloning, with the places shifted): more live mappings, more
 * BARs or PASIDs at once than one generated fragment makes.
 */
function repeat(ops: Op[], rng: Prng): Op[] {
  if (ops.length === 0) return ops;
  const from = rng.int(ops.length);
  const slice = ops.slice(from, from + 1 + rng.int(Math.min(8, ops.length - from)));
  const step = rng.pick(STEPS);
  const copies: Op[] = [];
  for (let k = 1, n = 1 + rng.int(4); k <= n; k++)
    for (const op of slice) {
      const o = { ...op } as Record<string, unknown>;
      for (const f of PLACES) if (typeof o[f] === 'number') o[f] = f === 'pasid' ? (o[f] as number) + k : (o[f] as number) + k * step;
      copies.push(o as unknown as Op);
    }
  const at = from + slice.length;
  return [...ops.slice(0, at), ...copies, ...ops.slice(at)];
}

/** Swaps two roots in every op (root fields, and devices by their place within the root). */
function moveRoot(t: Topology, ops: Op[], rng: Prng): Op[] {
  const a = rng.int(t.roots.length);
  const b = (a + 1 + rng.int(t.roots.length - 1)) % t.roots.length;
  const devs = (r: number): string[] => [...walkDevices(t)].filter((d) => d.root === r).map((d) => d.dev.id);
  const da = devs(a);
  const db = devs(b);
  const swap = new Map<string, string>();
  for (let i = 0; i < Math.min(da.length, db.length); i++) {
    swap.set(da[i], db[i]);
    swap.set(db[i], da[i]);
  }
  return ops.map((op) => {
    const o = { ...op } as Record<string, unknown>;
    if (o.root === a) o.root = b;
    else if (o.root === b) o.root = a;
    if (typeof o.dev === 'string' && swap.has(o.dev)) o.dev = swap.get(o.dev);
    return o as unknown as Op;
  });
}

const reader = new JsonReader((p) => `mutated op: ${p}`);

/**
 * Brings ops back within their description (its fix), then keeps only those
 * the trace reader would accept: a mutated op must replay from its trace.
 */
function legal(ops: Op[]): Op[] {
  const out: Op[] = [];
  for (const op of ops) {
    const s = specOf(op.op);
    try {
      const fixed = (s.fix === undefined ? op : { op: op.op, ...s.fix(op as never) }) as Op;
      out.push(parseOp(reader, 'op', opToJson(fixed)));
    } catch {
      // Out of its ranges even after the fix: drop it.
    }
  }
  return out;
}

export function mutate(parent: Seed, pool: SeedPool, c: GenConstraints, rng: Prng): Op[] {
  let ops = [...parent.ops];
  const t = parent.topology;
  const rounds = 1 + rng.int(3);
  for (let i = 0; i < rounds; i++) {
    switch (rng.int(8)) {
      case 0:
        if (ops.length > 1) ops = ops.slice(0, 1 + rng.int(ops.length - 1));
        break;
      case 1: {
        const p = pool.partner(rng, parent);
        if (p !== null) ops = [...ops.slice(0, rng.int(ops.length + 1)), ...p.ops.slice(rng.int(p.ops.length + 1))];
        break;
      }
      case 2:
        if (t.roots.length > 1) ops = moveRoot(t, ops, rng);
        break;
      case 3:
      case 4:
        if (ops.length > 0) {
          const k = rng.int(ops.length);
          ops[k] = perturb(ops[k], rng);
        }
        break;
      case 5: {
        const at = rng.int(ops.length + 1);
        ops = [...ops.slice(0, at), ...fresh(t, c, rng), ...ops.slice(at)];
        break;
      }
      case 6:
        ops = repeat(ops, rng);
        break;
      default:
        ops = [...ops, ...fresh(t, c, rng)];
    }
  }
  return guardOps(t, c, legal(ops)).slice(0, MAX_MUTATED);
}
