/**
 * divergence: the target observed something other than the model predicted.
 * The signature names the operation, where the model says it goes (with
 * "@0" for a BAR placed at address 0, which some platforms refuse to map)
 * and each differing field with the classes of its values, e.g.
 * `divergence:mmio.read:nobody:value(ones>zeros)`: narrow enough that a
 * known divergence recorded in a corpus does not hide a different one.
 */
import { showOp } from '../ops/codec.ts';
import { showObs } from '../ops/observation-codec.ts';
import { differences, showDifference } from './compare.ts';
import { routeClass } from './labels.ts';
import { accessOf, regionIndex, type Oracle, type StepView } from './oracle.ts';
import type { Finding } from './finding.ts';

function placeClass(v: StepView): string {
  const to = v.predicted.to;
  const acc = accessOf(v.op);
  const atZero = acc !== null && to?.offset !== undefined && regionIndex(to.region) >= 0 && acc.addr - to.offset === 0;
  return routeClass(to) + (atZero ? '@0' : '');
}

export function divergenceOracle(): Oracle {
  return {
    step(v: StepView): Finding[] {
      const diff = differences(v.op, v.observed, v.predicted, v.observes);
      if (diff.length === 0) return [];
      const predicted = v.predicted.unknown === true ? `${showObs(v.predicted)} (value unknown)` : showObs(v.predicted);
      return [
        {
          kind: 'divergence',
          severity: 'violation',
          index: v.index,
          signature: `divergence:${v.op.op}:${placeClass(v)}:${diff.map(showDifference).join('+')}`,
          message: `${showOp(v.op)}: the model predicts ${predicted} but the target observed ${showObs(v.observed)}`,
          details: { expected: predicted, observed: showObs(v.observed) },
        },
      ];
    },
  };
}
