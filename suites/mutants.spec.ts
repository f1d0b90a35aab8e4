/**
 * Every mutant of the model must be caught by the oracle named for it,
 * within 20 000 generated sequences, with a shrunk trace of at most 12
 * operations that reproduces the finding when replayed.
 */
import { test, expect } from '@playwright/test';
import { MUTANTS } from '../harness/adapters/model/mutants.ts';
import { modelTarget } from '../harness/adapters/model/target.ts';
import { MUTANT_BUDGET, catchMutant } from '../harness/run/catch-mutant.ts';
import { execute } from '../harness/run/execute.ts';
import { checkRun, violations } from '../harness/run/check.ts';
import { showOp } from '../harness/ops/codec.ts';

const BUDGET = MUTANT_BUDGET;
const MAX_OPS = 12;

for (const m of MUTANTS) {
  test(`${m.name} (${m.description}) is caught by ${m.caughtBy.join(' or ')}`, async () => {
    const target = modelTarget(m.name);
    const named = (k: string): boolean => (m.caughtBy as readonly string[]).includes(k);
    const r = await catchMutant(m);
    expect(r.failure, `not caught within ${BUDGET} sequences`).not.toBeNull();
    const f = r.failure!;
    expect(f.numRuns).toBeLessThanOrEqual(BUDGET);
    const trace = f.scenario.ops.map(showOp).join('\n');
    expect(f.scenario.ops.length, `shrunk trace too long:\n${trace}`).toBeLessThanOrEqual(MAX_OPS);
    const caught = violations(f.findings).filter((x) => named(x.kind));
    expect(caught.length).toBeGreaterThan(0);
    // Replaying the minimal trace on the mutant reproduces it; on the clean model it is clean.
    const again = await execute(target, f.scenario.topology, f.scenario.ops);
    const findings = violations(checkRun(f.scenario.topology, target.capabilities.observes, again.steps));
    expect(findings.map((x) => x.signature)).toContain(caught[0].signature);
    const clean = await execute(modelTarget(), f.scenario.topology, f.scenario.ops);
    expect(violations(checkRun(f.scenario.topology, target.capabilities.observes, clean.steps))).toEqual([]);
    test.info().annotations.push({ type: 'caught', description: `after ${f.numRuns} sequences, ${f.scenario.ops.length} ops: ${caught[0].message}` });
  });
}
