/** Runs operations on a target and pairs each with its observation: the running half (checking is apart). */
import type { RunResult, Target, TargetFailure } from '../adapters/target.ts';
import type { Op } from '../ops/catalog.ts';
import type { Observation } from '../ops/observation.ts';
import type { Topology } from '../topology/types.ts';
import type { PhaseClock } from './phases.ts';

export interface Executed {
  steps: { op: Op; obs: Observation }[];
  failure?: TargetFailure;
}

/** Runs ops in a fresh session; with a clock, the time of opening, running and closing goes into its phases. */
export async function execute(target: Target, topology: Topology, ops: readonly Op[], clock?: PhaseClock): Promise<Executed> {
  let result: RunResult;
  const session = clock === undefined ? await target.open(topology) : await clock.opening(target, () => target.open(topology));
  try {
    result = clock === undefined ? await session.run(ops) : await clock.time('run', () => session.run(ops));
  } finally {
    if (clock === undefined) await session.close();
    else await clock.time('close', () => session.close());
  }
  const steps = result.observations.map((obs, i) => ({ op: ops[i], obs }));
  return result.failure === undefined ? { steps } : { steps, failure: result.failure };
}
