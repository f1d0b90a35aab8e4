/**
 * Feedback that steers: the schedule follows each origin's yield, and the
 * mutations reach what one generated fragment does not (more live
 * mappings at once than any fragment makes).
 */
import { test, expect } from '@playwright/test';
import { Schedule } from '../harness/campaign/schedule.ts';
import { Prng } from '../harness/campaign/prng.ts';
import { SeedPool } from '../harness/campaign/seeds.ts';
import { mutate } from '../harness/campaign/mutate.ts';
import { constraintsFor } from '../generators/constraints.ts';
import { modelTarget } from '../harness/adapters/model/target.ts';
import { Model } from '../harness/model/model.ts';
import type { Op } from '../harness/ops/catalog.ts';
import type { Topology } from '../harness/topology/types.ts';
import { ep, root } from './helpers.ts';

test('the schedule mutates as much as mutations yield: its share follows new features per op, within its floor', () => {
  const s = new Schedule();
  expect(s.mutateShare).toBeCloseTo(0.5, 5);
  // Fresh sequences stop finding anything, mutations keep finding: the share moves to mutations, never to all of them.
  for (let i = 0; i < 400; i++) {
    s.record('fresh', 0, 40);
    s.record('mutated', i % 4 === 0 ? 1 : 0, 40);
  }
  expect(s.mutateShare).toBeGreaterThan(0.85);
  expect(s.mutateShare).toBeLessThanOrEqual(0.9);
  // And back, once fresh sequences find more than mutations.
  for (let i = 0; i < 1000; i++) {
    s.record('fresh', 1, 40);
    s.record('mutated', 0, 40);
  }
  expect(s.mutateShare).toBeCloseTo(0.1, 5);
  // With no seed to mutate, every run is fresh.
  const rng = new Prng(7);
  const fresh = new Schedule();
  for (let i = 0; i < 50; i++) expect(fresh.choose(rng, 0)).toBe('fresh');
  // The choices follow from the PRNG and the recorded yields alone.
  const picks = (seed: number): string[] => {
    const r = new Prng(seed);
    const x = new Schedule();
    return Array.from({ length: 100 }, (_, i) => {
      const o = x.choose(r, 3);
      x.record(o, i % 7 === 0 && o === 'mutated' ? 2 : 0, 30);
      return o;
    });
  };
  expect(picks(3)).toEqual(picks(3));
  expect(new Set(picks(3))).toEqual(new Set(['fresh', 'mutated']));
});

test('mutations repeat a slice at moved places: from one mapping, five and more live at once', () => {
  const t: Topology = { roots: [root([ep('a', 3, { domain: 0 })], { iommu: true, domains: 1 })] };
  const c = constraintsFor(modelTarget());
  const seed = { topology: t, ops: [{ op: 'dma.map', root: 0, domain: 0, iova: 0x10000, size: 0x1000, gpa: 0x2000, perm: 'rw' }] as Op[], gain: 1, picks: 0 };
  let most = 0;
  for (let s = 1; s <= 300 && most < 5; s++) {
    const ops = mutate(seed, new SeedPool(), c, new Prng(s));
    const m = new Model(t);
    for (const op of ops) m.apply(op);
    most = Math.max(most, m.liveMappings);
  }
  expect(most).toBeGreaterThanOrEqual(5);
});

test("QEMU's event lines name target features: a config register per dword and device model, a BAR mapped, a guest error by its words", async () => {
  const { qemuEventFeatures } = await import('../harness/coverage/target-features.ts');
  expect(
    qemuEventFeatures([
      'pci_cfg_write edu 00:03.0 @0x6 <- 0xffff',
      'pci_cfg_read pcie-root-port 00:02.0 @0x10 -> 0x0',
      'pci_update_mappings_add edu 00:03.0 0,0xc0000000+0x100000',
      'pci_update_mappings_del pci-testdev 01:00.0 1,0xc000+0x100',
      'edu: DMA range 0x40000-0x41000 out of bounds (0x40000-0x40fff)!',
      '(12 earlier events left out)',
    ]),
  ).toEqual([
    'target:pci_cfg_write:edu:0x4',
    'target:pci_cfg_read:pcie-root-port:0x10',
    'target:pci_update_mappings_add:edu:bar0',
    'target:pci_update_mappings_del:pci-testdev:bar1',
    'target:log:edu: DMA range #-#',
  ]);
});
