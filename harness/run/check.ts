/** Checks an executed run: oracles over its steps, plus a crash or hang finding if the target failed. */
import { TraceChecker, type StepObserver } from '../oracles/checker.ts';
import type { Finding } from '../oracles/finding.ts';
import type { TargetFailure } from '../adapters/target.ts';
import type { Observes } from '../ops/observation.ts';
import type { Op } from '../ops/catalog.ts';
import type { Observation } from '../ops/observation.ts';
import type { Topology } from '../topology/types.ts';
import { showOp } from '../ops/codec.ts';

export function failureFinding(f: TargetFailure, op: Op | undefined): Finding {
  const during = op === undefined ? '' : ` during ${showOp(op)}`;
  const finding: Finding = {
    kind: f.kind,
    severity: 'violation',
    index: f.index,
    signature: `${f.kind}:${op?.op ?? 'session'}`,
    message: `the target ${f.kind === 'hang' ? 'stopped answering' : 'failed'}${during}: ${f.message}`,
  };
  if (f.stderr !== undefined && f.stderr !== '') finding.details = { stderr: f.stderr.slice(-4000) };
  return finding;
}

export function checkRun(
  topology: Topology,
  observes: Observes,
  steps: readonly { op: Op; obs: Observation }[],
  failure?: TargetFailure,
  ops?: readonly Op[],
  observer?: StepObserver,
): Finding[] {
  const c = new TraceChecker(topology, observes, observer);
  const out: Finding[] = [];
  for (const s of steps) out.push(...c.step(s.op, s.obs));
  if (failure !== undefined) out.push(failureFinding(failure, ops?.[failure.index]));
  return out;
}

export const violations = (fs: readonly Finding[]): Finding[] => fs.filter((f) => f.severity === 'violation');
