/**
 * Learned functions: what isoroot learns of a function it does not know
 * (harness/adapters/learn.ts) and what the model then predicts for it
 * (learned-layout.ts, personalities/learned.ts). Learned from a function
 * the model does know, the learned one must be predicted alike wherever
 * the specifications define the registers; device-specific ones are not
 * predicted at all.
 */
import { test, expect } from '@playwright/test';
import fc from 'fast-check';
import { learnFunction, type ConfigIo } from '../../harness/adapters/learn.ts';
import { learnedLayout } from '../../harness/model/learned-layout.ts';
import { Model } from '../../harness/model/model.ts';
import { checkSteps } from '../../harness/oracles/checker.ts';
import { violations } from '../../harness/run/check.ts';
import { OBSERVES_ALL, type Observation } from '../../harness/ops/observation.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import type { DeviceSpec, LearnedFunction, Topology } from '../../harness/topology/types.ts';
import { B, ep, oneRoot, outcome } from '../helpers.ts';

const known: DeviceSpec = ep('ep', 3, { caps: ['pm', 'msi', 'msix'], msiVectors: 4, msixVectors: 4, bars: [{ kind: 'mem32', size: 0x4000 }, { kind: 'io', size: 0x20 }, { kind: 'mem64', size: 0x100000, prefetch: true }] });
const knownTopology = oneRoot([known]);

/** Config accesses to the endpoint, through a model of it, as a target would answer them. */
function modelIo(m: Model): ConfigIo {
  return async (acc) =>
    acc.map((a) => {
      const op: Op = a.value === undefined ? { op: 'cfg.read', root: 0, via: 'ecam', bdf: B('00:03.0'), reg: a.off, size: a.size } : { op: 'cfg.write', root: 0, via: 'ecam', bdf: B('00:03.0'), reg: a.off, size: a.size, value: BigInt(a.value) };
      const o = m.apply(op);
      return a.value === undefined ? Number(o.value) : o.status === 'ok';
    });
}

async function learned(): Promise<LearnedFunction> {
  const m = new Model(knownTopology);
  const l = await learnFunction(modelIo(m));
  // Learning restores what it probed: the function is as it was.
  expect(m.fnOf('ep')!.cfg.snapshot()).toEqual(new Model(knownTopology).fnOf('ep')!.cfg.snapshot());
  return l;
}

test('learning sizes BARs, finds the capabilities and the writable bits, and restores every register', async () => {
  const l = await learned();
  const lay = learnedLayout(l);
  expect(lay.size).toBe(0x100);
  expect(lay.bars.filter((b) => b !== undefined).map((b) => [b.region, b.kind, b.size, b.prefetch])).toEqual([
    [0, 'mem32', 0x4000, false],
    [1, 'io', 0x20, false],
    [2, 'mem64', 0x100000, true],
  ]);
  expect(lay.caps.pm?.off).toBe(0x40);
  expect(lay.caps.msi).toMatchObject({ mmc: 2, is64: true, pvm: true });
  expect(lay.caps.msix).toMatchObject({ vectors: 4, bar: 0, table: 0x1000, pba: 0x1800 });
  expect(lay.zeroed).toEqual([]);
  // The Command register's writable bits, as the endpoint has them (PCI 3.0 §6.2.2).
  expect(lay.wmask[4] | (lay.wmask[5] << 8)).toBe(new Model(knownTopology).fnOf('ep')!.cfg.wmask[4] | (new Model(knownTopology).fnOf('ep')!.cfg.wmask[5] << 8));
});

test('a BAR that reads non-zero without a writable address bit is hardwired to zero in the model (PCI 3.0 §6.2.5.1)', () => {
  const cfg = new Uint8Array(256);
  cfg.set([0x34, 0x12, 0x78, 0x56], 0);
  cfg[0x14] = 1; // an "IO BAR" that takes no address: what libvfio-user shows for its unused BARs
  const l: LearnedFunction = { config: Buffer.from(cfg).toString('hex'), wmask: '00'.repeat(256) };
  const lay = learnedLayout(l);
  expect(lay.zeroed).toEqual([0x14]);
  expect(lay.bars.filter((b) => b !== undefined)).toEqual([]);
  const t = oneRoot([{ id: 'x', kind: 'opaque', slot: 0, fn: 0, learned: l }]);
  const o = outcome(new Model(t).apply({ op: 'cfg.read', root: 0, via: 'ecam', bdf: B('00:00.0'), reg: 0x14, size: 4 }));
  expect(o.value).toBe(0n);
});

test("a learned function's device-specific registers and BAR contents are not predicted, its header is", async () => {
  const l = await learned();
  const t: Topology = oneRoot([{ id: 'ep', kind: 'opaque', slot: 3, fn: 0, learned: l }]);
  const m = new Model(t);
  const rd = (reg: number): Observation => m.apply({ op: 'cfg.read', root: 0, via: 'ecam', bdf: B('00:03.0'), reg, size: 4 });
  expect(rd(0x00)).toMatchObject({ value: 0x11001b36n, rule: 'header.identity' });
  expect(rd(0x00).unknown).toBeUndefined();
  // Status: the device's own bits (Interrupt Status, errors) are not predicted.
  expect(rd(0x04).known).toBe(0xfff7ffffn & ~(0xf900n << 16n));
  expect(rd(0xc0).unknown).toBe(true);
  m.apply({ op: 'cfg.write', root: 0, via: 'ecam', bdf: B('00:03.0'), reg: 0x10, size: 4, value: 0xc0000000n });
  m.apply({ op: 'cfg.write', root: 0, via: 'ecam', bdf: B('00:03.0'), reg: 0x04, size: 2, value: 0x2n });
  const bar = m.apply({ op: 'mmio.read', root: 0, addr: 0xc0000000, size: 4 });
  expect(bar).toMatchObject({ status: 'ok', to: { root: 0, dev: 'ep', region: 'bar0', offset: 0 }, unknown: true });
  // The MSI-X table is the specification's: the model keeps it (PCI 3.0 §6.8.2).
  expect(m.apply({ op: 'mmio.read', root: 0, addr: 0xc000100c, size: 4 })).toMatchObject({ value: 1n });
  expect(m.apply({ op: 'mmio.read', root: 0, addr: 0xc000100c, size: 4 }).unknown).toBeUndefined();
});

/** Writes and reads of the registers the specifications define, and accesses where the BARs may be. */
const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    fc.record({ reg: fc.constantFrom(0x04, 0x0c, 0x3c, 0x10, 0x14, 0x18, 0x1c, 0x44, 0x4a, 0x4c, 0x50, 0x54, 0x58, 0x62), size: fc.constantFrom(1, 2, 4), value: fc.constantFrom(0n, 0xffffffffn, 0xc0000000n, 0x7n, 0x6n, 0x1000n, 0xfee00000n, 0x3n) }).map(
      (x): Op => ({ op: 'cfg.write', root: 0, via: 'ecam', bdf: B('00:03.0'), reg: x.reg - (x.reg % x.size), size: x.size, value: x.value & ((1n << BigInt(8 * x.size)) - 1n) }),
    ),
    fc.record({ reg: fc.integer({ min: 0, max: 0x3f }), size: fc.constantFrom(1, 2, 4) }).map((x): Op => ({ op: 'cfg.read', root: 0, via: 'ecam', bdf: B('00:03.0'), reg: x.reg - (x.reg % x.size), size: x.size })),
    fc.constantFrom(0x44, 0x48, 0x4c, 0x50, 0x54, 0x58, 0x60, 0x64).map((reg): Op => ({ op: 'cfg.read', root: 0, via: 'ecam', bdf: B('00:03.0'), reg, size: 4 })),
    fc.constantFrom(0xc0000000, 0xc0001000, 0xc000100c, 0x1000, 0x3000, 0xc0000010).map((addr): Op => ({ op: 'mmio.read', root: 0, addr, size: 4 })),
    fc.constantFrom(0x1000, 0x3000, 0xc0001000).map((port): Op => ({ op: 'pio.read', root: 0, port: port & 0xffff, size: 4 })),
    fc.constant<Op>({ op: 'dev.reset', dev: 'ep' }),
  ),
  { maxLength: 40 },
);

test('learned from the generic endpoint, the function is judged as the endpoint is: the endpoint itself passes every check', async () => {
  const l = await learned();
  const learnedTopology: Topology = oneRoot([{ id: 'ep', kind: 'opaque', slot: 3, fn: 0, learned: l }]);
  fc.assert(
    fc.property(ops, (seq) => {
      const target = new Model(knownTopology);
      const steps = seq.map((op) => ({ op, obs: outcome(target.apply(op)) }));
      expect(violations(checkSteps(learnedTopology, OBSERVES_ALL, steps))).toEqual([]);
    }),
    { numRuns: 400, seed: 7 },
  );
});
