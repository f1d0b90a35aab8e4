/**
 * A CPU-side view of interrupts (Observes.irqs as an IrqView): what such a
 * target can see of the model's interrupts, and the divergences it can
 * show. Traces are recorded on the model and projected as the view says.
 */
import { test, expect } from '@playwright/test';
import { IrqProjection } from '../../harness/oracles/irq-view.ts';
import { checkSteps } from '../../harness/oracles/checker.ts';
import { Model } from '../../harness/model/model.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import type { Irq, IrqView, Observation, Observes } from '../../harness/ops/observation.ts';
import { parseObserves } from '../../harness/ops/observation-codec.ts';
import type { Topology } from '../../harness/topology/types.ts';
import { JsonReader } from '../../harness/util/json-read.ts';
import { B, ep, root } from '../helpers.ts';

const W = 0x9fc00;
const VIEW: IrqView = { lines: true, messages: { base: W, size: 0x40, fill: 0xa5 } };
const t: Topology = { roots: [root([ep('a', 3, { caps: ['msi'] }), ep('b', 4)], { iommu: false, intxRouting: [{ slot: 3, lines: [16, 17, 18, 19] }, { slot: 4, lines: [17, 18, 19, 16] }] })] };
const msi = (dev: string, addr: number, data: number): Irq => ({ space: 0, dev, kind: 'msi', vector: 0, addr, data });

test('messages are seen as the dwords they change in the window: repeats and addresses outside are not, the last write to a dword wins', () => {
  const p = new IrqProjection(VIEW, t);
  expect(p.seen([msi('a', W + 4, 0x4021)])).toEqual([{ space: 0, kind: 'message', addr: W + 4, data: 0x4021 }]);
  expect(p.seen([msi('a', W + 4, 0x4021)])).toEqual([]); // the same data over the same data
  expect(p.seen([msi('a', 0xfee00000, 0x4021), msi('a', W + 0x40, 1), msi('a', W + 2, 1)])).toEqual([]); // outside, past the end, unaligned
  expect(p.seen([msi('a', W + 8, 1), msi('a', W + 8, 2)])).toEqual([{ space: 0, kind: 'message', addr: W + 8, data: 2 }]);
  expect(p.seen([msi('a', W, 0xa5a5a5a5)])).toEqual([]); // what the window is filled with
});

test('lines are seen, pins are not; a message from a function behind an IOMMU is not seen (the model does not translate messages)', () => {
  const p = new IrqProjection(VIEW, t);
  const pin: Irq = { space: 0, dev: 'a', kind: 'intx', pin: 0, level: 1 };
  const line: Irq = { space: 0, kind: 'line', line: 16, level: 1 };
  expect(p.seen([pin, line])).toEqual([line]);
  expect(new IrqProjection({ lines: false, messages: null }, t).seen([pin, line, msi('a', W, 1)])).toEqual([]);
  const behind: Topology = { roots: [{ ...t.roots[0], iommu: true, domains: 1 }] };
  expect(new IrqProjection(VIEW, behind).seen([msi('a', W, 1)])).toEqual([]);
});

function record(ops: Op[]): { op: Op; obs: Observation }[] {
  const m = new Model(t);
  return ops.map((op) => ({ op, obs: m.apply(op) }));
}
const cw = (bdf: string, reg: number, value: number, size = 4): Op => ({ op: 'cfg.write', root: 0, via: 'ecam', bdf: B(bdf), reg, size, value: BigInt(value) });
const OBS: Observes = { delivery: false, irqs: VIEW, aborts: false, faults: 'all' };

test('the divergence oracle compares what the view sees: a line raised elsewhere, or not at all, is one divergence named by its kind, not by the op', () => {
  const ops: Op[] = [cw('00:04.0', 0x10, 0xc0000000), cw('00:04.0', 0x04, 7, 2), { op: 'mmio.write', root: 0, addr: 0xc0000004, size: 4, value: 0n }];
  const steps = record(ops);
  // As the view sees it, the ring is just line 17 rising: the pin event is not there.
  steps[2].obs = { status: 'ok', irqs: [{ space: 0, kind: 'line', line: 17, level: 1 }] };
  expect(checkSteps(t, OBS, steps)).toEqual([]);
  steps[2].obs = { status: 'ok', irqs: [{ space: 0, kind: 'line', line: 22, level: 1 }] };
  const f = checkSteps(t, OBS, steps);
  expect(f.map((x) => x.signature)).toEqual(['divergence:irqs(lines)@r0']);
  expect(f[0].message).toContain('of whose interrupts the target can see [line 17↑@r0]');
  steps[2].obs = { status: 'ok' };
  expect(checkSteps(t, OBS, steps).map((x) => x.signature)).toEqual(['divergence:irqs(lines)@r0']);
});

test('an IrqView in a trace header is read back, and a misaligned window is refused with its path', () => {
  const r = new JsonReader((path) => `trace.jsonl:1: ${String(path)}`);
  expect(parseObserves(r, 'target.observes', JSON.parse(JSON.stringify(OBS)))).toEqual(OBS);
  const bad = { ...OBS, irqs: { lines: true, messages: { base: W + 2, size: 0x40, fill: 0xa5 } } };
  expect(() => parseObserves(r, 'target.observes', bad)).toThrow(/target\.observes\.irqs\.messages\.base.*dword-aligned/);
});
