/**
 * The gate's first half: every corpus trace replayed on the target and
 * judged by its status. A fixed trace must pass (failing again is a
 * regression); an open one may still fail; a known divergence must keep
 * its signature and nothing else.
 */
import { CorpusStore, type CorpusEntry } from '../corpus/store.ts';
import { readTrace } from '../trace/reader.ts';
import { execute } from '../run/execute.ts';
import { checkRun, judgeOf, violations } from '../run/check.ts';
import { preparedFor, type Target } from '../adapters/target.ts';
import { learnTopology } from '../adapters/learn.ts';
import { quirkNamed } from '../adapters/quirk.ts';
import { quirkExplains } from '../run/known.ts';
import type { Finding } from '../oracles/finding.ts';
import type { TestCase } from './junit.ts';
import { InputError } from '../util/errors.ts';

/**
 * explained: whether the entry's quirk (when it has one) explains the
 * replay, i.e. the known bug is what still fails and nothing else.
 */
function judge(e: CorpusEntry, vs: Finding[], explained: boolean | null): Pick<TestCase, 'outcome' | 'message' | 'detail'> {
  const m = e.meta;
  const first = vs[0];
  const detail = vs.map((f) => `${f.kind} at op #${f.index}: ${f.message}`).join('\n');
  const mark = `isoroot corpus mark ${m.name} --status fixed --corpus <dir>`;
  if (m.status !== 'fixed' && first !== undefined && explained === false)
    return { outcome: 'fail', message: `the known bug changed: its quirk ${m.quirk ?? ''} no longer explains what the target does (${first.signature})`, detail };
  switch (m.status) {
    case 'fixed':
      return first === undefined ? { outcome: 'pass' } : { outcome: 'fail', message: `regression: ${first.signature} is back (fixed since ${m.firstSeen.slice(0, 10)})`, detail };
    case 'open':
      return first === undefined ? { outcome: 'pass', message: `open, but no longer fails: mark it fixed (${mark})` } : { outcome: 'skip', message: `still open: ${first.signature}` };
    case 'known-divergence': {
      if (first === undefined) return { outcome: 'pass', message: `the known divergence is gone: mark it fixed (${mark})` };
      const other = vs.filter((f) => m.signature !== undefined && f.signature !== m.signature);
      return other.length === 0
        ? { outcome: 'pass', message: `known divergence: ${m.reason ?? ''}` }
        : { outcome: 'fail', message: `a known divergence changed: now ${other[0].signature}, recorded ${m.signature}`, detail };
    }
  }
}

export async function replayCorpus(target: Target, dir: string, classname: string): Promise<TestCase[]> {
  const out: TestCase[] = [];
  for (const e of new CorpusStore(dir).list()) {
    const started = Date.now();
    const t = await readTrace(e.trace);
    const ops = t.steps.map((s) => s.op);
    let prepared;
    try {
      prepared = preparedFor(target, t.header.topology, e.trace);
    } catch (err) {
      // Recorded with what this build of the target lacks (QEMU 11's scalable-mode IOMMU on 7.2): said, not run.
      if (!(err instanceof InputError)) throw err;
      out.push({ suite: `corpus ${dir}`, classname, name: e.meta.name, seconds: 0, outcome: 'skip', message: `this target cannot build the trace's machine: ${err.expected}` });
      continue;
    }
    const topology = await learnTopology(target, prepared);
    const run = await execute(target, topology, ops);
    const vs = violations(checkRun(topology, judgeOf(target), run.steps, run.failure, ops));
    const q = e.meta.quirk === undefined ? undefined : quirkNamed(e.meta.quirk);
    const explained = q === undefined ? null : quirkExplains(q, topology, judgeOf(target), run.steps, run.failure, ops);
    out.push({ suite: `corpus ${dir}`, classname, name: e.meta.name, seconds: (Date.now() - started) / 1000, ...judge(e, vs, explained) });
  }
  return out;
}
