/**
 * isoroot gate: the CI gate. Replays every corpus trace (regressions must
 * stay fixed), then runs a short fuzz campaign from a fixed seed, and
 * writes JUnit XML. Exit codes as fuzz: 0 clean, 1 findings, 2 usage.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { replayCorpus } from '../../gate/corpus-replay.ts';
import { junit, type TestCase } from '../../gate/junit.ts';
import { runCampaign } from '../../campaign/coordinator.ts';
import { Progress } from '../../campaign/progress.ts';
import { campaignConfig, withChoice, type CampaignConfig } from '../../campaign/run-dir.ts';
import { selectTarget } from '../../adapters/select.ts';
import { readTargetChoice, showChoice, targetOptions } from '../target-options.ts';
import { writeFileAtomic } from '../../util/atomic.ts';
import { ISOROOT_VERSION } from '../../version.ts';
import { knownLines, showCampaignFinding, showKnownSighting } from './fuzz.ts';
import { UsageError, intOpt, one, type CommandSpec, type Parsed } from '../args.ts';

export const GATE: CommandSpec = {
  name: 'gate',
  summary: 'the CI gate: replay the corpus, then a short fuzz from a fixed seed; JUnit XML',
  usage: 'isoroot gate --target T --corpus DIR [--runs N] [--seed N] [--junit FILE]',
  options: [
    ...targetOptions('target (default model)'),
    { name: 'corpus', value: 'DIR', doc: 'the corpus to replay, e.g. corpora/model' },
    { name: 'runs', value: 'N', doc: 'sequences of the fuzz part (default 200; 0 skips it)' },
    { name: 'seed', value: 'N', doc: 'seed of the fuzz part (default 1)' },
    { name: 'workers', value: 'N', doc: 'worker processes of the fuzz part (default: cores)' },
    { name: 'junit', value: 'FILE', doc: 'JUnit XML output (default reports/gate/junit.xml)' },
    { name: 'out', value: 'RUN_DIR', doc: 'run directory of the fuzz part (default reports/gate/run-<time>)' },
  ],
};

export async function runGate(p: Parsed, log: (s: string) => void): Promise<number> {
  const choice = readTargetChoice('gate', p, 'model')!;
  const targetSpec = choice.spec;
  const corpus = one(p, 'corpus');
  if (corpus === undefined) throw new UsageError('gate', '--corpus DIR is required');
  if (!existsSync(corpus)) throw new UsageError('gate', `--corpus ${corpus}: no such folder`);
  const runs = intOpt('gate', p, 'runs', 0, 100_000_000) ?? 200;
  const seed = intOpt('gate', p, 'seed', -(2 ** 31), 2 ** 31 - 1) ?? 1;
  const junitFile = one(p, 'junit') ?? join('reports', 'gate', 'junit.xml');
  const started = new Date().toISOString();
  const cases: TestCase[] = [];
  const classname = `isoroot.${targetSpec.startsWith('exec:') ? 'exec' : targetSpec}`;

  log(`isoroot ${ISOROOT_VERSION} gate: ${showChoice(choice)}, corpus ${corpus}`);
  const { target, dispose } = await selectTarget('gate', choice);
  try {
    cases.push(...(await replayCorpus(target, corpus, classname)));
  } finally {
    await dispose();
  }
  for (const c of cases) log(`  ${c.outcome === 'pass' ? 'pass' : c.outcome === 'skip' ? 'open' : 'FAIL'}  ${c.name}${c.message !== undefined ? `: ${c.message}` : ''}`);

  if (runs > 0) {
    // The corpus's known divergences and recorded open bugs are not reported again in the fuzz part.
    const config: CampaignConfig = campaignConfig(withChoice({ seed, workers: intOpt('gate', p, 'workers', 1, 256) ?? availableParallelism(), budget: { runs }, started, known: corpus }, choice));
    const dir = one(p, 'out') ?? join('reports', 'gate', `run-${started.replace(/[:.]/g, '-')}`);
    const out = new Progress(process.stdout);
    const t0 = Date.now();
    const r = await runCampaign({ config, dir, resume: false, log: (s) => out.say(s), out, show: showCampaignFinding, showKnown: showKnownSighting });
    const secs = (Date.now() - t0) / 1000;
    for (const l of knownLines(r.known)) log(l);
    for (const k of r.known) cases.push({ suite: 'fuzz', classname, name: `known: ${k.name}`, seconds: 0, outcome: 'skip', message: `seen ${k.count} times (${k.signatures.join(', ')}): ${k.reason}` });
    cases.push({ suite: 'fuzz', classname, name: `fuzz seed ${seed}, ${runs} runs`, seconds: secs, outcome: 'pass', message: `${r.summary.runs} sequences, coverage ${r.summary.covered}/${r.summary.total}, ${r.findings.length} findings (${dir})` });
    for (const f of r.findings)
      cases.push({ suite: 'fuzz', classname, name: f.signature, seconds: 0, outcome: 'fail', message: `${f.kind}: ${f.message}`, detail: `minimal trace: ${join(dir, 'findings', f.trace)}\nreplay: isoroot check ${join(dir, 'findings', f.trace)} --target ${targetSpec}` });
  }
  writeFileAtomic(junitFile, junit(`isoroot gate ${targetSpec}`, cases));
  const failed = cases.filter((c) => c.outcome === 'fail').length;
  log(`gate: ${cases.filter((c) => c.outcome === 'pass').length} passed, ${failed} failed, ${cases.filter((c) => c.outcome === 'skip').length} open; JUnit in ${junitFile}`);
  return failed > 0 ? 1 : 0;
}
