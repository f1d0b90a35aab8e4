/**
 * PCI Local Bus 3.0 §6.1–§6.2: the configuration header, per-bit access
 * (read-only, read-write, write-1-to-clear), absent functions, access widths.
 */
import { test, expect } from '@playwright/test';
import { Poke, ep, oneRoot } from '../helpers.ts';

const t = oneRoot([ep('a', 3, { caps: ['pcie'] }), ep('legacy', 4, { bars: [{ kind: 'mem32', size: 0x1000 }] }), ep('f0', 5), ep('f1', 5, { fn: 1 })]);

test.describe('PCI 3.0 §6.2.1 identification registers are read-only', () => {
  for (const [reg, size, expected, name] of [
    [0x00, 2, 0x1b36, 'Vendor ID'],
    [0x02, 2, 0x1100, 'Device ID'],
    [0x08, 1, 0x01, 'Revision ID'],
    [0x09, 1, 0x00, 'Programming interface'],
    [0x0a, 1, 0x00, 'Sub-class'],
    [0x0b, 1, 0xff, 'Base class'],
    [0x0e, 1, 0x00, 'Header type (single-function type 0)'],
  ] as const) {
    test(`${name} at ${reg.toString(16)} reads ${expected.toString(16)} and ignores writes`, () => {
      const p = new Poke(t);
      expect(p.cfg('00:03.0', reg, size)).toBe(expected);
      p.wr('00:03.0', reg, size === 1 ? 0x5a : 0x5a5a, size);
      expect(p.cfg('00:03.0', reg, size)).toBe(expected);
    });
  }
});

test('§6.2.1: multi-function bit in the header type of every function of a multi-function device', () => {
  const p = new Poke(t);
  expect(p.cfg('00:05.0', 0x0e, 1)).toBe(0x80);
  expect(p.cfg('00:05.1', 0x0e, 1)).toBe(0x80);
  expect(p.cfg('00:04.0', 0x0e, 1)).toBe(0x00);
});

test('§6.2.4: cache line size and interrupt line are read-write; interrupt pin is read-only', () => {
  const p = new Poke(t);
  p.wr('00:03.0', 0x0c, 0x10, 1);
  p.wr('00:03.0', 0x3c, 0x0b, 1);
  p.wr('00:03.0', 0x3d, 0x04, 1);
  expect(p.cfg('00:03.0', 0x0c, 1)).toBe(0x10);
  expect(p.cfg('00:03.0', 0x3c, 1)).toBe(0x0b);
  expect(p.cfg('00:03.0', 0x3d, 1)).toBe(0x01);
});

test('§6.2.3: status error bits are write-1-to-clear, the capability bit read-only', () => {
  const p = new Poke(t);
  // Set the error bits directly (device side), then clear some by writing ones.
  const fn = p.m.fnOf('a')!;
  fn.cfg.set(0x06, 2, 0xf910);
  p.wr('00:03.0', 0x06, 0x8100, 2);
  expect(p.cfg('00:03.0', 0x06, 2)).toBe(0x7810);
  p.wr('00:03.0', 0x06, 0x0010, 2);
  expect(p.cfg('00:03.0', 0x06, 2)).toBe(0x7810);
});

test('an absent function reads all-ones and swallows writes (PCI 3.0 §3.2.2.3.4)', () => {
  const p = new Poke(t);
  for (const size of [1, 2, 4]) expect(p.rd('00:1f.0', 0, size).value).toBe((1n << BigInt(8 * size)) - 1n);
  expect(p.rd('00:1f.0', 0).status).toBe('ur');
  expect(p.wr('00:1f.0', 0x04, 0x7, 2).status).toBe('ur');
});

test('1-, 2- and 4-byte accesses at aligned offsets see the same little-endian bytes', () => {
  const p = new Poke(t);
  const dword = p.cfg('00:03.0', 0x00, 4);
  expect(p.cfg('00:03.0', 0x00, 2)).toBe(dword & 0xffff);
  expect(p.cfg('00:03.0', 0x02, 2)).toBe(dword >>> 16);
  for (let i = 0; i < 4; i++) expect(p.cfg('00:03.0', i, 1)).toBe((dword >>> (8 * i)) & 0xff);
});

test('PCIe Base §7.2: an express function has 4 KiB; a conventional one reads all-ones above 0xff', () => {
  const p = new Poke(t);
  expect(p.cfg('00:03.0', 0x100, 4)).toBe(0); // no extended capability: header of zeros
  expect(p.cfg('00:04.0', 0x100, 4)).toBe(0xffffffff);
  p.wr('00:04.0', 0x100, 0x1234);
  expect(p.cfg('00:04.0', 0x100, 4)).toBe(0xffffffff);
});

test('config writes are delivered to the function, with region and offset', () => {
  const p = new Poke(t);
  expect(p.wr('00:03.0', 0x3c, 1, 1).to).toEqual({ root: 0, dev: 'a', region: 'cfg', offset: 0x3c });
});
