/**
 * isoroot check: runs the oracles over traces. Without --target it checks
 * the observations recorded in each trace; with --target it replays the
 * operations on that target first. Streams: memory stays flat however
 * long the trace.
 */
import { openTrace } from '../../trace/reader.ts';
import { TraceChecker } from '../../oracles/checker.ts';
import { failureFinding, judgeOf, judgeOfHeader } from '../../run/check.ts';
import { bySignature, defaultKnownDir, knownBugs, recognise, type KnownBug } from '../../run/known.ts';
import type { Observation } from '../../ops/observation.ts';
import type { TargetFailure } from '../../adapters/target.ts';
import { loadProfileOption } from '../../profiles/profile.ts';
import { InputError } from '../../util/errors.ts';
import { killChildrenOnSignals } from '../../util/children.ts';
import type { Finding } from '../../oracles/finding.ts';
import type { Op } from '../../ops/catalog.ts';
import type { Session } from '../../adapters/target.ts';
import { one, type CommandSpec, type Parsed } from '../args.ts';
import { selectTarget, type OpenedTarget } from '../../adapters/select.ts';
import { preparedFor } from '../../adapters/target.ts';
import { learnTopology } from '../../adapters/learn.ts';
import { readKnownOption, readTargetChoice, targetOptions } from '../target-options.ts';
import { showFinding } from '../print-finding.ts';

export const CHECK: CommandSpec = {
  name: 'check',
  summary: 'check traces with the oracles, optionally replaying them on a target first',
  usage: 'isoroot check TRACE... [--target T] [--mutant M] [--qemu PATH]',
  positional: { name: 'TRACE', required: true, many: true },
  options: [
    ...targetOptions('replay on this target (default: check the recorded observations)'),
    { name: 'known', value: 'DIR', doc: "a corpus of the target's known bugs: violations its entries' quirks explain are named, not failures (default corpora/qemu for QEMU traces; none: fail on them)" },
  ],
};

const CHUNK = 4096;
/** Steps kept in memory to hold against known bugs; a longer trace is checked in constant memory without that. */
const KEEP_MAX = 100_000;

export async function runCheck(p: Parsed, log: (s: string) => void): Promise<number> {
  killChildrenOnSignals();
  const choice = readTargetChoice('check', p, null);
  const profileOpt = one(p, 'profile');
  const profile = choice === null && profileOpt !== undefined ? loadProfileOption(profileOpt) : undefined;
  readKnownOption('check', p, undefined); // a missing folder is a usage error before any target starts
  const opened: OpenedTarget | null = choice === null ? null : await selectTarget('check', choice);
  let failed = false;
  try {
    for (const file of p.positional) {
      const t = await openTrace(file);
      // Judged as the target declares (or --profile says), else as the trace's own header says.
      const judge = opened === null ? { ...judgeOfHeader(t.header), ...(profile === undefined ? {} : { profile }) } : judgeOf(opened.target);
      // Replayed, the trace runs on the topology the target builds for it (QEMU adds its chipset).
      // Functions the trace does not know yet are learned from the target first.
      const topology = opened === null ? t.header.topology : await learnTopology(opened.target, preparedFor(opened.target, t.header.topology, file));
      const checker = new TraceChecker(topology, judge);
      let n = 0;
      const extra: Finding[] = [];
      let kept: { op: Op; obs: Observation }[] | null = [];
      const ops: Op[] = [];
      let failure: TargetFailure | undefined;
      const step = (op: Op, obs: Observation): void => {
        checker.step(op, obs);
        if (kept !== null && kept.length < KEEP_MAX) kept.push({ op, obs });
        else kept = null;
        n++;
      };
      const fail = (f: TargetFailure, op: Op): void => {
        failure = f;
        extra.push(failureFinding(f, op));
      };
      try {
        if (opened === null) {
          for await (const s of t.steps) {
            if (failure !== undefined) break; // what follows a failure never ran
            if (kept !== null && kept.length < KEEP_MAX) ops.push(s.op);
            if (s.failure !== undefined) fail({ ...s.failure, index: n }, s.op);
            else if (s.obs === undefined) throw new InputError(`${file}:${s.line}`, 'an observation ("obs"): this step was never run; replay the trace with --target');
            else step(s.op, s.obs);
          }
        } else {
          const session: Session = await opened.target.open(topology);
          try {
            let chunk: Op[] = [];
            const flush = async (): Promise<boolean> => {
              const r = await session.run(chunk);
              if (kept !== null) ops.push(...chunk);
              r.observations.forEach((obs, i) => step(chunk[i], obs));
              if (r.failure !== undefined) fail({ ...r.failure, index: n }, chunk[r.failure.index]);
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
      let bad = findings.filter((f) => f.severity === 'violation');
      // Known bugs of the target: recognised by their quirks, else by their recorded signatures.
      const knownDir = readKnownOption('check', p, defaultKnownDir(opened?.target.info.name ?? t.header.target.name));
      /** Known bugs the violations belong to: name → how recognised, with which others, under which signatures. */
      const known = new Map<string, { bug: KnownBug; how: string; signatures: string[] }>();
      const steps = kept as { op: Op; obs: Observation }[] | null;
      const violating = bad.length;
      if (bad.length > 0 && knownDir !== undefined && steps !== null) {
        const bugs = knownBugs(knownDir);
        const whole = recognise(bugs, topology, judge, steps, bad.map((f) => f.signature), failure, ops);
        for (const f of bad) {
          const r = whole ?? bySignature(bugs, f.signature);
          if (r === null) continue;
          const all = [r.bug, ...(r.also ?? [])];
          for (const b of all) {
            const k = known.get(b.name) ?? { bug: b, how: `recognised by its ${r.by}${all.length > 1 ? `, together with ${all.filter((x) => x !== b).map((x) => x.name).join(', ')}` : ''}`, signatures: [] };
            k.signatures.push(f.signature);
            known.set(b.name, k);
          }
          f.severity = 'notice';
        }
        bad = bad.filter((f) => f.severity === 'violation');
      }
      const explained = violating - bad.length;
      log(`${file}: ${n} operations${failure !== undefined ? ' (the target failed on the next)' : ''}, ${bad.length === 0 ? 'no violations' : `${bad.length} signatures of violations`}${explained > 0 ? `, ${explained} of known bugs` : ''}${findings.length > violating ? `, ${findings.length - violating} notices` : ''}`);
      for (const f of findings) log(showFinding(f) + (count(f) > 1 ? `\n  (${count(f)} times)` : ''));
      for (const k of known.values()) log(`known: ${k.bug.name} (${k.bug.status}, ${k.how}), seen as ${k.signatures.join(', ')}: ${k.bug.reason.split('\n')[0]}`);
      failed ||= bad.length > 0;
    }
  } finally {
    await opened?.dispose();
  }
  return failed ? 1 : 0;
}
