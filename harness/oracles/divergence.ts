/**
 * divergence: the target observed something other than the model predicted.
 * The signature names the operation, where the model says it goes (with
 * "@0" for a BAR placed at address 0, which some platforms refuse to map)
 * and each differing field with the classes of its values, e.g.
 * `divergence:mmio.read:nobody:value(ones>zeros)`: narrow enough that a
 * known divergence recorded in a corpus does not hide a different one.
 */
import { showOp } from '../ops/codec.ts';
import { showIrq, showObs } from '../ops/observation-codec.ts';
import { differences, showDifference, type Difference } from './compare.ts';
import { routeClass } from './labels.ts';
import { accessOf, regionIndex, type Oracle, type StepView } from './oracle.ts';
import type { Finding } from './finding.ts';

function placeClass(v: StepView): string {
  const to = v.predicted.to;
  const acc = accessOf(v.op);
  const atZero = acc !== null && to?.offset !== undefined && regionIndex(to.region) >= 0 && acc.addr - to.offset === 0;
  return routeClass(to) + (atZero ? '@0' : '');
}

/**
 * Interrupts alone differ: where an interrupt goes does not depend on the
 * op that raised it (a doorbell, a command write, an unplug, a reset), so
 * the signature names the mismatch and whether the functions that signal
 * sit on the main root or another one, e.g. `divergence:irqs(lines)@rN`,
 * `divergence:irqs(message>none)@r0`.
 */
function irqSignature(v: StepView, d: Difference): string {
  // The roots of the functions the model has signalling; else the root the op went to, or of the device it names.
  const sources = new Set(v.predicted.irqs?.flatMap((i) => (i.dev === undefined ? [] : [v.model.devices.get(i.dev)?.root ?? 0])).map((r) => (r === 0 ? 'r0' : 'rN')));
  const r = v.predicted.to?.root ?? ('dev' in v.op ? v.model.devices.get(v.op.dev)?.root : 'root' in v.op ? v.op.root : undefined);
  const where = sources.size > 0 ? `@${[...sources].sort().join(',')}` : r === undefined ? '' : r === 0 ? '@r0' : '@rN';
  // Lines alone: another line, or one missing or extra, is the same routing disagreement (a line already high shows no change).
  const onlyLines = [d.predicted, d.observed].every((k) => k === 'line' || k === 'none');
  return `divergence:${onlyLines ? 'irqs(lines)' : showDifference(d)}${where}`;
}

export function divergenceOracle(): Oracle {
  return {
    step(v: StepView): Finding[] {
      const diff = differences(v.op, v.observed, v.predicted, v.observes, v.seenIrqs);
      if (diff.length === 0) return [];
      let predicted = v.predicted.unknown === true ? `${showObs(v.predicted)} (value unknown)` : showObs(v.predicted);
      if (v.seenIrqs !== undefined && diff.some((d) => d.field === 'irqs')) predicted += `, of whose interrupts the target can see [${v.seenIrqs.map(showIrq).join(', ')}]`;
      return [
        {
          kind: 'divergence',
          severity: 'violation',
          index: v.index,
          signature: diff.length === 1 && diff[0].field === 'irqs' ? irqSignature(v, diff[0]) : `divergence:${v.op.op}:${placeClass(v)}:${diff.map(showDifference).join('+')}`,
          message: `${showOp(v.op)}: the model predicts ${predicted} but the target observed ${showObs(v.observed)}`,
          details: { expected: predicted, observed: showObs(v.observed) },
        },
      ];
    },
  };
}
