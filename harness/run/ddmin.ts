/**
 * Delta debugging over operations (Zeller and Hildebrandt, "Simplifying
 * and Isolating Failure-Inducing Input", 2002): what shrinks a trace that
 * fast-check did not generate, and what is left of a fragment after
 * fast-check dropped whole fragments.
 */
import type { Op } from '../ops/catalog.ts';

/** Tests for a trace shrunk by ddmin alone, and after fast-check's shrinker (on a real target each test is a run). */
export const DDMIN_BUDGET = 2000;
export const DDMIN_AFTER_FC = 300;

/** ddmin: a 1-minimal subsequence of `ops` (or of any list: the devices a topology keeps) that still fails, within `budget` tests. */
export async function ddmin<T = Op>(ops: readonly T[], fails: (ops: T[]) => Promise<boolean>, budget = DDMIN_BUDGET): Promise<T[]> {
  let cur = [...ops];
  let n = 2;
  let tests = 0;
  while (cur.length >= 2 && tests < budget) {
    const chunk = Math.ceil(cur.length / n);
    const parts: T[][] = [];
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
