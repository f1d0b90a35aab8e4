/**
 * isoroot check: runs the oracles over traces. Without --target it checks
 * the observations recorded in each trace; with --target it replays the
 * operations on that target first. Streams: memory stays flat however
 * long the trace.
 */
import { openTrace } from '../../trace/reader.ts';
import { TraceChecker } from '../../oracles/checker.ts';
import { failureFinding, judgeOf, judgeOfHeader } from '../../run/check.ts';
import { loadProfile } from '../../profiles/profile.ts';
import { InputError } from '../../util/errors.ts';
import { killChildrenOnSignals } from '../../util/children.ts';
import type { Finding } from '../../oracles/finding.ts';
import type { Op } from '../../ops/catalog.ts';
import type { Session } from '../../adapters/target.ts';
import { one, type CommandSpec, type Parsed } from '../args.ts';
import { selectTarget, type OpenedTarget } from '../../adapters/select.ts';
import { preparedFor } from '../../adapters/target.ts';
import { readTargetChoice, targetOptions } from '../target-options.ts';
import { showFinding } from '../print-finding.ts';

export const CHECK: CommandSpec = {
  name: 'check',
  summary: 'check traces with the oracles, optionally replaying them on a target first',
  usage: 'isoroot check TRACE... [--target T] [--mutant M] [--qemu PATH]',
  positional: { name: 'TRACE', required: true, many: true },
  options: targetOptions('replay on this target (default: check the recorded observations)'),
};

const CHUNK = 4096;

export async function runCheck(p: Parsed, log: (s: string) => void): Promise<number> {
  killChildrenOnSignals();
  const choice = readTargetChoice('check', p, null);
  const profileOpt = one(p, 'profile');
  const profile = choice === null && profileOpt !== undefined ? loadProfile(profileOpt) : undefined;
  const opened: OpenedTarget | null = choice === null ? null : await selectTarget('check', choice);
  let failed = false;
  try {
    for (const file of p.positional) {
      const t = await openTrace(file);
      // Judged as the target declares (or --profile says), else as the trace's own header says.
      const judge = opened === null ? { ...judgeOfHeader(t.header), ...(profile === undefined ? {} : { profile }) } : judgeOf(opened.target);
      // Replayed, the trace runs on the topology the target builds for it (QEMU adds its chipset).
      const topology = opened === null ? t.header.topology : preparedFor(opened.target, t.header.topology, file);
      const checker = new TraceChecker(topology, judge);
      let n = 0;
      const extra: Finding[] = [];
      try {
        if (opened === null) {
          for await (const s of t.steps) {
            if (s.obs === undefined) throw new InputError(`${file}:${s.line}`, 'an observation ("obs"): this step was never run; replay the trace with --target');
            checker.step(s.op, s.obs);
            n++;
          }
        } else {
          const session: Session = await opened.target.open(topology);
          try {
            let chunk: Op[] = [];
            const flush = async (): Promise<boolean> => {
              const r = await session.run(chunk);
              r.observations.forEach((obs, i) => checker.step(chunk[i], obs));
              if (r.failure !== undefined) extra.push(failureFinding({ ...r.failure, index: n + r.failure.index }, chunk[r.failure.index]));
              n += r.observations.length;
              chunk = [];
              return r.failure === undefined;
            };
            for await (const s of t.steps) {
              chunk.push(s.op);
              if (chunk.length >= CHUNK && !(await flush())) break;
            }
            if (chunk.length > 0) await flush();
          } finally {
            await session.close();
          }
        }
      } finally {
        t.close();
      }
      const findings = [...checker.findings(), ...extra];
      const count = (f: Finding): number => checker.bySignature.get(f.signature)?.count ?? 1;
      const bad = findings.filter((f) => f.severity === 'violation');
      log(`${file}: ${n} operations, ${bad.length === 0 ? 'no violations' : `${checker.violations + extra.length} violations in ${bad.length} signatures`}${findings.length > bad.length ? `, ${findings.length - bad.length} notices` : ''}`);
      for (const f of findings) log(showFinding(f) + (count(f) > 1 ? `\n  (${count(f)} times)` : ''));
      failed ||= bad.length > 0;
    }
  } finally {
    await opened?.dispose();
  }
  return failed ? 1 : 0;
}
