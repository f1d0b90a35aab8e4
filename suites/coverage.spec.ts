/**
 * The coverage tracker is held to the universe: every feature it can name
 * is one the universe lists, or the campaign would count it nowhere (the
 * coordinator counts only listed features). Generated topologies and
 * sequences of both generators run through the model, as campaigns run them.
 */
import { test, expect } from '@playwright/test';
import fc from 'fast-check';
import { CoverageTracker } from '../harness/coverage/tracker.ts';
import { UNIVERSE_SET } from '../harness/coverage/universe.ts';
import { modelTarget } from '../harness/adapters/model/target.ts';
import { constraintsFor } from '../generators/constraints.ts';
import { topologyArb } from '../generators/topology.ts';
import { rawSequenceArb, sequenceArb } from '../generators/sequence.ts';
import { execute } from '../harness/run/execute.ts';
import { checkRun, judgeOf } from '../harness/run/check.ts';

for (const generator of ['fragments', 'raw'] as const) {
  test(`every feature the tracker names is in the universe (${generator} generator, generated topologies)`, async () => {
    const target = modelTarget();
    const c = constraintsFor(target);
    const stray = new Map<string, string>();
    const seen = new Set<string>();
    const topologies = fc.sample(topologyArb(c), { seed: 11, numRuns: 40 });
    for (const [i, topology] of topologies.entries()) {
      const arb = generator === 'raw' ? rawSequenceArb(topology, c) : sequenceArb(topology, c);
      for (const ops of fc.sample(arb, { seed: 100 + i, numRuns: 25 })) {
        const ex = await execute(target, topology, ops);
        const tracker = new CoverageTracker();
        checkRun(topology, judgeOf(target), ex.steps, ex.failure, ops, tracker);
        for (const f of tracker.features) {
          seen.add(f);
          if (!UNIVERSE_SET.has(f) && !stray.has(f)) stray.set(f, `topology ${i}`);
        }
      }
    }
    expect([...stray].map(([f, where]) => `${f} (${where})`)).toEqual([]);
    // The runs reached every family of features: a tracker that named nothing would pass the check above.
    // (Random operations seldom hit a device's command register; the purposeful fragments place and enable BARs.)
    const families = ['route:cfg:', 'route:mmio:', 'route:pio:', 'cfgvia:', 'pair:cfg:', ...(generator === 'fragments' ? ['cmd:', 'bar:', 'window:'] : [])];
    for (const family of families) expect([...seen].some((f) => f.startsWith(family)), family).toBe(true);
  });
}
