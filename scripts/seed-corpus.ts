/**
 * Refreshes corpora/model: the minimal trace with which each mutant of the
 * model is caught (the same campaign as suites/mutants.spec.ts: seed 42, stopped
 * at the first finding of its named oracle), and metadata for every trace there, hand-written
 * scenarios included. All are `fixed` for the model target: the clean model
 * must replay them without a violation. Rerun after changing the model or
 * the generators.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { MUTANTS } from '../harness/adapters/model/mutants.ts';
import { catchMutant } from '../harness/campaign/catch.ts';
import { CorpusStore } from '../harness/corpus/store.ts';

const dir = join(import.meta.dirname, '..', 'corpora', 'model');
const store = new CorpusStore(dir);
const now = new Date().toISOString();
const work = mkdtempSync(join(tmpdir(), 'isoroot-seed-corpus-'));
for (const m of MUTANTS) {
  const c = await catchMutant(m, { dir: join(work, m.name) });
  if (c.finding === null || c.trace === null) throw new Error(`${m.name} was not caught`);
  const text = readFileSync(c.trace, 'utf8');
  const known = store.has(m.name) ? store.meta(m.name).firstSeen : 'unknown';
  const firstSeen = known === 'unknown' ? now : known;
  store.add(m.name, text, { firstSeen, status: 'fixed', signature: c.finding.signature, kind: c.finding.kind, source: `mutant ${m.name}: ${m.description}` }, true);
  console.log(`${m.name}: ${c.finding.ops} ops`);
}
rmSync(work, { recursive: true, force: true });
for (const f of readdirSync(dir).filter((x) => x.startsWith('scenario-') && x.endsWith('.jsonl'))) {
  const name = basename(f, '.jsonl');
  const topologyName = (JSON.parse(readFileSync(join(dir, f), 'utf8').split('\n')[0]) as { topology: { name?: string } }).topology.name ?? name;
  const firstSeen = store.meta(name).firstSeen === 'unknown' ? now : store.meta(name).firstSeen;
  store.add(name, readFileSync(join(dir, f), 'utf8'), { firstSeen, status: 'fixed', source: `hand-written: ${topologyName}` }, true);
}
