/**
 * Refreshes corpora/model: the minimal trace with which each mutant of the
 * model is caught (the same search as suites/mutants.spec.ts: seed 42, its
 * named oracle), and metadata for every trace there, hand-written
 * scenarios included. All are `fixed` for the model target: the clean model
 * must replay them without a violation. Rerun after changing the model or
 * the generators.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { MUTANTS } from '../harness/adapters/model/mutants.ts';
import { modelTarget } from '../harness/adapters/model/target.ts';
import { MUTANT_SEED, catchMutant } from '../harness/run/catch-mutant.ts';
import { traceToText } from '../harness/trace/writer.ts';
import { CorpusStore } from '../harness/corpus/store.ts';
import { ISOROOT_VERSION } from '../harness/version.ts';

const dir = join(import.meta.dirname, '..', 'corpora', 'model');
const store = new CorpusStore(dir);
const now = new Date().toISOString();
for (const m of MUTANTS) {
  const target = modelTarget(m.name);
  const r = await catchMutant(m);
  if (r.failure === null) throw new Error(`${m.name} was not caught`);
  const f = r.failure;
  const lead = f.findings.find((x) => x.severity === 'violation' && (m.caughtBy as readonly string[]).includes(x.kind))!;
  const text = traceToText({ format: 'isoroot-trace', version: 1, topology: f.scenario.topology, target: { ...target.info, observes: target.capabilities.observes }, seed: MUTANT_SEED, isoroot: ISOROOT_VERSION, time: now }, f.executed.steps);
  const known = store.has(m.name) ? store.meta(m.name).firstSeen : 'unknown';
  const firstSeen = known === 'unknown' ? now : known;
  store.add(m.name, text, { firstSeen, status: 'fixed', signature: lead.signature, kind: lead.kind, source: `mutant ${m.name}: ${m.description}` }, true);
  console.log(`${m.name}: ${f.scenario.ops.length} ops`);
}
for (const f of readdirSync(dir).filter((x) => x.startsWith('scenario-') && x.endsWith('.jsonl'))) {
  const name = basename(f, '.jsonl');
  const topologyName = (JSON.parse(readFileSync(join(dir, f), 'utf8').split('\n')[0]) as { topology: { name?: string } }).topology.name ?? name;
  const firstSeen = store.meta(name).firstSeen === 'unknown' ? now : store.meta(name).firstSeen;
  store.add(name, readFileSync(join(dir, f), 'utf8'), { firstSeen, status: 'fixed', source: `hand-written: ${topologyName}` }, true);
}
