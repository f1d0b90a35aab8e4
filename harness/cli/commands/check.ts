/**
 * isoroot check: runs the oracles over traces. Without --target it checks
 * the observations recorded in each trace; with --target it replays the
 * operations on that target first. Streams: memory stays flat however
 * long the trace.
 */
import { openTrace } from '../../trace/reader.ts';
import { TraceChecker } from '../../oracles/checker.ts';
import { failureFinding } from '../../run/check.ts';
import { InputError } from '../../util/errors.ts';
import { killChildrenOnSignals } from '../../util/children.ts';
import { MUTANTS } from '../../adapters/model/mutants.ts';
import type { Finding } from '../../oracles/finding.ts';
import type { Op } from '../../ops/catalog.ts';
import type { Session } from '../../adapters/target.ts';
import { intOpt, one, type CommandSpec, type Parsed } from '../args.ts';
import { TARGET_HELP, selectTarget, type OpenedTarget } from '../../adapters/select.ts';
import { showFinding } from '../print-finding.ts';

export const CHECK: CommandSpec = {
  name: 'check',
  summary: 'check traces with the oracles, optionally replaying them on a target first',
  usage: 'isoroot check TRACE... [--target T] [--mutant M]',
  positional: { name: 'TRACE', required: true, many: true },
  options: [
    { name: 'target', value: 'T', doc: `replay on this target (${TARGET_HELP}); default: check the recorded observations` },
    { name: 'mutant', value: 'M', doc: `with --target model: a faulty variant (${MUTANTS.map((m) => m.name).join(', ')})` },
    { name: 'timeout', value: 'MS', doc: 'per-operation timeout of exec targets (default 3000)' },
  ],
};

const CHUNK = 4096;

export async function runCheck(p: Parsed, log: (s: string) => void): Promise<number> {
  killChildrenOnSignals();
  const targetSpec = one(p, 'target');
  if (targetSpec === undefined && one(p, 'mutant') !== undefined) throw new InputError('isoroot check', '--mutant needs --target model');
  const opened: OpenedTarget | null = targetSpec === undefined ? null : await selectTarget('check', targetSpec, one(p, 'mutant'), intOpt('check', p, 'timeout', 1, 3_600_000));
  let failed = false;
  try {
    for (const file of p.positional) {
      const t = await openTrace(file);
      const observes = opened === null ? t.header.target.observes : opened.target.capabilities.observes;
      const checker = new TraceChecker(t.header.topology, observes);
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
          const session: Session = await opened.target.open(t.header.topology);
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
