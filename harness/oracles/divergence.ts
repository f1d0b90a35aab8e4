/** divergence: the target observed something other than the model predicted. */
import { showOp } from '../ops/codec.ts';
import { showObs } from '../ops/observation-codec.ts';
import { differences } from './compare.ts';
import { opFamily } from './labels.ts';
import type { Oracle, StepView } from './oracle.ts';
import type { Finding } from './finding.ts';

export function divergenceOracle(): Oracle {
  return {
    step(v: StepView): Finding[] {
      const diff = differences(v.observed, v.predicted, v.observes);
      if (diff.length === 0) return [];
      return [
        {
          kind: 'divergence',
          severity: 'violation',
          index: v.index,
          signature: `divergence:${opFamily(v.op)}:${diff.join('+')}`,
          message: `${showOp(v.op)}: the model predicts ${showObs(v.predicted)} but the target observed ${showObs(v.observed)}`,
          details: { expected: showObs(v.predicted), observed: showObs(v.observed) },
        },
      ];
    },
  };
}
