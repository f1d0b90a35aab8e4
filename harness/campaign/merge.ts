/**
 * Merges campaign run directories (the shards of one campaign, run on
 * several machines) into one: findings de-duplicated by signature (the
 * earliest run wins, as within a campaign), features with their earliest
 * time, coverage over time recomputed from those, seeds and checkpoints
 * side by side, and a summary whose throughput is the sum of the shards'.
 */
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../util/errors.ts';
import { universeOfFeatures } from '../coverage/universe.ts';
import { FindingsStore, type CampaignFinding } from './findings-store.ts';
import { RunDir, type CampaignConfig, type CoveragePoint, type Summary } from './run-dir.ts';

export interface MergeResult {
  summary: Summary;
  warnings: string[];
}

export function mergeRuns(dirs: readonly string[], out: string, corpus?: string): MergeResult {
  if (dirs.length === 0) throw new InputError('isoroot merge', 'at least one RUN_DIR');
  const runs = dirs.map((d) => new RunDir(d));
  for (const r of runs) if (!r.exists()) throw new InputError(r.dir, 'a campaign run directory (campaign.json is missing)');
  const configs = runs.map((r) => r.read<CampaignConfig>(r.config));
  const key = (c: CampaignConfig): string => `${c.target}|${c.mutant ?? ''}|${c.seed}|${c.isoroot}`;
  configs.forEach((c, i) => {
    if (key(c) !== key(configs[0])) throw new InputError(dirs[i], `a run of the same campaign as ${dirs[0]} (same target, mutant, seed and isoroot version)`);
  });
  const dest = new RunDir(out);
  if (dest.exists()) throw new InputError(out, 'a new run directory for the merge (it already holds a campaign)');
  dest.create();
  const warnings: string[] = [];

  const store = new FindingsStore(dest.findings, corpus, out);
  for (const r of runs) {
    if (!existsSync(r.findings)) continue;
    for (const f of readdirSync(r.findings).filter((x) => x.endsWith('.finding.json')).sort()) {
      const rec = r.read<CampaignFinding>(join(r.findings, f));
      const { trace, ...rest } = rec;
      store.offer(rest, readFileSync(join(r.findings, trace), 'utf8'));
    }
  }

  const features = new Map<string, number>();
  const series: CoveragePoint[][] = [];
  for (const r of runs) {
    for (const [f, t] of Object.entries(r.readMaybe<Record<string, number>>(r.features) ?? {})) features.set(f, Math.min(t, features.get(f) ?? Infinity));
    const c = r.readCoverage();
    warnings.push(...c.warnings);
    series.push(c.points);
    for (const s of r.streams()) {
      copyFileSync(r.state(s), dest.state(s));
      if (existsSync(r.seeds(s))) copyFileSync(r.seeds(s), dest.seeds(s));
    }
  }
  const times = [...new Set(series.flat().map((p) => p.t))].sort((a, b) => a - b);
  const at = (ps: CoveragePoint[], t: number): CoveragePoint | undefined => ps.filter((p) => p.t <= t).pop();
  const universe = universeOfFeatures(features.keys());
  const covered = (t: number): number => [...features].filter(([f, s]) => s <= t && universe.set.has(f)).length;
  for (const t of times) {
    const points = series.map((ps) => at(ps, t));
    dest.appendCoverage({ t, runs: points.reduce((n, p) => n + (p?.runs ?? 0), 0), ops: points.reduce((n, p) => n + (p?.ops ?? 0), 0), covered: covered(t), total: universe.list.length });
  }
  dest.write(dest.features, Object.fromEntries(features));

  const summaries = runs.map((r) => r.readMaybe<Summary>(r.summary));
  summaries.forEach((s, i) => {
    if (s === null) warnings.push(`${dirs[i]}: no summary.json (the run did not finish); counted from its coverage journal`);
  });
  const last = series.map((ps) => ps[ps.length - 1]);
  const totalRuns = last.reduce((n, p) => n + (p?.runs ?? 0), 0);
  const totalOps = last.reduce((n, p) => n + (p?.ops ?? 0), 0);
  const seconds = Math.max(0, ...last.map((p) => p?.t ?? 0));
  const rate = (f: (s: Summary) => number): number => summaries.reduce((n, s) => n + (s === null ? 0 : f(s)), 0);
  const config: CampaignConfig = {
    ...configs[0],
    workers: configs.reduce((n, c) => n + c.workers, 0),
    shard: { index: 0, count: 1 },
    budget: 'runs' in configs[0].budget ? { runs: configs.reduce((n, c) => n + ('runs' in c.budget ? c.budget.runs : 0), 0) } : configs[0].budget,
  };
  dest.write(dest.config, config);
  const all = store.all();
  const summary: Summary = {
    target: config.target,
    seed: config.seed,
    workers: config.workers,
    runs: totalRuns,
    ops: totalOps,
    seconds,
    sequencesPerSecond: rate((s) => s.sequencesPerSecond),
    opsPerSecond: rate((s) => s.opsPerSecond),
    covered: covered(Infinity),
    total: universe.list.length,
    findings: all.map((f) => ({ kind: f.kind, signature: f.signature, trace: f.trace })),
    finished: new Date().toISOString(),
  };
  if (config.mutant !== undefined) summary.mutant = config.mutant;
  dest.write(dest.summary, summary);
  return { summary, warnings };
}
