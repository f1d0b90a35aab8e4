/**
 * Platform interrupt lines (intx-lines.ts): INTx pins are shared and
 * level-sensitive (PCI 3.0 §2.2.6), so a line is the wired-OR of the pins
 * the root's routing table (ACPI _PRT, Topology's intxRouting) sends to it.
 */
import { test, expect } from '@playwright/test';
import { Poke, ep, oneRoot } from '../helpers.ts';
import type { Irq } from '../../harness/ops/observation.ts';

// Slots 3 and 7 share line 40 on INTA; slot 4's INTA is line 41; slot 9 has no row.
const routing = [
  { slot: 3, lines: [40, 41, 42, 43] },
  { slot: 4, lines: [41, 42, 43, 40] },
  { slot: 7, lines: [40, 41, 42, 43] },
];
const t = oneRoot([ep('a', 3), ep('b', 7), ep('c', 4), ep('d', 9)], { iommu: false, intxRouting: routing });
const intx = (dev: string, level: 0 | 1): Irq => ({ space: 0, dev, kind: 'intx', pin: 0, level });
const line = (n: number, level: 0 | 1): Irq => ({ space: 0, kind: 'line', line: n, level });

function poked(): Poke {
  const p = new Poke(t);
  ['00:03.0', '00:07.0', '00:04.0', '00:09.0'].forEach((bdf, i) => p.place(bdf, 0, 0xc0000000 + i * 0x100000));
  return p;
}
const ring = (p: Poke, i: number) => p.mw(0xc0000004 + i * 0x100000, 0).irqs;
const ack = (p: Poke, i: number) => p.mw(0xc0000008 + i * 0x100000, 1).irqs;

test('a line rises with the first pin routed to it and falls with the last', () => {
  const p = poked();
  expect(ring(p, 0)).toEqual([intx('a', 1), line(40, 1)]);
  expect(ring(p, 1)).toEqual([intx('b', 1)]);
  expect(ring(p, 2)).toEqual([intx('c', 1), line(41, 1)]);
  expect(ack(p, 0)).toEqual([intx('a', 0)]);
  expect(ack(p, 1)).toEqual([intx('b', 0), line(40, 0)]);
  expect(ack(p, 2)).toEqual([intx('c', 0), line(41, 0)]);
});

test('a slot without a row in the routing table reaches no line; Interrupt Disable drops the pin and with it the line', () => {
  const p = poked();
  expect(ring(p, 3)).toEqual([intx('d', 1)]);
  ring(p, 0);
  expect(p.wr('00:03.0', 0x04, 0x406, 2).irqs).toEqual([intx('a', 0), line(40, 0)]);
});

test('a function unplugged with its pin asserted lets go of the line', () => {
  const p = poked();
  ring(p, 1);
  expect(p.apply({ op: 'dev.unplug', dev: 'b' }).irqs).toEqual([intx('b', 0), line(40, 0)]);
});

test('the level is derived from the pins: after a restore, the next change is reported against the restored state', () => {
  const p = poked();
  ring(p, 0);
  const s = p.m.snapshot();
  ack(p, 0);
  p.m.restore(s);
  expect(ring(p, 1)).toEqual([intx('b', 1)]); // line 40 is still held by a
  expect(ack(p, 0)).toEqual([intx('a', 0)]);
  expect(ack(p, 1)).toEqual([intx('b', 0), line(40, 0)]);
});
