/**
 * The seed pool of a feedback campaign: sequences that reached features
 * nobody had reached before. Picking favours seeds that brought much and
 * were picked little; the pool is bounded and drops its least useful seed.
 */
import type { Op } from '../ops/catalog.ts';
import { opToJson, parseOp } from '../ops/codec.ts';
import { parseTopology } from '../topology/validate.ts';
import { canonicalTopology } from '../topology/canonical.ts';
import { JsonReader } from '../util/json-read.ts';
import type { Topology } from '../topology/types.ts';
import type { Prng } from './prng.ts';

export interface Seed {
  topology: Topology;
  ops: Op[];
  /** Features it reached first. */
  gain: number;
  picks: number;
}

export const POOL_CAP = 256;

export class SeedPool {
  readonly seeds: Seed[] = [];

  get size(): number {
    return this.seeds.length;
  }

  add(s: Seed): void {
    this.seeds.push(s);
    if (this.seeds.length > POOL_CAP) {
      let worst = 0;
      for (let i = 1; i < this.seeds.length; i++) if (score(this.seeds[i]) < score(this.seeds[worst])) worst = i;
      this.seeds.splice(worst, 1);
    }
  }

  /** A seed by score; with `on`, only among the seeds of that topology (null when it has none). */
  pick(rng: Prng): Seed;
  pick(rng: Prng, on: Topology): Seed | null;
  pick(rng: Prng, on?: Topology): Seed | null {
    const from = on === undefined ? this.seeds : this.seeds.filter((s) => s.topology === on);
    if (from.length === 0) return null;
    const total = from.reduce((n, s) => n + score(s), 0);
    let x = rng.next() * total;
    for (const s of from) {
      x -= score(s);
      if (x <= 0) return s;
    }
    return from[from.length - 1];
  }

  /**
   * Another seed on the same topology, for splicing; null if none. Seeds of
   * one topology share its object (fresh runs share a block's topology,
   * mutants their parent's, and fromJson interns them), so identity suffices.
   */
  partner(rng: Prng, of: Seed): Seed | null {
    const same = this.seeds.filter((s) => s !== of && s.topology === of.topology);
    return same.length === 0 ? null : rng.pick(same);
  }

  toJson(): unknown {
    return this.seeds.map((s) => ({ topology: canonicalTopology(s.topology), ops: s.ops.map(opToJson), gain: s.gain, picks: s.picks }));
  }

  static fromJson(file: string, v: unknown): SeedPool {
    const r = new JsonReader((p) => `${file}: ${p}`);
    const pool = new SeedPool();
    const interned = new Map<string, Topology>();
    r.array('seeds', v).forEach((x, i) => {
      const o = r.object(`seeds[${i}]`, x);
      const key = JSON.stringify(o.topology);
      const topology = interned.get(key) ?? parseTopology(o.topology, (p) => `${file}: seeds[${i}].${p}`);
      interned.set(key, topology);
      const ops = r.array(`seeds[${i}].ops`, o.ops).map((op, j) => parseOp(r, `seeds[${i}].ops[${j}]`, r.object(`seeds[${i}].ops[${j}]`, op)));
      pool.add({ topology, ops, gain: r.int(`seeds[${i}].gain`, o.gain, 0, 1e9), picks: r.int(`seeds[${i}].picks`, o.picks, 0, 1e12) });
    });
    return pool;
  }
}

const score = (s: Seed): number => (1 + s.gain) / (1 + s.picks);
