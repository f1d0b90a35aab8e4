/**
 * A fuzz campaign: workers in separate processes, each with its own target,
 * run disjoint parts of the campaign; the coordinator collects coverage and
 * findings, writes every finding (into the run directory and the corpus)
 * before it prints it, checkpoints the workers for --resume, and journals
 * coverage over time. Run twice with the same seed, the same budget in runs
 * and the same number of workers, a campaign finds the same findings.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { InputError } from '../util/errors.ts';
import { universeFor } from '../coverage/universe.ts';
import { isTargetFeature } from '../coverage/target-features.ts';
import { showDuration } from './budget.ts';
import { FindingsStore, type CampaignFinding } from './findings-store.ts';
import { KnownStore, type KnownSighting } from './known-store.ts';
import { knownBugs } from '../run/known.ts';
import { mkdirSync } from 'node:fs';
import { Progress } from './progress.ts';
import { selectTarget } from '../adapters/select.ts';
import { RunDir, choiceOf, choiceOptions, type CampaignConfig, type CoveragePoint, type Summary, type WorkerState } from './run-dir.ts';
import type { FromWorker, StartMessage } from './messages.ts';
import { addPhases, noPhases, type PhaseTimes } from '../run/phases.ts';

export interface CampaignRun {
  config: CampaignConfig;
  dir: string;
  /** Continue the campaign in `dir` (its config wins). */
  resume: boolean;
  log: (s: string) => void;
  out: Progress;
  /** Extra lines for a finding (the finding printer of the CLI). */
  show: (f: CampaignFinding, path: string) => string;
  /** The line for a known bug seen for the first time. */
  showKnown?: (k: KnownSighting, path: string | null) => string;
  /** Stop the campaign at the first finding this accepts (benchmarks: time to first detection). */
  stopWhen?: (f: CampaignFinding) => boolean;
}

export interface CampaignResult {
  summary: Summary;
  findings: CampaignFinding[];
  /** Known bugs of the target seen again: not findings. */
  known: KnownSighting[];
  warnings: string[];
  /** Stopped early by SIGINT or SIGTERM (the state is checkpointed: --resume continues). */
  interrupted: boolean;
  /** The finding that stopWhen accepted, and after how many seconds. */
  stoppedBy: { finding: CampaignFinding; seconds: number } | null;
}

const WORKER = new URL('./worker.ts', import.meta.url).pathname;
/** Workers run TypeScript the way the CLI does (tsx, without its slow class-name blocks). */
const REGISTER = new URL('../../bin/register.mjs', import.meta.url).href;
const COVERAGE_EVERY_MS = 5000;
const STATUS_EVERY_MS = 1000;

/** Runs of a worker under a run budget: an even split of [0, runs). */
export function runRange(runs: number, workers: number, w: number): [number, number] {
  const per = Math.ceil(runs / workers);
  return [Math.min(runs, w * per), Math.min(runs, (w + 1) * per)];
}

export async function runCampaign(r: CampaignRun): Promise<CampaignResult> {
  const rd = new RunDir(r.dir);
  let config = r.config;
  if (r.resume) {
    if (!rd.exists()) throw new InputError(r.dir, 'a campaign run directory to resume (no campaign.json there)');
    config = rd.read<CampaignConfig>(rd.config);
  } else if (rd.exists()) throw new InputError(r.dir, 'an empty or new run directory (it holds a campaign: use --resume to continue it)');
  // The target must start before anything is written: a command that does not complete the handshake,
  // or a server that is not there, is a usage error, and leaves no half-made run directory behind.
  const probe = await selectTarget('fuzz', choiceOf(config));
  const universe = universeFor(probe.target.capabilities.ops.includes('vfio'));
  await probe.dispose();
  if (!r.resume) {
    rd.create();
    rd.write(rd.config, config);
  }
  if (config.corpus !== undefined && !existsSync(config.corpus)) throw new InputError(config.corpus, 'an existing corpus folder');
  const store = new FindingsStore(rd.findings, config.corpus, r.dir);
  // Known bugs of the target (corpora/<target>): recognised by their quirks, counted apart from findings.
  const bugs = config.known === undefined ? [] : knownBugs(config.known);
  if (bugs.length > 0) r.log(`${bugs.length} known bugs of ${config.target} (open ones and known divergences, ${bugs.filter((b) => b.quirk !== null).length} recognised by behaviour) are counted apart, not reported (${config.known})`);
  mkdirSync(rd.known, { recursive: true });
  const knownStore = new KnownStore(rd.known);
  const features = new Map<string, number>(Object.entries(rd.readMaybe<Record<string, number>>(rd.features) ?? {}));
  const { points: history, warnings } = rd.readCoverage();
  const prior = history.length > 0 ? history[history.length - 1] : { t: 0, runs: 0, ops: 0 };
  for (const w of warnings) r.log(`warning: ${w}`);

  const W = config.workers;
  const started = Date.now();
  const deadline = 'ms' in config.budget ? started + config.budget.ms - prior.t * 1000 : null;
  const budgetText = 'ms' in config.budget ? showDuration(config.budget.ms) : `${config.budget.runs} runs`;
  const runsBy = new Map<number, { runs: number; ops: number }>();
  const children: ChildProcess[] = [];
  let failed: string | null = null;
  /** A worker's target refused what it was given (a usage error, not isoroot's fault). */
  let usage: InputError | null = null;
  let stopping = false;
  let stoppedBy: CampaignResult['stoppedBy'] = null;

  const strays = new Set<string>();
  const phasesBy = new Map<number, PhaseTimes>();
  const covered = (): number => [...features.keys()].filter((f) => universe.set.has(f)).length;
  const totals = (): { runs: number; ops: number } => {
    let runs = 0;
    let ops = 0;
    for (const v of runsBy.values()) {
      runs += v.runs;
      ops += v.ops;
    }
    return { runs, ops };
  };
  const tally = () => {
    const byKind = new Map<string, number>();
    for (const f of store.all()) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
    const t = totals();
    return { elapsedMs: Date.now() - started + prior.t * 1000, budget: budgetText, runs: t.runs, ops: t.ops, covered: covered(), total: universe.list.length, findings: byKind };
  };
  const point = (): CoveragePoint => {
    const t = totals();
    return { t: Math.round((Date.now() - started) / 100) / 10 + prior.t, runs: t.runs, ops: t.ops, covered: covered(), total: universe.list.length };
  };
  if (history.length === 0) rd.appendCoverage(point());

  const done = new Promise<void>((resolve) => {
    let finished = 0;
    for (let w = 0; w < W; w++) {
      const stream = config.shard.index * W + w;
      const state = rd.readMaybe<WorkerState>(rd.state(stream));
      const [first, end] = 'runs' in config.budget ? runRange(config.budget.runs, W, w) : [0, null];
      const seedsFile = rd.seeds(stream);
      const start: StartMessage = {
        type: 'start',
        stream,
        seed: config.seed,
        target: config.target,
        feedback: config.feedback,
        generator: config.generator,
        budget: config.budget,
        nextRun: state?.nextRun ?? first,
        endRun: end,
        deadline,
        runs: state?.runs ?? 0,
        ops: state?.ops ?? 0,
        seconds: state?.seconds ?? 0,
        covered: state?.covered ?? [],
        seeds: rd.readMaybe<unknown>(seedsFile) ?? [],
        seedsFile,
        knownSignatures: store.signatures,
      };
      if (config.known !== undefined) start.known = config.known;
      Object.assign(start, choiceOptions(config));
      if (config.topology !== undefined) start.topology = config.topology;
      runsBy.set(stream, { runs: start.runs, ops: start.ops });
      // The run directory on the command line names the worker in ps and pgrep.
      const child = fork(WORKER, [r.dir], { execArgv: ['--import', REGISTER], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      let said = false;
      child.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'progress': {
            runsBy.set(m.stream, { runs: m.runs, ops: m.ops });
            phasesBy.set(m.stream, m.phases);
            const t = point().t;
            for (const f of m.newFeatures) {
              if (!features.has(f)) features.set(f, t);
              // A feature the universe does not list would be counted nowhere: say so once, never drop it silently.
              if (!universe.set.has(f) && !isTargetFeature(f) && !strays.has(f)) {
                strays.add(f);
                r.log(`warning: coverage feature ${f} is not in the universe (harness/coverage/universe.ts): it is kept in features.json but not counted`);
              }
            }
            break;
          }
          case 'finding': {
            const outcome = store.offer(m.finding, m.traceText);
            if (outcome === 'new') {
              const rec = store.all().find((x) => x.signature === m.finding.signature)!;
              r.out.say(r.show(rec, `${rd.findings}/${rec.trace}`));
              if (r.stopWhen?.(rec) === true && !stopping) {
                stopping = true;
                stoppedBy = { finding: rec, seconds: (Date.now() - started) / 1000 };
                for (const c of children) if (c.connected) c.send({ type: 'stop' });
              }
            }
            break;
          }
          case 'known': {
            const bug = bugs.find((b) => b.name === m.name);
            const first = knownStore.record({ name: m.name, status: bug?.status ?? 'open', reason: bug?.reason ?? '', by: m.by, signature: m.signature, run: m.run, stream: m.stream, ...(m.traceText !== undefined ? { traceText: m.traceText } : {}) });
            if (first && r.showKnown !== undefined) {
              const k = knownStore.all().find((x) => x.name === m.name)!;
              r.out.say(r.showKnown(k, k.trace === undefined ? null : `${rd.known}/${k.trace}`));
            }
            break;
          }
          case 'checkpoint':
            rd.write(rd.state(m.stream), m.state);
            rd.write(rd.seeds(m.stream), m.seeds);
            rd.write(rd.features, Object.fromEntries(features));
            break;
          case 'done':
            said = true;
            break;
          case 'fatal':
            if (m.usage !== undefined) {
              usage ??= new InputError(m.usage.where, m.usage.expected);
              for (const c of children) if (c.connected) c.send({ type: 'stop' });
            }
            else failed ??= `worker ${m.stream} failed: ${m.message}`;
            break;
        }
      });
      // 'close', not 'exit': it comes after the IPC channel has delivered the worker's last messages.
      child.on('close', (code) => {
        if (!said && failed === null && usage === null && !stopping) failed = `worker ${stream} exited with status ${code} before finishing`;
        if (++finished === W) resolve();
      });
      child.send(start);
    }
  });

  const status = setInterval(() => r.out.tick(tally()), STATUS_EVERY_MS);
  const journal = setInterval(() => rd.appendCoverage(point()), COVERAGE_EVERY_MS);
  // Ctrl-C reaches the workers too (one process group): they stop after their current run.
  const stop = (): void => {
    stopping = true;
    r.out.say('stopping: the workers finish their current run and checkpoint; --resume continues');
    for (const c of children) if (c.connected) c.send({ type: 'stop' });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await done;
  } finally {
    clearInterval(status);
    clearInterval(journal);
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }
  rd.appendCoverage(point());
  rd.write(rd.features, Object.fromEntries(features));
  r.out.tick(tally(), true);
  r.out.end();
  if (usage !== null) throw usage;
  if (failed !== null) throw new Error(failed);
  const t = totals();
  const seconds = Math.round((Date.now() - started) / 100) / 10 + prior.t;
  const all = store.all();
  const summary: Summary = {
    target: config.target,
    seed: config.seed,
    workers: W,
    runs: t.runs,
    ops: t.ops,
    seconds,
    sequencesPerSecond: seconds > 0 ? Math.round(t.runs / seconds) : 0,
    opsPerSecond: seconds > 0 ? Math.round(t.ops / seconds) : 0,
    covered: covered(),
    total: universe.list.length,
    targetFeatures: [...features.keys()].filter(isTargetFeature).length,
    findings: all.map((f) => ({ kind: f.kind, signature: f.signature, trace: f.trace })),
    known: knownStore.all().map((k) => ({ name: k.name, count: k.count, signatures: k.signatures, ...(k.trace !== undefined ? { trace: k.trace } : {}) })),
    finished: new Date().toISOString(),
  };
  if (config.mutant !== undefined) summary.mutant = config.mutant;
  if (phasesBy.size > 0) summary.phases = [...phasesBy.values()].reduce((a, b) => addPhases(a, b), noPhases());
  rd.write(rd.summary, summary);
  return { summary, findings: all, known: knownStore.all(), warnings, interrupted: stopping && stoppedBy === null, stoppedBy };
}
