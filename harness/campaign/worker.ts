/**
 * A campaign worker: a separate process with its own target instance. It
 * draws runs [nextRun, endRun) of its stream — fresh sequences from the
 * generators, or, with feedback, mutations of seeds that reached new model
 * features — runs them, checks them, shrinks what fails, and reports to
 * the coordinator. Every decision follows from (seed, stream, run).
 */
import fc from 'fast-check';
import { selectTarget } from '../adapters/select.ts';
import { choiceOf } from './run-dir.ts';
import { constraintsFor, type GenConstraints } from '../../generators/constraints.ts';
import { rawSequenceArb, sequenceArb, type Scenario } from '../../generators/sequence.ts';
import { topologyArb } from '../../generators/topology.ts';
import { guardOps } from '../../generators/guard.ts';
import { execute, type Executed } from '../run/execute.ts';
import { learnTopology } from '../adapters/learn.ts';
import { bySignature, knownBugs, recognise, type Recognised } from '../run/known.ts';
import { checkRun, judgeOf, traceTarget, violations } from '../run/check.ts';
import { CoverageTracker } from '../coverage/tracker.ts';
import { qemuEventFeatures } from '../coverage/target-features.ts';
import { traceToText } from '../trace/writer.ts';
import { ISOROOT_VERSION } from '../version.ts';
import { prepared, type Target } from '../adapters/target.ts';
import type { Finding } from '../oracles/finding.ts';
import { stepFailure, type Step } from '../trace/format.ts';
import type { Topology } from '../topology/types.ts';
import { Prng, deriveSeed } from './prng.ts';
import { SeedPool, type Seed } from './seeds.ts';
import { mutate } from './mutate.ts';
import { Schedule, type Origin } from './schedule.ts';
import { shrinkGenerated } from './shrink.ts';
import { shrinkTopology } from './shrink-topology.ts';
import { DDMIN_AFTER_FC, DDMIN_BUDGET, ddmin } from '../run/ddmin.ts';
import type { FromWorker, StartMessage } from './messages.ts';
import { InputError } from '../util/errors.ts';
import { PhaseClock } from '../run/phases.ts';

const PROGRESS_MS = 250;
/**
 * Fresh runs share a topology in blocks of this many (unless the target asks
 * for more): building a topology's generators costs ~25 times more than
 * drawing a sequence from them.
 */
const TOPOLOGY_BLOCK = 8;
const CHECKPOINT_MS = 3000;
/**
 * Time one finding's shrinking may take. On the model it ends well before;
 * on a real target each try is a run, and a long chained run could
 * otherwise keep a worker shrinking for many minutes.
 */
const SHRINK_MS = 60_000;

/** One run of a batch: a sequence, where it came from, and what decided it. */
interface Drawn {
  run: number;
  runSeed: number;
  origin: Origin;
  sc: Scenario;
  parent: Seed | null;
}

interface Checked {
  /** The topology as it ran: its unknown functions learned from the target. */
  topology: Topology;
  steps: Step[];
  findings: Finding[];
  features: Set<string>;
  /** The step at which each feature was first reached. */
  firstAt: Map<string, number>;
  executed: Executed;
}

function send(m: FromWorker): Promise<void> {
  return new Promise((resolve) => process.send!(m, () => resolve()));
}

/** The coordinator that forked this worker; kill -9 of it leaves no time to say so. */
const PARENT = process.ppid;

/** Runs and checks one sequence (every run and every shrinking step comes through here); the clock gets its phases. */
async function check(target: Target, sc: Scenario, clock: PhaseClock = new PhaseClock()): Promise<Checked> {
  // An orphaned worker must not run on.
  if (process.send !== undefined && (process.ppid !== PARENT || process.connected === false)) process.exit(0);
  const topology = await clock.time('setup', () => learnTopology(target, sc.topology));
  const ex = await execute(target, topology, sc.ops, clock);
  const tracker = new CoverageTracker();
  const findings = clock.timeSync('check', () => checkRun(topology, judgeOf(target), ex.steps, ex.failure, sc.ops, tracker));
  // The trace keeps the op a failing target died on, with how it failed, so a check or a replay reaches it.
  const steps: Step[] = [...ex.steps, ...sc.ops.slice(ex.steps.length).map((op) => ({ op }))];
  if (ex.failure !== undefined && steps[ex.failure.index] !== undefined) steps[ex.failure.index].failure = stepFailure(ex.failure);
  // What the target says of its own paths (QEMU's trace events) counts too: seeds that reach new ones are kept.
  const features = tracker.features;
  const firstAt = tracker.firstAt;
  ex.steps.forEach((st, i) => {
    for (const f of qemuEventFeatures(st.obs.evidence?.events ?? [])) {
      if (!features.has(f)) firstAt.set(f, i);
      features.add(f);
    }
  });
  return { topology, steps, findings, features, firstAt, executed: ex };
}

/**
 * How many of `gained` each run of a batch reached first, by the step it
 * was first reached at. The batch's guard may have dropped a few ops, so
 * a run's place in the batch is counted from the runs' own lengths.
 */
function gainsByRun(batch: readonly Drawn[], gained: readonly string[], firstAt: ReadonlyMap<string, number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const f of gained) {
    let at = firstAt.get(f) ?? 0;
    let i = 0;
    while (i < batch.length - 1 && at >= batch[i].sc.ops.length) at -= batch[i++].sc.ops.length;
    out.set(i, (out.get(i) ?? 0) + 1);
  }
  return out;
}

export async function runWorker(start: StartMessage, stopping: () => boolean): Promise<void> {
  const { target, dispose } = await selectTarget('fuzz', choiceOf(start));
  const c: GenConstraints = constraintsFor(target);
  const topologies = topologyArb(c);
  let block: { n: number; topology: Topology; arb: fc.Arbitrary<Scenario> } | null = null;
  /** The generator of fresh sequences for a run: its block's topology, and that topology's sequences. */
  const freshArb = (run: number): fc.Arbitrary<Scenario> => {
    const n = Math.floor(run / (target.topologyBlock ?? TOPOLOGY_BLOCK));
    if (block === null || block.n !== n) {
      const topology = start.topology ?? target.fixedTopology ?? fc.sample(topologies, { seed: deriveSeed(start.seed, start.stream, n, 0x70b0), numRuns: 1 })[0];
      const ops = start.generator === 'raw' ? rawSequenceArb(topology, c) : sequenceArb(topology, c);
      block = { n, topology, arb: ops.map((o) => ({ topology, ops: o })) };
    }
    return block.arb;
  };
  const pool = start.feedback ? SeedPool.fromJson(start.seedsFile, start.seeds) : new SeedPool();
  const schedule = new Schedule();
  /** Run `run`'s sequence: a mutation of a seed or a fresh one, as the schedule decides; it follows from (seed, stream, run) and the pool. */
  const draw = (run: number): Drawn => {
    const runSeed = deriveSeed(start.seed, start.stream, run);
    const rng = new Prng(runSeed);
    const arb = freshArb(run);
    if (start.feedback && schedule.choose(rng, pool.size) === 'mutated') {
      // Where a session costs a reset or a start (batches), a seed of another topology would cost a new machine:
      // mutate seeds of the topology being run, and draw a fresh run when it has none yet.
      const parent = (target.chain ?? 1) > 1 ? pool.pick(rng, block!.topology) : pool.pick(rng);
      if (parent !== null) return { run, runSeed, origin: 'mutated', parent, sc: { topology: parent.topology, ops: mutate(parent, pool, c, rng) } };
    }
    return { run, runSeed, origin: 'fresh', parent: null, sc: fc.sample(arb, { seed: runSeed, numRuns: 1 })[0] };
  };
  const covered = new Set(start.covered);
  /** Signatures this campaign reported already (a resumed one too), and those that belong to a known bug. */
  const known = new Set(start.knownSignatures);
  const bugs = start.known === undefined ? [] : knownBugs(start.known);
  const bugOf = new Map<string, string>();
  const judge = judgeOf(target);
  /** A known bug seen in a run; its trace goes along the first time this worker sees it. */
  const tellKnown = async (rec: Recognised, signature: string, run: number, steps: Step[], topology: Topology): Promise<void> => {
    for (const bug of [rec.bug, ...(rec.also ?? [])]) {
      const first = !bugOf.has(`seen:${bug.name}`);
      bugOf.set(`seen:${bug.name}`, bug.name);
      await send({ type: 'known', stream: start.stream, name: bug.name, by: rec.by, signature, run, ...(first ? { traceText: traceToText(header(topology), steps) } : {}) });
    }
    bugOf.set(signature, [rec.bug, ...(rec.also ?? [])].map((b) => b.name).join('\n'));
  };
  let { nextRun, runs, ops } = start;
  const clock = new PhaseClock();
  const began = Date.now();
  let fresh: string[] = [];
  let lastProgress = Date.now();
  let lastCheckpoint = Date.now();

  const checkpoint = (): Promise<void> =>
    send({
      type: 'checkpoint',
      stream: start.stream,
      state: { stream: start.stream, nextRun, endRun: start.endRun, runs, ops, seconds: start.seconds + (Date.now() - began) / 1000, covered: [...covered] },
      seeds: pool.toJson(),
    });

  const header = (topology: Topology) => ({
    format: 'isoroot-trace' as const,
    version: 1 as const,
    topology,
    target: traceTarget(target),
    seed: start.seed,
    isoroot: ISOROOT_VERSION,
    time: new Date().toISOString(),
  });

  try {
    while ((start.endRun === null || nextRun < start.endRun) && (start.deadline === null || Date.now() < start.deadline) && !stopping()) {
      // A batch: up to target.chain consecutive runs on one topology, run as one sequence with no reset between
      // them. A run whose topology differs ends the batch; the next batch draws it again (same seed, same pool).
      const batch: Drawn[] = [];
      const most = Math.min(target.chain ?? 1, start.endRun === null ? Infinity : start.endRun - nextRun);
      clock.timeSync('generate', () => {
        for (let run = nextRun; batch.length < most; run++) {
          const d = draw(run);
          if (batch.length > 0 && d.sc.topology !== batch[0].sc.topology) break;
          if (d.parent !== null) d.parent.picks++;
          batch.push(d);
        }
      });
      const run = batch[0].run;
      // The guard sees the batch as the target runs it: one sequence (a CF8 latch one run left reaches the next).
      const sc: Scenario = batch.length === 1 ? batch[0].sc : { topology: batch[0].sc.topology, ops: guardOps(batch[0].sc.topology, c, batch.flatMap((b) => b.sc.ops)) };
      const r = await check(target, sc, clock);
      runs += batch.length;
      ops += sc.ops.length;
      nextRun += batch.length;
      const gained = [...r.features].filter((f) => !covered.has(f));
      // Each run of the batch is credited with the gain in proportion to its ops.
      for (const b of batch) schedule.record(b.origin, (gained.length * b.sc.ops.length) / Math.max(1, sc.ops.length), b.sc.ops.length);
      if (gained.length > 0) {
        for (const f of gained) covered.add(f);
        fresh.push(...gained);
        // Each run of the batch that reached something new is a seed of its own (a batch's hundreds of ops
        // would make every mutation as long); a feature goes to the run its first step fell in.
        if (start.feedback) for (const [i, gain] of gainsByRun(batch, gained, r.firstAt)) pool.add({ topology: sc.topology, ops: batch[i].sc.ops, gain, picks: 0 });
      }
      const vs = violations(r.findings);
      // A known bug recognised by behaviour: the run as a whole is what one quirk of the model does.
      const whole = vs.length > 0 && bugs.length > 0 && vs.some((v) => !known.has(v.signature)) ? recognise(bugs, r.topology, judge, r.executed.steps, vs.map((v) => v.signature), r.executed.failure, sc.ops) : null;
      for (const v of vs) {
        const bug = bugOf.get(v.signature);
        if (whole !== null) {
          await tellKnown(whole, v.signature, run, r.steps, r.topology);
          continue;
        }
        if (bug !== undefined) {
          for (const name of bug.split('\n')) await send({ type: 'known', stream: start.stream, name, by: 'quirk', signature: v.signature, run });
          continue;
        }
        if (known.has(v.signature)) continue;
        const sig = bySignature(bugs, v.signature);
        if (sig !== null) {
          await tellKnown(sig, v.signature, run, r.steps, r.topology);
          continue;
        }
        known.add(v.signature);
        const shrinkStarted = performance.now();
        // A crash or hang moves with the op that triggers it: match those by kind, the rest by signature.
        const same = (f: Finding): boolean => (v.kind === 'crash' || v.kind === 'hang' || v.kind === 'protocol' ? f.kind === v.kind : f.signature === v.signature);
        // Shrinking stops trying after SHRINK_MS: what it confirmed last is the trace.
        const until = performance.now() + SHRINK_MS;
        // Shrunk topologies as the target builds them: the platform's functions for the roots kept, and only those.
        const built = (s: Scenario): Scenario => ({ ...s, topology: prepared(target, s.topology) });
        const fails = async (s: Scenario): Promise<boolean> => performance.now() < until && violations((await check(target, built(s))).findings).some(same);
        // A batch's finding usually lies within one of its runs: tried alone first, it shrinks as that run would.
        let alone: Drawn | null = batch.length === 1 ? batch[0] : null;
        for (let i = 0; alone === null && i < batch.length; i++) if (await fails(batch[i].sc)) alone = batch[i];
        const origin: Origin = alone?.origin ?? (batch.every((b) => b.origin === 'fresh') ? 'fresh' : 'mutated');
        let min: Scenario | null = null;
        if (alone !== null && alone.origin === 'fresh') min = await shrinkGenerated(freshArb(alone.run), alone.runSeed, fails);
        const from = min ?? alone?.sc ?? sc;
        min = { topology: from.topology, ops: await ddmin(from.ops, (o) => fails({ topology: from.topology, ops: o }), min === null ? DDMIN_BUDGET : DDMIN_AFTER_FC) };
        // The topology too, where the campaign generates it: only the roots and devices the trace needs stay.
        if (start.topology === undefined && target.fixedTopology === undefined) min = await shrinkTopology(min, fails);
        const again = await check(target, built(min));
        const lead = violations(again.findings).find(same) ?? v;
        clock.ms.shrink += performance.now() - shrinkStarted;
        // Shrunk, the finding may be what a known bug's quirk does.
        // By either signature: the run's, or the shrunk trace's (a crash may have moved to another op).
        const rec = bugs.length === 0 ? null : recognise(bugs, again.topology, judge, again.executed.steps, [...new Set([v.signature, lead.signature])], again.executed.failure, min.ops);
        if (rec !== null) {
          known.delete(v.signature);
          await tellKnown(rec, v.signature, run, again.steps, again.topology);
          continue;
        }
        await send({
          type: 'finding',
          stream: start.stream,
          finding: { ...lead, run, stream: start.stream, origin, ops: min.ops.length },
          traceText: traceToText(header(again.topology), again.steps),
        });
      }
      const now = Date.now();
      if (now - lastProgress >= PROGRESS_MS) {
        await send({ type: 'progress', stream: start.stream, runs, ops, newFeatures: fresh, phases: clock.ms });
        fresh = [];
        lastProgress = now;
      }
      if (now - lastCheckpoint >= CHECKPOINT_MS) {
        await checkpoint();
        lastCheckpoint = now;
      }
    }
    await send({ type: 'progress', stream: start.stream, runs, ops, newFeatures: fresh, phases: clock.ms });
    await checkpoint();
    await send({ type: 'done', stream: start.stream });
  } finally {
    await dispose();
  }
}

/** The process entry: wait for the start message, run, exit. */
if (process.send !== undefined && process.argv[1] !== undefined && process.argv[1].endsWith('worker.ts')) {
  let stop = false;
  process.on('disconnect', () => process.exit(0));
  // A terminal's Ctrl-C reaches the whole process group; stop after this run, as the coordinator asks.
  process.on('SIGINT', () => (stop = true));
  process.on('SIGTERM', () => (stop = true));
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stop') stop = true;
    if (m.type === 'start')
      runWorker(m as StartMessage, () => stop).then(
        () => process.exit(0),
        async (e: unknown) => {
          const usage = e instanceof InputError ? { usage: { where: e.where, expected: e.expected } } : {};
          await send({ type: 'fatal', stream: (m as StartMessage).stream, message: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e), ...usage });
          process.exit(3);
        },
      );
  });
}
