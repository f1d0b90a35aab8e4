/**
 * Minimal traces. A sequence fast-check generated is shrunk by fast-check
 * itself (the same seed regenerates it, and its shrinker simplifies values
 * as well as dropping operations). Any other sequence — mutated from a
 * seed, or imported — is shrunk by delta debugging over its operations
 * (Zeller and Hildebrandt, "Simplifying and Isolating Failure-Inducing
 * Input", 2002, harness/run/ddmin.ts). fast-check keeps a fragment's
 * operations together, so its result is delta-debugged as well.
 */
import fc from 'fast-check';
import type { Scenario } from '../../generators/sequence.ts';

export async function shrinkGenerated(arb: fc.Arbitrary<Scenario>, seed: number, fails: (s: Scenario) => Promise<boolean>): Promise<Scenario | null> {
  const r = await fc.check(
    fc.asyncProperty(arb, async (s) => !(await fails(s))),
    { seed, numRuns: 1 },
  );
  return r.failed && r.counterexample !== null ? r.counterexample[0] : null;
}
