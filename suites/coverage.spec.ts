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
import type { Op } from '../harness/ops/catalog.ts';
import type { Topology } from '../harness/topology/types.ts';
import { B, ep, root } from './helpers.ts';

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

test('isolation features count what an operation observed: the same place from two roots, a moved BAR at both places, a BAR and DMA after reset or unplug', async () => {
  const t: Topology = { roots: [root([ep('a', 3, { domain: 0 })], { iommu: true, domains: 1 }), root([ep('x', 3, { domain: 0 })], { iommu: true, domains: 1 })] };
  const features = async (ops: Op[]): Promise<Set<string>> => {
    const target = modelTarget();
    const ex = await execute(target, t, ops);
    const tracker = new CoverageTracker();
    checkRun(t, judgeOf(target), ex.steps, ex.failure, ops, tracker);
    return new Set([...tracker.features].filter((f) => /^(cross|moved|stale):/.test(f)));
  };
  const cw = (r: number, reg: number, value: number, size = 4): Op => ({ op: 'cfg.write', root: r, via: 'ecam', bdf: B('00:03.0'), reg, size, value: BigInt(value) });
  const mr = (r: number, addr: number): Op => ({ op: 'mmio.read', root: r, addr, size: 4 });
  // Placing and enabling a BAR is no isolation feature by itself: nothing looked.
  expect(await features([cw(0, 0x10, 0xc0000000), cw(0, 0x04, 0x7, 2)])).toEqual(new Set());
  // The same BDF and address from two roots.
  expect(await features([cw(0, 0x10, 0xc0000000), cw(1, 0x10, 0xc0000000), mr(0, 0xc0000000), mr(1, 0xc0000000)])).toEqual(new Set(['cross:cfg:same-bdf', 'cross:mmio:same-addr']));
  // A BAR moved, then read at its old place and at its new one.
  const moved = await features([cw(0, 0x10, 0xc0000000), cw(0, 0x04, 0x2, 2), cw(0, 0x10, 0xd0000000), mr(0, 0xc0000000), mr(0, 0xd0000000)]);
  expect(moved).toEqual(new Set(['moved:old-place', 'moved:new-place']));
  // A reset takes the BAR and the DMA mappings away; accesses after it are what a stale mapping would answer.
  const stale = await features([
    cw(0, 0x10, 0xc0000000),
    cw(0, 0x04, 0x6, 2),
    { op: 'dma.map', root: 0, domain: 0, iova: 0x1000, size: 0x1000, gpa: 0x2000, perm: 'rw' },
    { op: 'root.reset', root: 0 },
    mr(0, 0xc0000000),
    { op: 'dma.read', dev: 'a', iova: 0x1000, len: 4 },
  ]);
  expect(stale).toEqual(new Set(['stale:bar-after-reset', 'stale:dma-after-reset']));
  // So does an unplug: the device's BAR stops decoding where it last was.
  const unplugged = await features([
    cw(0, 0x10, 0xc0000000),
    cw(0, 0x04, 0x6, 2),
    { op: 'dma.map', root: 0, domain: 0, iova: 0x1000, size: 0x1000, gpa: 0x2000, perm: 'rw' },
    { op: 'dev.unplug', dev: 'a' },
    mr(0, 0xc0000000),
    { op: 'dma.read', dev: 'a', iova: 0x1000, len: 4 },
  ]);
  expect(unplugged).toEqual(new Set(['stale:bar-after-unplug', 'stale:dma-after-unplug']));
});

test('state features count once an operation observed them: a config read of the function, or an access it decoded (through the bridges above it)', async () => {
  const t: Topology = {
    roots: [root([{ id: 'br', kind: 'bridge', slot: 2, fn: 0, children: [ep('b', 0)] }, ep('a', 3)])],
  };
  const features = async (ops: Op[]): Promise<string[]> => {
    const target = modelTarget();
    const ex = await execute(target, t, ops);
    const tracker = new CoverageTracker();
    checkRun(t, judgeOf(target), ex.steps, ex.failure, ops, tracker);
    return [...tracker.features].filter((f) => /^(cmd|bar|window):/.test(f)).sort();
  };
  const cw = (bdf: string, reg: number, value: number, size = 4): Op => ({ op: 'cfg.write', root: 0, via: 'ecam', bdf: B(bdf), reg, size, value: BigInt(value) });
  const cr = (bdf: string, reg: number): Op => ({ op: 'cfg.read', root: 0, via: 'ecam', bdf: B(bdf), reg, size: 4 });
  const place = [cw('00:03.0', 0x10, 0xc0000000), cw('00:03.0', 0x04, 0x2, 2)];
  // Written, never looked at: nothing counts.
  expect(await features(place)).toEqual([]);
  // Read back: the command register and the BARs it enabled count (the 64-bit BAR decodes at 0, its reset value).
  expect(await features([...place, cr('00:03.0', 0x04)])).toEqual(['bar:mem32:low', 'bar:mem64:low', 'cmd:endpoint:010']);
  // An access the BAR decoded observes them too; one that nobody decoded does not.
  expect(await features([...place, { op: 'mmio.read', root: 0, addr: 0xc0000010, size: 4 }])).toEqual(['bar:mem32:low', 'bar:mem64:low', 'cmd:endpoint:010']);
  expect(await features([...place, { op: 'mmio.read', root: 0, addr: 0xe0000000, size: 4 }])).toEqual([]);
  // A bridge's window counts once an access went through it to the device below.
  const below = [
    cw('00:02.0', 0x18, 0x00010100), // primary 0, secondary 1, subordinate 1
    cw('00:02.0', 0x20, 0xc010c010), // memory window 0xc0100000..0xc01fffff
    cw('00:02.0', 0x04, 0x2, 2),
    cw('01:00.0', 0x10, 0xc0100000),
    cw('01:00.0', 0x04, 0x2, 2),
  ];
  expect(await features(below)).toEqual([]);
  const through = await features([...below, { op: 'mmio.read', root: 0, addr: 0xc0100000, size: 4 }]);
  expect(through).toEqual(expect.arrayContaining(['window:mem:open', 'cmd:bridge:010', 'cmd:endpoint:010', 'bar:mem32:below-bridge']));
});
