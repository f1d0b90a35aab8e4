/** isoroot fuzz: property-based fuzzing of a target against the model. */
import { fuzz } from '../../run/fuzz.ts';
import { violations } from '../../run/check.ts';
import { showOp } from '../../ops/codec.ts';
import { readTopologyFile } from '../topology-file.ts';
import { MUTANTS } from '../../adapters/model/mutants.ts';
import { ISOROOT_VERSION } from '../../version.ts';
import { intOpt, one, type CommandSpec, type Parsed } from '../args.ts';
import { TARGET_HELP, selectTarget } from '../select-target.ts';
import { showFinding, writeFindingTrace } from '../print-finding.ts';
import type { Step, TraceHeader } from '../../trace/format.ts';

export const FUZZ: CommandSpec = {
  name: 'fuzz',
  summary: 'generate topologies and operation sequences, run them on a target, check them against the model',
  usage: 'isoroot fuzz [--target T] [--mutant M] [--seed N] [--runs N] [--out DIR] [--topology FILE]',
  options: [
    { name: 'target', value: 'T', doc: `target to fuzz: ${TARGET_HELP} (default model)` },
    { name: 'mutant', value: 'M', doc: `a faulty model variant: ${MUTANTS.map((m) => m.name).join(', ')}` },
    { name: 'seed', value: 'N', doc: 'generator seed (default: from the clock; printed)' },
    { name: 'runs', value: 'N', doc: 'sequences to generate (default 1000)' },
    { name: 'out', value: 'DIR', doc: 'where minimal traces of findings go (default reports/findings)' },
    { name: 'topology', value: 'FILE', doc: 'fuzz this topology (JSON) instead of generated ones' },
    { name: 'path', value: 'P', doc: 'replay one run of a seed: the path a failure printed' },
    { name: 'timeout', value: 'MS', doc: 'per-operation timeout of exec targets (default 3000)' },
  ],
};

export async function runFuzz(p: Parsed, log: (s: string) => void): Promise<number> {
  const seed = intOpt('fuzz', p, 'seed', -(2 ** 31), 2 ** 31 - 1) ?? (Date.now() % 2 ** 31);
  const runs = intOpt('fuzz', p, 'runs', 1, 100_000_000) ?? 1000;
  const timeout = intOpt('fuzz', p, 'timeout', 1, 3_600_000);
  const out = one(p, 'out') ?? 'reports/findings';
  const topologyFile = one(p, 'topology');
  const topology = topologyFile === undefined ? undefined : await readTopologyFile(topologyFile);
  const { target, dispose } = await selectTarget('fuzz', one(p, 'target') ?? 'model', one(p, 'mutant'), timeout);
  const name = `${target.info.name}${target.info.mutant !== undefined ? ` (mutant ${target.info.mutant})` : ''}`;
  log(`isoroot ${ISOROOT_VERSION}: fuzzing ${name}, seed ${seed}, ${runs} runs`);
  const started = Date.now();
  try {
    const opts: Parameters<typeof fuzz>[1] = { seed, runs };
    if (topology !== undefined) opts.topology = topology;
    const path = one(p, 'path');
    if (path !== undefined) opts.path = path;
    const r = await fuzz(target, opts);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (r.failure === null) {
      log(`${r.numRuns} sequences in ${secs} s: no findings`);
      return 0;
    }
    const f = r.failure;
    const header: TraceHeader = {
      format: 'isoroot-trace',
      version: 1,
      topology: f.scenario.topology,
      target: { ...target.info, observes: target.capabilities.observes },
      seed,
      isoroot: ISOROOT_VERSION,
      time: new Date().toISOString(),
    };
    const vs = violations(f.findings);
    if (vs.length === 0) log('warning: the shrunk run did not fail again when rerun: the target is not deterministic');
    const lead = vs[0] ?? { kind: 'divergence', signature: 'nondeterministic', index: 0, message: '', severity: 'violation' };
    // The trace keeps every op of the minimal sequence: those the target answered with their
    // observations, and the one it failed on (and any after it) without, so a replay reaches it.
    const steps: Step[] = f.scenario.ops.map((op, i) => (i < f.executed.steps.length ? f.executed.steps[i] : { op }));
    // Written to disk before it is reported.
    const file = writeFindingTrace(out, lead, header, steps);
    log(`finding after ${f.numRuns} sequences (${secs} s), shrunk ${f.numShrinks} times to ${f.scenario.ops.length} operations:`);
    for (const x of f.findings) log(showFinding(x));
    log('minimal sequence:');
    f.scenario.ops.forEach((op, i) => log(`  #${i} ${showOp(op)}`));
    log(`trace written to ${file}`);
    const replayTarget = one(p, 'target') ?? (target.info.mutant !== undefined ? 'model' : undefined);
    log(`check again: isoroot check ${file}`);
    if (replayTarget !== undefined) log(`replay on the target: isoroot check ${file} --target '${replayTarget}'${target.info.mutant !== undefined ? ` --mutant ${target.info.mutant}` : ''}`);
    log(`rerun this case: isoroot fuzz --seed ${seed} --path ${f.path}${one(p, 'target') !== undefined ? ` --target '${one(p, 'target')}'` : ''}${target.info.mutant !== undefined ? ` --mutant ${target.info.mutant}` : ''}`);
    return 1;
  } finally {
    await dispose();
  }
}
