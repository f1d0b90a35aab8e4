/**
 * A campaign's run directory:
 *   campaign.json          what was asked (target, seed, workers, budget, shard…)
 *   state/<stream>.json    each worker's checkpoint: next run, counts, covered features
 *   seeds/<stream>.json    each worker's pool of seed sequences (for --resume)
 *   features.json          every covered feature with the second it was first reached
 *   coverage.jsonl         coverage over time: {t, runs, ops, covered, total}
 *   findings/              <kind>-<hash>.jsonl (minimal trace) and .finding.json
 *   summary.json           the final tally
 * Everything is written through a temporary file and a rename, except
 * coverage.jsonl, an append-only journal whose last line a kill can cut short.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../util/errors.ts';
import { writeJsonAtomic } from '../util/atomic.ts';
import type { Budget } from './budget.ts';
import type { PhaseTimes } from '../run/phases.ts';
import type { TargetChoice } from '../adapters/select.ts';
import type { Topology } from '../topology/types.ts';
import { ISOROOT_VERSION } from '../version.ts';

export interface CampaignConfig {
  version: 1;
  target: string;
  mutant?: string;
  seed: number;
  workers: number;
  budget: Budget;
  shard: { index: number; count: number };
  topology?: Topology;
  feedback: boolean;
  /** fragments: the purposeful generators; raw: operations drawn at random from the catalog. */
  generator: 'fragments' | 'raw';
  timeoutMs?: number;
  /** The QEMU binary of a qemu target. */
  qemu?: string;
  /** QEMU's trace events as evidence. */
  qemuEvents?: boolean;
  /** The isolation contract of a vfio-user target (--contract). */
  contract?: string;
  /** The profile to judge by (--profile), over the target's own. */
  profile?: string;
  /** The command that starts each vfio-user server (--server). */
  server?: string;
  /** xen-vpci: the Xen tree (--xen-src). */
  xenSrc?: string;
  /** vfio-guest: the user's own kernel and its modules (--kernel, --modules). */
  kernel?: string;
  modules?: string;
  corpus?: string;
  /** A corpus whose known divergences the campaign does not report (default corpora/<target>). */
  known?: string;
  isoroot: string;
  started: string;
}

type ChoiceField = 'target' | 'mutant' | 'timeoutMs' | 'qemu' | 'qemuEvents' | 'contract' | 'profile' | 'server' | 'xenSrc' | 'kernel' | 'modules';

/** The options of a target choice, named alike in the choice, the campaign and the worker's start message. */
type ChoiceOption = Exclude<ChoiceField, 'target'>;
const CHOICE_OPTIONS: readonly ChoiceOption[] = ['mutant', 'timeoutMs', 'qemu', 'qemuEvents', 'contract', 'profile', 'server', 'xenSrc', 'kernel', 'modules'];

/** The options that are set (a flag only when on), copied from one holder to another. */
export function choiceOptions(c: Partial<Record<ChoiceOption, unknown>>): Pick<CampaignConfig, ChoiceOption> {
  const out: Record<string, unknown> = {};
  for (const k of CHOICE_OPTIONS) if (c[k] !== undefined && c[k] !== false) out[k] = c[k];
  return out as Pick<CampaignConfig, ChoiceOption>;
}

/** The target a campaign runs, as select.ts takes it. */
export function choiceOf(c: Pick<CampaignConfig, ChoiceField>): TargetChoice {
  return { spec: c.target, ...choiceOptions(c) };
}

/** The campaign fields that record a target choice. */
export function withChoice<T extends object>(o: T, c: TargetChoice): T & Pick<CampaignConfig, ChoiceField> {
  return { ...o, target: c.spec, ...choiceOptions(c) };
}

/** A campaign configuration with the usual defaults: one shard, feedback on, the purposeful generators. */
export function campaignConfig(c: Pick<CampaignConfig, 'target' | 'seed' | 'workers' | 'budget'> & Partial<CampaignConfig>): CampaignConfig {
  return { version: 1, shard: { index: 0, count: 1 }, feedback: true, generator: 'fragments', isoroot: ISOROOT_VERSION, started: new Date().toISOString(), ...c };
}

export interface WorkerState {
  stream: number;
  nextRun: number;
  /** Exclusive end of this worker's runs; null under a time budget. */
  endRun: number | null;
  runs: number;
  ops: number;
  seconds: number;
  covered: string[];
}

export interface CoveragePoint {
  t: number;
  runs: number;
  ops: number;
  covered: number;
  total: number;
}

export interface Summary {
  target: string;
  mutant?: string;
  seed: number;
  workers: number;
  runs: number;
  ops: number;
  seconds: number;
  sequencesPerSecond: number;
  opsPerSecond: number;
  covered: number;
  /** Features the target reported of its own paths (QEMU's trace events, --qemu-events), counted apart from the universe. */
  targetFeatures?: number;
  total: number;
  findings: { kind: string; signature: string; trace: string }[];
  /** Known bugs of the target seen again (not findings): name, how often, under which signatures. */
  known?: { name: string; count: number; signatures: string[]; trace?: string }[];
  /** Where the workers' time went, per phase, in ms summed over the workers (this run of the campaign, not earlier ones it resumed). */
  phases?: PhaseTimes;
  finished: string;
}

export class RunDir {
  constructor(readonly dir: string) {}

  get config(): string {
    return join(this.dir, 'campaign.json');
  }
  state(stream: number): string {
    return join(this.dir, 'state', `${stream}.json`);
  }
  seeds(stream: number): string {
    return join(this.dir, 'seeds', `${stream}.json`);
  }
  get features(): string {
    return join(this.dir, 'features.json');
  }
  get coverage(): string {
    return join(this.dir, 'coverage.jsonl');
  }
  get findings(): string {
    return join(this.dir, 'findings');
  }
  /** Known bugs seen again: <name>.known.json and the trace of the first sighting. */
  get known(): string {
    return join(this.dir, 'known');
  }
  get summary(): string {
    return join(this.dir, 'summary.json');
  }

  create(): void {
    for (const d of [this.dir, join(this.dir, 'state'), join(this.dir, 'seeds'), this.findings, this.known]) mkdirSync(d, { recursive: true });
  }

  exists(): boolean {
    return existsSync(this.config);
  }

  write(file: string, v: unknown): void {
    writeJsonAtomic(file, v);
  }

  read<T>(file: string): T {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new InputError(file, 'a readable file of a campaign run directory');
    }
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new InputError(file, `valid JSON (${(e as Error).message})`);
    }
  }

  readMaybe<T>(file: string): T | null {
    return existsSync(file) ? this.read<T>(file) : null;
  }

  appendCoverage(p: CoveragePoint): void {
    appendFileSync(this.coverage, JSON.stringify(p) + '\n');
  }

  /**
   * The coverage journal. Its last line may be cut short by a kill: that
   * line is dropped and said so in `warnings`; any other bad line is an error.
   */
  readCoverage(): { points: CoveragePoint[]; warnings: string[] } {
    if (!existsSync(this.coverage)) return { points: [], warnings: [] };
    const lines = readFileSync(this.coverage, 'utf8').split('\n');
    const warnings: string[] = [];
    const points: CoveragePoint[] = [];
    const last = lines.length - 1 - (lines[lines.length - 1] === '' ? 1 : 0);
    lines.forEach((l, i) => {
      if (l === '' && i > last) return;
      try {
        points.push(JSON.parse(l) as CoveragePoint);
      } catch {
        if (i === last) warnings.push(`${this.coverage}:${i + 1}: cut short (the campaign was killed while writing it); left out`);
        else throw new InputError(`${this.coverage}:${i + 1}`, 'a JSON coverage point');
      }
    });
    return { points, warnings };
  }

  /** Worker streams that have a checkpoint. */
  streams(): number[] {
    const d = join(this.dir, 'state');
    if (!existsSync(d)) return [];
    return readdirSync(d)
      .filter((f) => /^[0-9]+\.json$/.test(f))
      .map((f) => Number(f.slice(0, -5)))
      .sort((a, b) => a - b);
  }
}
