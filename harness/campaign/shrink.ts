/**
 * Minimal traces. A sequence fast-check generated is shrunk by fast-check
 * itself (the same seed regenerates it, and its shrinker simplifies values
 * as well as dropping operations). Any other sequence — mutated from a
 * seed, or imported — is shrunk by delta debugging over its operations
 * (Zeller and Hildebrandt, "Simplifying and Isolating Failure-Inducing
 * Input", 2002).
 */
import fc from 'fast-check';
import type { Op } from '../ops/catalog.ts';
import type { Scenario } from '../../generators/sequence.ts';

export async function shrinkGenerated(arb: fc.Arbitrary<Scenario>, seed: number, fails: (s: Scenario) => Promise<boolean>): Promise<Scenario | null> {
  const r = await fc.check(
    fc.asyncProperty(arb, async (s) => !(await fails(s))),
    { seed, numRuns: 1 },
  );
  return r.failed && r.counterexample !== null ? r.counterexample[0] : null;
}

/** ddmin: a 1-minimal subsequence of `ops` that still fails, within `budget` tests. */
export async function ddmin(ops: readonly Op[], fails: (ops: Op[]) => Promise<boolean>, budget = 2000): Promise<Op[]> {
  let cur = [...ops];
  let n = 2;
  let tests = 0;
  while (cur.length >= 2 && tests < budget) {
    const chunk = Math.ceil(cur.length / n);
    const parts: Op[][] = [];
    for (let i = 0; i < cur.length; i += chunk) parts.push(cur.slice(i, i + chunk));
    let reduced = false;
    for (const p of parts) {
      tests++;
      if (await fails(p)) {
        cur = p;
        n = 2;
        reduced = true;
        break;
      }
    }
    if (!reduced)
      for (let i = 0; i < parts.length && tests < budget; i++) {
        const complement = parts.filter((_, j) => j !== i).flat();
        tests++;
        if (complement.length > 0 && (await fails(complement))) {
          cur = complement;
          n = Math.max(n - 1, 2);
          reduced = true;
          break;
        }
      }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  return cur;
}
