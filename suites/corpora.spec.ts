/** The traces under corpora/ replay: each mutant's minimal trace still shows its finding, and the clean model passes it. */
import { test, expect } from '@playwright/test';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MUTANTS } from '../harness/adapters/model/mutants.ts';
import { modelTarget } from '../harness/adapters/model/target.ts';
import { readTrace } from '../harness/trace/reader.ts';
import { execute } from '../harness/run/execute.ts';
import { checkRun, violations } from '../harness/run/check.ts';

const dir = join(import.meta.dirname, '..', 'corpora', 'model');

test('there is a corpus trace for every mutant', () => {
  expect(readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()).toEqual(MUTANTS.map((m) => `${m.name}.jsonl`).sort());
});

for (const m of MUTANTS) {
  test(`corpora/model/${m.name}.jsonl`, async () => {
    const t = await readTrace(join(dir, `${m.name}.jsonl`));
    expect(t.header.target.mutant).toBe(m.name);
    const recorded = t.steps.map((s) => ({ op: s.op, obs: s.obs! }));
    const named = violations(checkRun(t.header.topology, t.header.target.observes, recorded)).filter((f) => (m.caughtBy as readonly string[]).includes(f.kind));
    expect(named.length).toBeGreaterThan(0);
    const ops = t.steps.map((s) => s.op);
    const onMutant = await execute(modelTarget(m.name), t.header.topology, ops);
    expect(violations(checkRun(t.header.topology, t.header.target.observes, onMutant.steps)).map((f) => f.signature)).toContain(named[0].signature);
    const onModel = await execute(modelTarget(), t.header.topology, ops);
    expect(violations(checkRun(t.header.topology, t.header.target.observes, onModel.steps))).toEqual([]);
  });
}
