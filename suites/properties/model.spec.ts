/** Properties of the model over generated topologies and sequences. */
import { test, expect } from '@playwright/test';
import fc from 'fast-check';
import { Model } from '../../harness/model/model.ts';
import { snapshotFromJson, snapshotToJson } from '../../harness/model/snapshot-codec.ts';
import { obsToJson } from '../../harness/ops/observation-codec.ts';
import { scenarioArb } from '../../generators/sequence.ts';
import { topologyArb } from '../../generators/topology.ts';
import { topologyProblem } from '../../harness/topology/validate.ts';
import { checkRun, violations } from '../../harness/run/check.ts';
import { OBSERVES_ALL } from '../../harness/ops/observation.ts';
import { FlatView, type Decoder } from '../../harness/model/flat-view.ts';

const scenarios = scenarioArb(topologyArb());
const run = (m: Model, ops: Parameters<Model['apply']>[0][]): string[] => ops.map((o) => JSON.stringify(obsToJson(m.apply(o))));

test('every generated topology satisfies the topology rules', () => {
  fc.assert(fc.property(topologyArb(), (t) => topologyProblem(t) === null), { numRuns: 500, seed: 11 });
});

test('the model is deterministic: the same operations give the same observations', () => {
  fc.assert(fc.property(scenarios, (sc) => expect(run(new Model(sc.topology), sc.ops)).toEqual(run(new Model(sc.topology), sc.ops))), { numRuns: 300, seed: 12 });
});

test('the reference model checked against itself yields no violation', () => {
  fc.assert(
    fc.property(scenarios, (sc) => {
      const m = new Model(sc.topology);
      const steps = sc.ops.map((op) => ({ op, obs: m.apply(op) }));
      expect(violations(checkRun(sc.topology, OBSERVES_ALL, steps))).toEqual([]);
    }),
    { numRuns: 500, seed: 13 },
  );
});

test('snapshot and restore, through JSON, resume exactly where the model was', () => {
  fc.assert(
    fc.property(scenarios, fc.nat(), (sc, cut) => {
      const k = sc.ops.length === 0 ? 0 : cut % sc.ops.length;
      // Device timers are not part of a snapshot: keep edu's DMA engine out of it.
      const ops = sc.ops.filter((o) => o.op !== 'clock.step' && !(o.op === 'mmio.write' && o.size === 8));
      const a = new Model(sc.topology);
      run(a, ops.slice(0, k));
      const snap = snapshotToJson(a.snapshot());
      const rest = run(a, ops.slice(k));
      const b = new Model(sc.topology);
      b.restore(snapshotFromJson(snap));
      expect(run(b, ops.slice(k))).toEqual(rest);
    }),
    { numRuns: 300, seed: 14 },
  );
});

test('the flat view answers like a brute-force search: the latest mapping that covers the address', () => {
  const dec = fc.record({ base: fc.nat(64).map((x) => x * 16), size: fc.constantFrom(16, 32, 64, 256), seq: fc.nat(1000) });
  fc.assert(
    fc.property(fc.uniqueArray(dec, { selector: (d) => d.seq, maxLength: 20 }), fc.nat(1100), (ds, addr) => {
      const decs: Decoder[] = ds.map((d) => ({ kind: 'bar', root: 0, fn: null, region: 0, ...d }));
      const v = FlatView.render(decs.map((leaf) => ({ leaf })));
      const want = decs.filter((d) => addr >= d.base && addr < d.base + d.size).sort((x, y) => y.seq - x.seq)[0] ?? null;
      expect(v.lookup(addr)).toBe(want);
    }),
    { numRuns: 2000, seed: 15 },
  );
});
