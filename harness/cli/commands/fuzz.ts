/** isoroot fuzz: a fuzz campaign against a target, judged by the model's oracles. */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { runCampaign } from '../../campaign/coordinator.ts';
import { parseDuration, type Budget } from '../../campaign/budget.ts';
import { Progress } from '../../campaign/progress.ts';
import { campaignConfig, withChoice, type CampaignConfig } from '../../campaign/run-dir.ts';
import type { CampaignFinding } from '../../campaign/findings-store.ts';
import type { KnownSighting } from '../../campaign/known-store.ts';
import { readKnownOption, readTargetChoice, showChoice, targetOptions } from '../target-options.ts';
import type { TargetChoice } from '../../adapters/select.ts';
import { ISOROOT_VERSION } from '../../version.ts';
import { defaultKnownDir } from '../../run/known.ts';
import { readTopologyFile } from '../topology-file.ts';
import { UsageError, intOpt, one, type CommandSpec, type Parsed } from '../args.ts';

export const FUZZ: CommandSpec = {
  name: 'fuzz',
  summary: 'run a fuzz campaign on a target, with model-coverage feedback, and judge it against the model',
  usage: 'isoroot fuzz [--target T] [--mutant M] [--seed N] [--runs N | --budget 10m] [--workers N] [--out RUN_DIR] [--corpus DIR] [--resume RUN_DIR]',
  options: [
    ...targetOptions('target to fuzz (default model)'),
    { name: 'seed', value: 'N', doc: 'campaign seed (default: from the clock; printed)' },
    { name: 'runs', value: 'N', doc: 'budget in sequences (default 1000)' },
    { name: 'budget', value: 'TIME', doc: 'budget in time: 90s, 10m, 2h (instead of --runs)' },
    { name: 'workers', value: 'N', doc: `worker processes, each with its own target (default: the number of cores, ${availableParallelism()})` },
    { name: 'out', value: 'RUN_DIR', doc: 'the run directory (default reports/runs/<time>-seed<seed>)' },
    { name: 'resume', value: 'RUN_DIR', doc: 'continue the campaign in RUN_DIR, with its coverage and seeds' },
    { name: 'corpus', value: 'DIR', doc: 'also write each finding into this corpus (status open)' },
    { name: 'known', value: 'DIR', doc: 'a corpus whose known bugs (open entries and known divergences, recognised by their quirks) are counted apart, not reported again (default corpora/qemu for QEMU targets; none: report them)' },
    { name: 'shard', value: 'i/n', doc: 'run shard i of n: a deterministic part of the seed space, for n machines' },
    { name: 'topology', value: 'FILE', doc: 'fuzz this topology (JSON) instead of generated ones' },
    { name: 'no-feedback', value: null, doc: 'generate every sequence afresh (no seed pool)' },
    { name: 'generator', value: 'G', doc: 'fragments (default): purposeful sequences; raw: operations drawn at random from the catalog' },
  ],
};

/** A vfio-user device serves one client at a time: a campaign on one is one worker (shard across servers instead). */
function workersFor(c: TargetChoice, asked: number | undefined): number {
  if (!c.spec.startsWith('vfio-user:')) return asked ?? availableParallelism();
  if (asked !== undefined && asked > 1) throw new UsageError('fuzz', `--workers ${asked}: a vfio-user device serves one client at a time, so a campaign on vfio-user sockets runs one worker (run one server per worker, and --shard)`);
  return 1;
}

/** A known bug of the target, seen again: named, not reported as a finding. */
export function showKnownSighting(k: KnownSighting, path: string | null): string {
  return [`KNOWN ${k.name} (${k.status}, recognised by its ${k.by}): ${k.reason.split('\n')[0]}`, `  signature: ${k.signatures[0] ?? ''}`, ...(path === null ? [] : [`  trace: ${path}`])].join('\n');
}

/** "known: NAME, seen N times" for each known bug a campaign saw. */
export const knownLines = (ks: readonly KnownSighting[]): string[] => ks.map((k) => `known: ${k.name}, seen ${k.count} time${k.count === 1 ? '' : 's'} (${k.signatures.join(', ')})`);

export function showCampaignFinding(f: CampaignFinding, path: string): string {
  return [
    `${f.kind.toUpperCase()} ${f.signature} (run ${f.run}, shrunk to ${f.ops} ops): ${f.message}`,
    `  rests on: ${f.rule.id}: ${f.rule.cites}`,
    `  trace: ${path}`,
    `  replay: isoroot check ${path}`,
  ].join('\n');
}

function parseShard(command: string, s: string | undefined): { index: number; count: number } {
  if (s === undefined) return { index: 0, count: 1 };
  const m = /^([0-9]+)\/([0-9]+)$/.exec(s);
  if (m === null || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new UsageError(command, `--shard must be i/n with 0 <= i < n, got "${s}"`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

export async function runFuzz(p: Parsed, log: (s: string) => void): Promise<number> {
  const resume = one(p, 'resume');
  if (resume !== undefined) {
    // A resumed campaign is the same campaign: its options come from RUN_DIR/campaign.json.
    const given = [...p.opts.keys(), ...p.flags].filter((k) => k !== 'resume' && k !== 'help');
    if (given.length > 0) throw new UsageError('fuzz', `--resume takes the campaign's options from RUN_DIR/campaign.json: leave out --${given.join(', --')}`);
  }
  const seed = intOpt('fuzz', p, 'seed', -(2 ** 31), 2 ** 31 - 1) ?? Date.now() % 2 ** 31;
  const runs = intOpt('fuzz', p, 'runs', 1, 1_000_000_000);
  const budgetText = one(p, 'budget');
  if (runs !== undefined && budgetText !== undefined) throw new UsageError('fuzz', 'give --runs or --budget, not both');
  let budget: Budget = { runs: runs ?? 1000 };
  if (budgetText !== undefined) {
    const ms = parseDuration(budgetText);
    if (ms === null) throw new UsageError('fuzz', `--budget must be a duration such as 90s, 10m or 2h, got "${budgetText}"`);
    budget = { ms };
  }
  const choice = readTargetChoice('fuzz', p, 'model')!;
  const generator = one(p, 'generator') ?? 'fragments';
  if (generator !== 'fragments' && generator !== 'raw') throw new UsageError('fuzz', `--generator must be fragments or raw, got "${generator}"`);
  const topologyFile = one(p, 'topology');
  const config: CampaignConfig = campaignConfig(withChoice({
    seed,
    workers: workersFor(choice, intOpt('fuzz', p, 'workers', 1, 256)),
    budget,
    shard: parseShard('fuzz', one(p, 'shard')),
    feedback: !p.flags.has('no-feedback'),
    generator,
  }, choice));
  if (topologyFile !== undefined) config.topology = await readTopologyFile(topologyFile, choice);
  const corpus = one(p, 'corpus');
  if (corpus !== undefined) config.corpus = corpus;
  const known = readKnownOption('fuzz', p, defaultKnownDir(choice.spec));
  if (known !== undefined) config.known = known;
  const dir = resume ?? one(p, 'out') ?? join('reports', 'runs', `${config.started.replace(/[:.]/g, '-')}-seed${seed}`);
  const out = new Progress(process.stdout);
  const say = (s: string): void => out.say(s);
  say(
    resume !== undefined
      ? `isoroot ${ISOROOT_VERSION}: resuming the campaign in ${dir}`
      : `isoroot ${ISOROOT_VERSION}: fuzzing ${showChoice(choice)}, seed ${seed}, ${'runs' in budget ? `${budget.runs} runs` : budgetText}, ${config.workers} workers${config.shard.count > 1 ? `, shard ${config.shard.index}/${config.shard.count}` : ''} → ${dir}`,
  );
  const r = await runCampaign({ config, dir, resume: resume !== undefined, log: say, out, show: showCampaignFinding, showKnown: showKnownSighting });
  const s = r.summary;
  log(`${s.runs} sequences, ${s.ops} operations in ${s.seconds} s (${s.sequencesPerSecond} sequences/s, ${s.opsPerSecond} ops/s); model coverage ${s.covered}/${s.total} (${((100 * s.covered) / s.total).toFixed(1)}%)`);
  for (const l of knownLines(r.known)) log(l);
  log(s.findings.length === 0 ? `no findings${r.known.length > 0 ? ' besides known bugs of the target' : ''}` : `${s.findings.length} findings in ${join(dir, 'findings')}`);
  log(`report: isoroot report ${dir}`);
  if (r.interrupted) return 130;
  return s.findings.length > 0 ? 1 : 0;
}
