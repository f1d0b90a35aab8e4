/** A campaign's run directory, read for a report or a merge. */
import type { KnownSighting } from '../campaign/known-store.ts';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RunDir, type CampaignConfig, type CoveragePoint, type Summary } from '../campaign/run-dir.ts';
import type { CampaignFinding } from '../campaign/findings-store.ts';
import { readTrace } from '../trace/reader.ts';
import { InputError } from '../util/errors.ts';
import type { Trace } from '../trace/format.ts';

export interface LoadedFinding {
  record: CampaignFinding;
  trace: Trace;
  file: string;
}

export interface LoadedRun {
  dir: string;
  config: CampaignConfig;
  summary: Summary | null;
  coverage: CoveragePoint[];
  features: Record<string, number>;
  findings: LoadedFinding[];
  /** Known bugs of the target the campaign saw again (not findings). */
  known: KnownSighting[];
  warnings: string[];
}

export async function loadRun(dir: string): Promise<LoadedRun> {
  const rd = new RunDir(dir);
  if (!rd.exists()) throw new InputError(dir, 'a campaign run directory (campaign.json is missing)');
  const { points, warnings } = rd.readCoverage();
  const findings: LoadedFinding[] = [];
  if (existsSync(rd.findings))
    for (const f of readdirSync(rd.findings).filter((x) => x.endsWith('.finding.json')).sort()) {
      const record = rd.read<CampaignFinding>(join(rd.findings, f));
      const file = join(rd.findings, record.trace);
      findings.push({ record, trace: await readTrace(file), file });
    }
  const known = existsSync(rd.known)
    ? readdirSync(rd.known)
        .filter((x) => x.endsWith('.known.json'))
        .sort()
        .map((f) => rd.read<KnownSighting>(join(rd.known, f)))
    : [];
  const summary = rd.readMaybe<Summary>(rd.summary);
  if (summary === null) warnings.push(`${rd.summary}: missing (the campaign did not finish): figures come from the coverage journal`);
  return { dir, config: rd.read<CampaignConfig>(rd.config), summary, coverage: points, features: rd.readMaybe<Record<string, number>>(rd.features) ?? {}, findings: findings.sort((a, b) => a.record.run - b.record.run), known, warnings };
}

/** Runs, operations, seconds, throughput: from the summary, or the last coverage point of an unfinished run. */
export function figures(r: LoadedRun): { runs: number; ops: number; seconds: number; opsPerSecond: number; sequencesPerSecond: number; covered: number; total: number } {
  if (r.summary !== null) return r.summary;
  const last = r.coverage[r.coverage.length - 1] ?? { t: 0, runs: 0, ops: 0, covered: 0, total: 0 };
  const s = last.t;
  return { runs: last.runs, ops: last.ops, seconds: s, opsPerSecond: s > 0 ? Math.round(last.ops / s) : 0, sequencesPerSecond: s > 0 ? Math.round(last.runs / s) : 0, covered: last.covered, total: last.total };
}
