/**
 * Every mutant of the model must be caught by the oracle named for it, by
 * the campaign engine `isoroot fuzz --mutant` runs, within 20 000 sequences,
 * with a shrunk trace of at most 12 operations that reproduces the finding
 * when replayed from its file, and that the correct model replays clean.
 * And the model never fails its own oracles: every finding of a campaign on
 * any mutant replays clean on the correct model.
 */
import { test, expect } from '@playwright/test';
import { MUTANTS } from '../harness/adapters/model/mutants.ts';
import { modelTarget } from '../harness/adapters/model/target.ts';
import { MUTANT_BUDGET, catchMutant, tracePath } from '../harness/campaign/catch.ts';
import { execute } from '../harness/run/execute.ts';
import { checkRun, violations } from '../harness/run/check.ts';
import { readTrace } from '../harness/trace/reader.ts';
import { showOp } from '../harness/ops/codec.ts';
import type { Finding } from '../harness/oracles/finding.ts';
import type { Op } from '../harness/ops/catalog.ts';
import { walkDevices, type Topology } from '../harness/topology/types.ts';

const MAX_OPS = 12;
/** Runs per mutant for the replay property: every finding of the whole budget is replayed. */
const REPLAY_RUNS = 400;

/** Replays a trace file on a model target (a mutant, or the correct model with none): its violations. */
async function replay(file: string, mutant?: string): Promise<Finding[]> {
  const t = await readTrace(file);
  return replayOn(t.header.topology, t.steps.map((s) => s.op), mutant);
}

async function replayOn(topology: Topology, ops: Op[], mutant?: string): Promise<Finding[]> {
  const target = modelTarget(mutant);
  const ex = await execute(target, topology, ops);
  return violations(checkRun(topology, target.capabilities.observes, ex.steps, ex.failure, ops));
}

for (const m of MUTANTS) {
  test(`${m.name} (${m.description}) is caught by ${m.caughtBy.join(' or ')}`, async () => {
    const c = await catchMutant(m, { dir: test.info().outputPath('campaign') });
    expect(c.finding, `not caught within ${MUTANT_BUDGET} sequences`).not.toBeNull();
    expect(c.result.summary.runs).toBeLessThanOrEqual(MUTANT_BUDGET);
    expect(c.result.stoppedBy?.finding.signature).toBe(c.finding!.signature);
    const trace = await readTrace(c.trace!);
    const text = trace.steps.map((s) => showOp(s.op)).join('\n');
    expect(trace.steps.length, `shrunk trace too long:\n${text}`).toBeLessThanOrEqual(MAX_OPS);
    expect(trace.header.target.mutant).toBe(m.name);
    // The trace file replays: on the mutant it shows the finding again; the correct model replays it clean.
    expect((await replay(c.trace!, m.name)).map((x) => x.signature)).toContain(c.finding!.signature);
    expect(await replay(c.trace!)).toEqual([]);
    // The topology was shrunk too: each device no operation names is one the finding needs (without its slot, it is gone).
    const topology = trace.header.topology;
    const namedIds = new Set(trace.steps.flatMap((s) => ('dev' in s.op ? [s.op.dev] : [])));
    // (Only slots on a root bus are cut here; below a bridge, the bridge's own slot decides.)
    for (const { root, dev, parent } of walkDevices(topology)) {
      if (namedIds.has(dev.id) || parent !== null || (dev.children ?? []).length > 0) continue;
      const devices = topology.roots[root].devices.filter((d) => d.slot !== dev.slot);
      const cut: Topology = { ...topology, roots: topology.roots.map((r, i) => (i === root ? { ...r, devices } : r)) };
      const again = await replayOn(cut, trace.steps.map((x) => x.op), m.name);
      expect(again.map((x) => x.signature), `${dev.id} could go`).not.toContain(c.finding!.signature);
    }
    test.info().annotations.push({ type: 'caught', description: `after ${c.finding!.run + 1} sequences, ${trace.steps.length} ops: ${c.finding!.message}` });
  });
}

test('the model never fails its own oracles: every finding of every mutant campaign replays clean on the correct model', async () => {
  test.setTimeout(20 * 60_000);
  let replayed = 0;
  for (const m of MUTANTS) {
    const dir = test.info().outputPath(`full-${m.name}`);
    const c = await catchMutant(m, { dir, runs: REPLAY_RUNS, full: true, seed: 1 });
    for (const f of c.result.findings) {
      const file = tracePath(dir, f);
      const clean = await replay(file);
      expect(clean, `${m.name}: ${f.signature} (${file}) fails on the correct model too`).toEqual([]);
      replayed++;
    }
  }
  // The campaigns found something to replay: a property over no findings would prove nothing.
  expect(replayed).toBeGreaterThanOrEqual(MUTANTS.length);
});
