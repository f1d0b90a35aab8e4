/** PCI Local Bus 3.0 §6.2.2 (Command) and §6.2.3 (Status), with INTx (§2.2.6). */
import { test, expect } from '@playwright/test';
import { Poke, ep, oneRoot } from '../helpers.ts';

const t = oneRoot([ep('a', 3)], { iommu: false });

test('writable command bits: IO, Memory, Bus Master, Parity, SERR, Interrupt Disable', () => {
  const p = new Poke(t);
  p.wr('00:03.0', 0x04, 0xffff, 2);
  expect(p.cfg('00:03.0', 0x04, 2)).toBe(0x0547);
});

test('Bus Master Enable gates DMA from the function (§6.2.2 bit 2)', () => {
  const p = new Poke(t);
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0x1000, len: 4 })).toEqual({ status: 'fault', reason: 'bus-master-disabled' });
  p.wr('00:03.0', 0x04, 0x4, 2);
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0x1000, len: 4 }).status).toBe('ok');
});

test('INTx: Interrupt Status follows the request; Interrupt Disable masks only the pin', () => {
  const p = new Poke(t);
  p.place('00:03.0', 0, 0xc0000000);
  const ring = p.mw(0xc0000004, 0);
  expect(ring.irqs).toEqual([{ space: 0, dev: 'a', kind: 'intx', pin: 0, level: 1 }]);
  expect(p.cfg('00:03.0', 0x06, 2) & 0x8).toBe(0x8);
  // Interrupt Disable drops the pin, keeps the status.
  expect(p.wr('00:03.0', 0x04, 0x407, 2).irqs).toEqual([{ space: 0, dev: 'a', kind: 'intx', pin: 0, level: 0 }]);
  expect(p.cfg('00:03.0', 0x06, 2) & 0x8).toBe(0x8);
  expect(p.wr('00:03.0', 0x04, 0x007, 2).irqs).toEqual([{ space: 0, dev: 'a', kind: 'intx', pin: 0, level: 1 }]);
  // Acknowledge at 0x08 withdraws the request.
  expect(p.mw(0xc0000008, 1).irqs).toEqual([{ space: 0, dev: 'a', kind: 'intx', pin: 0, level: 0 }]);
  expect(p.cfg('00:03.0', 0x06, 2) & 0x8).toBe(0);
});

test('the Interrupt Status bit is read-only to software', () => {
  const p = new Poke(t);
  p.wr('00:03.0', 0x06, 0x0008, 2);
  expect(p.cfg('00:03.0', 0x06, 2) & 0x8).toBe(0);
});
