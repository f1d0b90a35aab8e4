/**
 * Writes corpora/model/<mutant>.jsonl: the minimal trace with which each
 * mutant of the model is caught (the same search as suites/mutants.spec.ts:
 * seed 42, its named oracle). Rerun after changing the model or generators.
 */
import { join } from 'node:path';
import { MUTANTS } from '../harness/adapters/model/mutants.ts';
import { modelTarget } from '../harness/adapters/model/target.ts';
import { MUTANT_SEED, catchMutant } from '../harness/run/catch-mutant.ts';
import { writeTrace } from '../harness/trace/writer.ts';
import { ISOROOT_VERSION } from '../harness/version.ts';

const dir = join(import.meta.dirname, '..', 'corpora', 'model');
for (const m of MUTANTS) {
  const target = modelTarget(m.name);
  const r = await catchMutant(m);
  if (r.failure === null) throw new Error(`${m.name} was not caught`);
  const f = r.failure;
  writeTrace(join(dir, `${m.name}.jsonl`), { format: 'isoroot-trace', version: 1, topology: f.scenario.topology, target: { ...target.info, observes: target.capabilities.observes }, seed: MUTANT_SEED, isoroot: ISOROOT_VERSION, time: new Date().toISOString() }, f.executed.steps);
  console.log(`${m.name}: ${f.scenario.ops.length} ops`);
}
