/** Fuzzes a mutant of the model until the oracle named for it reports (the search behind the mutant suite and corpora/model). */
import type { Mutant } from '../adapters/model/mutants.ts';
import { modelTarget } from '../adapters/model/target.ts';
import { fuzz, type FuzzResult } from './fuzz.ts';

export const MUTANT_SEED = 42;
export const MUTANT_BUDGET = 20_000;

export function catchMutant(m: Mutant, seed = MUTANT_SEED, runs = MUTANT_BUDGET): Promise<FuzzResult> {
  return fuzz(modelTarget(m.name), { seed, runs, counts: (f) => (m.caughtBy as readonly string[]).includes(f.kind) });
}
