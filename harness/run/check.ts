/** Checks an executed run: oracles over its steps, plus a crash or hang finding if the target failed. */
import { TraceChecker, type Judge, type StepObserver } from '../oracles/checker.ts';
import { specRule, type Finding } from '../oracles/finding.ts';
import { XEN_AGENT_FIELD, type Target, type TargetFailure } from '../adapters/target.ts';
import type { Observes } from '../ops/observation.ts';
import type { Op } from '../ops/catalog.ts';
import type { Observation } from '../ops/observation.ts';
import type { Topology } from '../topology/types.ts';
import { showOp } from '../ops/codec.ts';
import type { TraceHeader } from '../trace/format.ts';

/**
 * The line of a crashed target's stderr that tells one crash from
 * another, numbers taken out: the first that names an error, assertion,
 * abort or panic (QEMU's comes before its register dump; Python's last),
 * QEMU's "hardware error" before any other, else the first.
 */
export function crashCause(stderr: string | undefined): string | null {
  const lines = (stderr ?? '').split('\n').filter((l) => l.trim() !== '');
  // QEMU's hw_error() first: warnings QEMU printed before it (intel-iommu's translation faults) name an error too.
  const line = lines.find((l) => /hardware error/i.test(l)) ?? lines.find((l) => /error|assert|abort|panic/i.test(l)) ?? lines[0];
  if (line === undefined) return null;
  return line.trim().replace(/0x[0-9a-f]+|\b\d+\b/gi, '#').replace(/\s+/g, ' ').slice(0, 100);
}

/** How a target's traces are judged: what it observes and the profile it declares. */
export const judgeOf = (target: Target): Judge => ({ observes: target.capabilities.observes, profile: target.profile ?? null });

/** How a trace written from this target names it in its header. */
export function traceTarget(target: Target): TraceHeader['target'] {
  const t: TraceHeader['target'] = { ...target.info, observes: target.capabilities.observes };
  if (target.profile !== undefined && target.profile !== null) t.profile = target.profile;
  return t;
}

/** How a trace's own header says to judge it: what its target observed, and the profile it declared. */
export const judgeOfHeader = (h: TraceHeader): Judge => ({ observes: h.target.observes, profile: h.target.profile ?? null });

export function failureFinding(f: TargetFailure, op: Op | undefined): Finding {
  const during = op === undefined ? '' : ` during ${showOp(op)}`;
  if (f.kind === 'poweroff')
    return { kind: 'platform', severity: 'notice', index: f.index, signature: `platform:poweroff:${op?.op ?? 'session'}`, message: `the platform powered off${during} (${f.message}); the operations after it did not run`, rule: specRule('platform.poweroff') };
  const cause = f.kind === 'crash' ? crashCause(f.stderr) : f.kind === 'protocol' ? (f.field ?? null) : null;
  const finding: Finding = {
    kind: f.kind,
    severity: 'violation',
    index: f.index,
    signature: `${f.kind}:${op?.op ?? 'session'}${cause === null ? '' : `:${cause}`}`,
    rule: specRule(f.kind !== 'protocol' ? 'target.alive' : f.field?.startsWith(XEN_AGENT_FIELD) === true ? 'protocol.xen-vpci-agent' : 'protocol.vfio-user'),
    message: `the target ${f.kind === 'hang' ? 'stopped answering' : f.kind === 'protocol' ? 'broke its protocol' : 'failed'}${during}: ${f.message}`,
  };
  if (f.stderr !== undefined && f.stderr !== '') finding.details = { stderr: f.stderr.slice(-4000) };
  return finding;
}

export function checkRun(
  topology: Topology,
  observes: Observes | Judge,
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
