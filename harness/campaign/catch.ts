/**
 * A campaign run from code, without a terminal: the same engine as
 * `isoroot fuzz` (workers, feedback, shrinking, the findings store, known
 * bugs), optionally stopped at the first finding a predicate accepts. The
 * suites and corpora/model rest on this, so they test the loop users run.
 */
import { join } from 'node:path';
import type { Mutant } from '../adapters/model/mutants.ts';
import type { TargetChoice } from '../adapters/select.ts';
import { runCampaign, type CampaignResult } from './coordinator.ts';
import { RunDir, campaignConfig, withChoice, type CampaignConfig } from './run-dir.ts';
import { Progress } from './progress.ts';
import type { CampaignFinding } from './findings-store.ts';

export const MUTANT_SEED = 42;
export const MUTANT_BUDGET = 20_000;

export interface QuietCampaign {
  /** The run directory (must not hold a campaign yet). */
  dir: string;
  seed: number;
  runs: number;
  workers?: number;
  /** Stop at the first finding this accepts. */
  stopWhen?: (f: CampaignFinding) => boolean;
  /** Options of the campaign beyond the target and budget (known bugs, generator, topology...). */
  extra?: Partial<CampaignConfig>;
  log?: (s: string) => void;
}

const quiet = { isTTY: false, write: (): boolean => true };

/** A campaign of this configuration into `dir`, printing nothing (suites, benches, scripts). */
export function runQuiet(config: CampaignConfig, dir: string, stopWhen?: (f: CampaignFinding) => boolean, log: (s: string) => void = () => {}): Promise<CampaignResult> {
  return runCampaign({ config, dir, resume: false, log, out: new Progress(quiet), show: () => '', ...(stopWhen !== undefined ? { stopWhen } : {}) });
}

export function quietCampaign(choice: TargetChoice, o: QuietCampaign): Promise<CampaignResult> {
  const config = campaignConfig({ ...withChoice({ seed: o.seed, workers: o.workers ?? 1, budget: { runs: o.runs } }, choice), ...o.extra });
  return runQuiet(config, o.dir, o.stopWhen, o.log);
}

/** The file of a finding's minimal trace in a run directory. */
export const tracePath = (dir: string, f: CampaignFinding): string => join(new RunDir(dir).findings, f.trace);

export interface Caught {
  result: CampaignResult;
  /** The first finding of an oracle named for the mutant, and its trace file; null when the budget ran out first. */
  finding: CampaignFinding | null;
  trace: string | null;
}

/** A campaign on a mutant of the model, stopped at the first finding of an oracle named for it (unless `full`). */
export async function catchMutant(m: Mutant, o: { dir: string; seed?: number; runs?: number; full?: boolean }): Promise<Caught> {
  const named = (f: CampaignFinding): boolean => f.severity === 'violation' && (m.caughtBy as readonly string[]).includes(f.kind);
  const result = await quietCampaign({ spec: 'model', mutant: m.name }, { dir: o.dir, seed: o.seed ?? MUTANT_SEED, runs: o.runs ?? MUTANT_BUDGET, ...(o.full === true ? {} : { stopWhen: named }) });
  const finding = result.findings.filter(named).sort((a, b) => a.run - b.run)[0] ?? null;
  return { result, finding, trace: finding === null ? null : tracePath(o.dir, finding) };
}
