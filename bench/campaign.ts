/**
 * npm run bench:campaign — campaign goals (issue: Campaigns, Bench):
 *  1. throughput on the model: sequences/s and ops/s with 1 and with 2 workers;
 *  2. time to first detection of each mutant by its named oracle: the median over 5 seeds;
 *  3. model coverage after 1, 2 and 5 minutes on 2 workers, with feedback, without it,
 *     and with pure random generation (operations drawn from the catalog alone);
 *     goal: 95% within 5 minutes with feedback, clearly ahead of pure random.
 *  0. where the time goes, per target (the model, Debian's QEMU, QEMU from ISOROOT_QEMU
 *     when set, isoroot's vfio-user server): per sequence, drawing it, the target's start,
 *     reset and reset verification, the rest of opening, running, closing, checking, shrinking.
 *     The same with and without feedback on QEMU, for --qemu-minutes (default 2).
 * Options: --minutes M (the coverage budget, default 5), --seeds N (default 5), --only phases|throughput|detect|coverage.
 * Writes reports/bench/coverage.svg with the curves.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runQuiet } from '../harness/campaign/catch.ts';
import { RunDir, campaignConfig, type CampaignConfig, type CoveragePoint } from '../harness/campaign/run-dir.ts';
import { MUTANTS } from '../harness/adapters/model/mutants.ts';
import { UNIVERSE } from '../harness/coverage/universe.ts';
import { coverageSvg } from '../harness/report/svg.ts';
import { writeFileAtomic } from '../harness/util/atomic.ts';
import { ISOROOT_VERSION } from '../harness/version.ts';
import { showPhases } from '../harness/run/phases.ts';
import { startServer } from '../harness/serve/vfio-user/child.ts';
import { arg } from './args.ts';

const MINUTES = Number(arg('minutes', '5'));
const SEEDS = Number(arg('seeds', '5'));
const QEMU_MINUTES = Number(arg('qemu-minutes', '2'));
const ONLY = arg('only', 'all');
const base = mkdtempSync(join(tmpdir(), 'isoroot-bench-campaign-'));
let n = 0;

const config = (over: Partial<CampaignConfig>): CampaignConfig => campaignConfig({ target: 'model', seed: 1, workers: 2, budget: { runs: 1000 }, ...over });

async function run(c: CampaignConfig, stopWhen?: Parameters<typeof runQuiet>[2]) {
  const dir = join(base, `run${n++}`);
  const r = await runQuiet(c, dir, stopWhen);
  return { ...r, dir };
}

/** A short campaign per target, one worker, and where its time went. */
async function phases(): Promise<void> {
  const targets: [string, Partial<CampaignConfig>, number][] = [
    ['model', {}, 3000],
    // QEMU's recorded bugs are counted apart, as `isoroot fuzz --target qemu` does (corpora/qemu).
    ["qemu (Debian's)", { target: 'qemu', known: 'corpora/qemu' }, 150],
    ...(process.env.ISOROOT_QEMU ? ([[`qemu (${process.env.ISOROOT_QEMU})`, { target: 'qemu', qemu: process.env.ISOROOT_QEMU, known: 'corpora/qemu' }, 150]] as [string, Partial<CampaignConfig>, number][]) : []),
  ];
  const server = await startServer();
  try {
    targets.push(['vfio-user (isoroot serve, 3 sockets)', { target: `vfio-user:${server.sockets.join(',')}` }, 1200]);
    for (const [name, over, runs] of targets) {
      const r = await run(config({ ...over, workers: 1, seed: 5, budget: { runs } }));
      const s = r.summary;
      console.log(`0. ${name.padEnd(40)} ${s.sequencesPerSecond} sequences/s, ${s.opsPerSecond.toLocaleString('en')} ops/s (${s.runs} sequences, ${(s.ops / Math.max(1, s.runs)).toFixed(0)} ops each)`);
      console.log(`   per sequence: ${s.phases === undefined ? 'no phases recorded' : showPhases(s.phases, s.runs)}`);
    }
  } finally {
    await server.stop();
    await server.dispose();
  }
}

async function throughput(): Promise<void> {
  for (const workers of [1, 2]) {
    const r = await run(config({ workers, budget: { runs: 20_000 }, seed: 3 }));
    console.log(`1. throughput, ${workers} worker${workers > 1 ? 's' : ''}: ${r.summary.sequencesPerSecond} sequences/s, ${r.summary.opsPerSecond.toLocaleString('en')} ops/s (${r.summary.runs} sequences, ${r.summary.ops.toLocaleString('en')} ops in ${r.summary.seconds} s)`);
  }
}

async function detection(): Promise<void> {
  console.log(`2. time to first detection by the named oracle, median of ${SEEDS} seeds (2 workers, budget 120 s each):`);
  for (const m of MUTANTS) {
    const times: number[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await run(config({ mutant: m.name, seed, budget: { ms: 120_000 } }), (f) => (m.caughtBy as readonly string[]).includes(f.kind));
      times.push(r.stoppedBy === null ? Infinity : r.stoppedBy.seconds);
    }
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    console.log(`   ${m.name.padEnd(26)} median ${Number.isFinite(median) ? `${median.toFixed(1)} s` : 'not found'}   (${times.map((t) => (Number.isFinite(t) ? t.toFixed(1) : '-')).join(', ')})`);
  }
}

const coveredAt = (ps: CoveragePoint[], t: number): number => ps.filter((p) => p.t <= t).pop()?.covered ?? 0;

async function coverage(): Promise<void> {
  const ms = MINUTES * 60_000;
  const kinds: [string, Partial<CampaignConfig>][] = [
    ['with feedback', {}],
    ['without feedback', { feedback: false }],
    ['pure random (catalog ops, no feedback)', { feedback: false, generator: 'raw' }],
  ];
  const series: { name: string; points: CoveragePoint[] }[] = [];
  for (const [name, over] of kinds) {
    const r = await run(config({ ...over, budget: { ms }, seed: 21 }));
    const points = new RunDir(r.dir).readCoverage().points;
    series.push({ name, points });
    const marks = [1, 2, 5].filter((m) => m <= MINUTES).map((m) => `${m} min ${((100 * coveredAt(points, m * 60)) / UNIVERSE.length).toFixed(1)}%`);
    console.log(`3. coverage ${name.padEnd(40)} ${marks.join(', ')}   (${r.summary.runs.toLocaleString('en')} sequences, final ${r.summary.covered}/${r.summary.total})`);
  }
  // The same, on QEMU (Debian's, or ISOROOT_QEMU): feedback must beat none there too.
  const qms = QEMU_MINUTES * 60_000;
  const qemu: Partial<CampaignConfig> = { target: 'qemu', known: 'corpora/qemu', ...(process.env.ISOROOT_QEMU ? { qemu: process.env.ISOROOT_QEMU } : {}) };
  for (const [name, over] of [['qemu with feedback', {}], ['qemu without feedback', { feedback: false }]] as [string, Partial<CampaignConfig>][]) {
    const r = await run(config({ ...qemu, ...over, budget: { ms: qms }, seed: 21 }));
    const points = new RunDir(r.dir).readCoverage().points;
    series.push({ name, points });
    const marks = [0.5, 1, 2, 5].filter((m) => m <= QEMU_MINUTES).map((m) => `${m} min ${((100 * coveredAt(points, m * 60)) / UNIVERSE.length).toFixed(1)}%`);
    console.log(`3. coverage ${name.padEnd(40)} ${marks.join(', ')}   (${r.summary.runs.toLocaleString('en')} sequences, final ${r.summary.covered}/${r.summary.total})`);
  }
  const file = join('reports', 'bench', 'coverage.svg');
  writeFileAtomic(file, coverageSvg(series, UNIVERSE.length));
  console.log(`   curves: ${file}; points every 5 s:`);
  for (const s of series) console.log(`   ${s.name}: ${s.points.filter((_, i) => i % 6 === 0).map((p) => `${p.t.toFixed(0)}s ${p.covered}`).join(' ')}`);
}

console.log(`isoroot ${ISOROOT_VERSION} bench:campaign on node ${process.version}, ${UNIVERSE.length} coverage features`);
if (ONLY === 'all' || ONLY === 'phases') await phases();
if (ONLY === 'all' || ONLY === 'throughput') await throughput();
if (ONLY === 'all' || ONLY === 'detect') await detection();
if (ONLY === 'all' || ONLY === 'coverage') await coverage();
