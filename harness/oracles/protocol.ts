/**
 * protocol: departures from the target's protocol that the transport read
 * past (Observation.departures), such as a vfio-user error reply that
 * carries a body. A departure that breaks the conversation ends the run
 * instead, as a protocol failure (run/check.ts).
 */
import { showOp } from '../ops/codec.ts';
import { specRule, type Finding } from './finding.ts';
import type { Oracle, StepView } from './oracle.ts';

export function protocolOracle(): Oracle {
  return {
    step(v: StepView): Finding[] {
      return (v.observed.departures ?? []).map((d) => ({
        kind: 'protocol',
        severity: 'violation',
        index: v.index,
        signature: `protocol:${d.field}`,
        message: `${showOp(v.op)}: the target's answer departs from its protocol: ${d.message}`,
        rule: specRule('protocol.vfio-user'),
      }));
    },
  };
}
