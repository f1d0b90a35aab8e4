/** The traces under corpora/ replay: each mutant's minimal trace still shows its finding, and the clean model passes it. */
import { test, expect } from '@playwright/test';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MUTANTS } from '../harness/adapters/model/mutants.ts';
import { modelTarget } from '../harness/adapters/model/target.ts';
import { readTrace } from '../harness/trace/reader.ts';
import { execute } from '../harness/run/execute.ts';
import { checkRun, violations } from '../harness/run/check.ts';
import { CorpusStore } from '../harness/corpus/store.ts';
import { OBSERVES_ALL } from '../harness/ops/observation.ts';

const dir = join(import.meta.dirname, '..', 'corpora', 'model');

test('there is a corpus trace for every mutant, and the scenarios of the original discussions', () => {
  const traces = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  for (const m of MUTANTS) expect(traces).toContain(`${m.name}.jsonl`);
  expect(traces.filter((f) => f.startsWith('scenario-')).sort()).toEqual([
    'scenario-bdf-forwarded-neighbour-not.jsonl',
    'scenario-dma-same-iova.jsonl',
    'scenario-io-bars-same-port.jsonl',
    'scenario-pasid-freed-while-bound.jsonl',
    'scenario-two-roots-same-bar.jsonl',
  ]);
});

test('every corpus trace has metadata, and the clean model passes every fixed one', async () => {
  for (const e of new CorpusStore(dir).list()) {
    expect(e.meta.firstSeen).not.toBe('unknown');
    expect(e.meta.status).toBe('fixed');
    const t = await readTrace(e.trace);
    const run = await execute(modelTarget(), t.header.topology, t.steps.map((s) => s.op));
    expect(violations(checkRun(t.header.topology, OBSERVES_ALL, run.steps)), e.meta.name).toEqual([]);
  }
});

for (const [scenario, mutant, kind] of [
  ['io-bars-same-port', 'shared-io-space', 'collision'],
  ['dma-same-iova', 'global-dma', 'leak'],
  ['pasid-freed-while-bound', 'pasid-survives-free', 'leak'],
  ['bdf-forwarded-neighbour-not', 'emulator-bdf-mask', 'misroute'],
] as const)
  test(`scenario ${scenario} catches ${mutant}`, async () => {
    const t = await readTrace(join(dir, `scenario-${scenario}.jsonl`));
    const run = await execute(modelTarget(mutant), t.header.topology, t.steps.map((s) => s.op));
    expect(violations(checkRun(t.header.topology, OBSERVES_ALL, run.steps)).map((f) => f.kind)).toContain(kind);
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
