/** PCI Local Bus 3.0 §6.2.5: BARs, the sizing protocol, decode, the expansion ROM. */
import { test, expect } from '@playwright/test';
import { Poke, ep, oneRoot } from '../helpers.ts';

// a: BAR0 mem32 16 KiB, BAR1 IO 32 B, BAR2/3 mem64 1 MiB prefetchable, ROM 2 KiB. uid 1.
const t = oneRoot([ep('a', 3, { rom: 0x800 })]);
const ID = (region: number): bigint => BigInt(0x15000000 | (1 << 8) | region);

test.describe('§6.2.5.1 sizing: write all-ones, read back the size mask with the type bits', () => {
  for (const [reg, before, after, what] of [
    [0x10, 0x00000000, 0xffffc000, '32-bit memory, 16 KiB'],
    [0x14, 0x00000001, 0xffffffe1, 'IO, 32 bytes (bit 0 set)'],
    [0x18, 0x0000000c, 0xfff0000c, '64-bit prefetchable memory, low dword'],
    [0x1c, 0x00000000, 0xffffffff, '64-bit memory, high dword'],
    [0x30, 0x00000000, 0xfffff801, 'expansion ROM, 2 KiB, with its enable bit (§6.2.5.2)'],
    [0x20, 0x00000000, 0x00000000, 'an unimplemented BAR'],
  ] as const) {
    test(what, () => {
      const p = new Poke(t);
      expect(p.cfg('00:03.0', reg)).toBe(before);
      p.wr('00:03.0', reg, 0xffffffff);
      expect(p.cfg('00:03.0', reg)).toBe(after);
    });
  }
});

test('a memory BAR decodes only while Memory Space is enabled (§6.2.2)', () => {
  const p = new Poke(t);
  p.wr('00:03.0', 0x10, 0xc0000000);
  expect(p.mr(0xc0000000)).toEqual({ status: 'ma', value: 0xffffffffn, to: { root: 0 } });
  p.wr('00:03.0', 0x04, 0x2, 2);
  expect(p.mr(0xc0000000)).toEqual({ status: 'ok', value: ID(0), to: { root: 0, dev: 'a', region: 'bar0', offset: 0 } });
  p.wr('00:03.0', 0x04, 0x0, 2);
  expect(p.mr(0xc0000000).status).toBe('ma');
});

test('an IO BAR decodes only while IO Space is enabled', () => {
  const p = new Poke(t);
  p.wr('00:03.0', 0x14, 0x1000);
  p.wr('00:03.0', 0x04, 0x2, 2);
  expect(p.ior(0x1000).status).toBe('ma');
  p.wr('00:03.0', 0x04, 0x1, 2);
  expect(p.ior(0x1000)).toEqual({ status: 'ok', value: ID(1), to: { root: 0, dev: 'a', region: 'bar1', offset: 0 } });
});

test('the address bits below the size are read-only zero: a BAR is size-aligned', () => {
  const p = new Poke(t);
  p.wr('00:03.0', 0x10, 0xc0001234);
  expect(p.cfg('00:03.0', 0x10)).toBe(0xc0000000);
});

test('a 64-bit BAR decodes at the address made of both dwords', () => {
  const p = new Poke(t);
  p.place('00:03.0', 2, 0x8_0010_0000, 0, true);
  expect(p.mr(0x8_0010_0000).to).toEqual({ root: 0, dev: 'a', region: 'bar2', offset: 0 });
  expect(p.mr(0x0010_0000).status).toBe('ok'); // that is RAM, not the BAR
  expect(p.mr(0x0010_0000).to?.region).toBe('ram');
  expect(p.mr(0xf_ffff_0000_0000 - 0x100000).status).toBe('ma');
});

test('§6.2.5.2: the ROM decodes only with Memory Space and its enable bit, and reads 55 AA', () => {
  const p = new Poke(t);
  p.wr('00:03.0', 0x30, 0xc8000000);
  p.wr('00:03.0', 0x04, 0x2, 2);
  expect(p.mr(0xc8000000, 2).status).toBe('ma');
  p.wr('00:03.0', 0x30, 0xc8000001);
  expect(p.mr(0xc8000000, 2)).toEqual({ status: 'ok', value: 0xaa55n, to: { root: 0, dev: 'a', region: 'rom', offset: 0 } });
  p.mw(0xc8000000, 0, 2);
  expect(p.mr(0xc8000000, 2).value).toBe(0xaa55n);
});

test('moving a BAR stops decode at the old address and starts it at the new one', () => {
  const p = new Poke(t);
  p.place('00:03.0', 0, 0xc0000000);
  p.mw(0xc0000010, 0x1234);
  p.wr('00:03.0', 0x10, 0xc0010000);
  expect(p.mr(0xc0000010).status).toBe('ma');
  expect(p.mr(0xc0010010)).toEqual({ status: 'ok', value: 0x1234n, to: { root: 0, dev: 'a', region: 'bar0', offset: 0x10 } });
});

test('the generic endpoint register file: identity, scratch, widths', () => {
  const p = new Poke(t);
  p.place('00:03.0', 0, 0xc0000000);
  p.mw(0xc0000000, 0xffffffff); // read-only identity
  expect(p.mr(0xc0000000).value).toBe(ID(0));
  p.mw(0xc0000010, 0x1122334455667788n, 8);
  expect(p.mr(0xc0000010, 8).value).toBe(0x1122334455667788n);
  expect(p.mr(0xc0000014, 4).value).toBe(0x11223344n);
  expect(p.mr(0xc0000011, 1).value).toBe(0x77n);
  expect(p.mr(0xc0003000, 4).value).toBe(0n); // past the 4 KiB register file
});
