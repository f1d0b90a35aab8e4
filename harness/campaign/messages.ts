/** What the coordinator and its workers say to each other over the IPC channel. */
import type { Budget } from './budget.ts';
import type { CampaignFinding } from './findings-store.ts';
import type { WorkerState } from './run-dir.ts';
import type { Topology } from '../topology/types.ts';
import type { PhaseTimes } from '../run/phases.ts';

export interface StartMessage {
  type: 'start';
  stream: number;
  seed: number;
  target: string;
  mutant?: string;
  timeoutMs?: number;
  qemu?: string;
  qemuEvents?: boolean;
  contract?: string;
  profile?: string;
  server?: string;
  topology?: Topology;
  feedback: boolean;
  generator: 'fragments' | 'raw';
  budget: Budget;
  /** Runs are numbered across the campaign; this worker does [nextRun, endRun). */
  nextRun: number;
  endRun: number | null;
  /** Epoch ms at which a time budget runs out. */
  deadline: number | null;
  runs: number;
  ops: number;
  seconds: number;
  covered: string[];
  /** The seed pool to start from (SeedPool.toJson), and what it was read from, for errors. */
  seeds: unknown;
  seedsFile: string;
  knownSignatures: string[];
  /** The corpus of the target's known bugs (open ones and known divergences), recognised by their quirks. */
  known?: string;
}

export type ToWorker = StartMessage | { type: 'stop' };

export type FromWorker =
  /** Phases: this stream's time so far per phase (ms), cumulative. */
  | { type: 'progress'; stream: number; runs: number; ops: number; newFeatures: string[]; phases: PhaseTimes }
  | { type: 'finding'; stream: number; finding: Omit<CampaignFinding, 'trace'>; traceText: string }
  | { type: 'checkpoint'; stream: number; state: WorkerState; seeds: unknown }
  /** A known bug seen in a run; the trace comes with the worker's first sighting of it. */
  | { type: 'known'; stream: number; name: string; by: 'quirk' | 'signature'; signature: string; run: number; traceText?: string }
  | { type: 'done'; stream: number }
  | { type: 'fatal'; stream: number; message: string; usage?: { where: string; expected: string } };
