/** Runs operations on a target and pairs each with its observation: the running half (checking is apart). */
import type { RunResult, Target, TargetFailure } from '../adapters/target.ts';
import type { Op } from '../ops/catalog.ts';
import type { Observation } from '../ops/observation.ts';
import type { Topology } from '../topology/types.ts';

export interface Executed {
  steps: { op: Op; obs: Observation }[];
  failure?: TargetFailure;
}

export async function execute(target: Target, topology: Topology, ops: readonly Op[]): Promise<Executed> {
  let result: RunResult;
  const session = await target.open(topology);
  try {
    result = await session.run(ops);
  } finally {
    await session.close();
  }
  const steps = result.observations.map((obs, i) => ({ op: ops[i], obs }));
  return result.failure === undefined ? { steps } : { steps, failure: result.failure };
}
