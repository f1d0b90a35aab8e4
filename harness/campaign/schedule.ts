/**
 * Whether a feedback run mutates a seed or draws a fresh sequence. A fixed
 * share wastes the start of a campaign, when fresh sequences still find
 * something new at every run and the first seeds are barely explored
 * material; later, fresh sequences stop finding anything and mutations of
 * seeds near the frontier do. So each origin's yield is kept: new features
 * per operation run, decayed so that the recent past counts most; the share
 * of mutations follows the two yields. It counts operations, not time, so
 * the same campaign makes the same choices on any machine.
 */
import type { Prng } from './prng.ts';

export type Origin = 'fresh' | 'mutated';

/** Weight of the past per run of that origin: about the last 200 runs count. */
const DECAY = 0.995;
/** Every origin is tried at least this often, so that its yield stays known. */
const FLOOR = 0.1;

interface Yield {
  gains: number;
  ops: number;
}

export class Schedule {
  /** A prior of one gain per 50 ops for each: neither is favoured before it ran. */
  private readonly yields: Record<Origin, Yield> = { fresh: { gains: 1, ops: 50 }, mutated: { gains: 1, ops: 50 } };

  /** The share of mutations now (with seeds to mutate). */
  get mutateShare(): number {
    const rate = (o: Origin): number => this.yields[o].gains / this.yields[o].ops;
    const m = rate('mutated');
    const f = rate('fresh');
    return Math.min(1 - FLOOR, Math.max(FLOOR, m / (m + f)));
  }

  choose(rng: Prng, seeds: number): Origin {
    return seeds > 0 && rng.next() < this.mutateShare ? 'mutated' : 'fresh';
  }

  record(origin: Origin, gained: number, ops: number): void {
    const y = this.yields[origin];
    y.gains = y.gains * DECAY + gained;
    y.ops = y.ops * DECAY + Math.max(1, ops);
  }
}
