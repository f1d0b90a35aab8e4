/** QEMU's pci-testdev (hw/misc/pci-testdev.c) as QEMU 7.2 implements it. */
import { test, expect } from '@playwright/test';
import { Poke, oneRoot } from '../helpers.ts';

const t = oneRoot([{ id: 'td', kind: 'pci-testdev', slot: 5, fn: 0 }]);
const MEM = 0xfeb00000;
const IO = 0xc000;

function up(p: Poke): void {
  p.wr('00:05.0', 0x10, MEM);
  p.wr('00:05.0', 0x14, IO);
  p.wr('00:05.0', 0x04, 0x3, 2);
}

const name = (p: Poke, base: number, io = false): string => {
  let s = '';
  for (let i = 16; ; i++) {
    const c = Number(io ? p.ior(base + i, 1).value : p.mr(base + i, 1).value);
    if (c === 0) return s;
    s += String.fromCharCode(c);
  }
};

test('identity: 1b36:0005, class 00ff00, no interrupt pin; BAR0 4 KiB memory, BAR1 256 bytes IO', () => {
  const p = new Poke(t);
  expect(p.cfg('00:05.0', 0)).toBe(0x00051b36);
  expect(p.cfg('00:05.0', 0x08)).toBe(0x00ff0000);
  expect(p.cfg('00:05.0', 0x3d, 1)).toBe(0);
  p.wr('00:05.0', 0x10, 0xffffffff);
  p.wr('00:05.0', 0x14, 0xffffffff);
  expect(p.cfg('00:05.0', 0x10)).toBe(0xfffff000);
  expect(p.cfg('00:05.0', 0x14)).toBe(0xffffff01);
});

test('no test selected: everything reads zero', () => {
  const p = new Poke(t);
  up(p);
  expect(p.mr(MEM, 4).value).toBe(0n);
  expect(p.ior(IO + 0x10, 4).value).toBe(0n);
});

test.describe('selecting a test shows its header through both BARs', () => {
  for (const [via, v, index, title, offset] of [
    ['mem', 0, 0, 'mmio-no-eventfd', 0x800],
    ['mem', 2, 2, 'mmio-datamatch-eventfd', 0x802],
    ['io', 1, 4, 'portio-wildcard-eventfd', 0x84],
  ] as const) {
    test(`${title}`, () => {
      const p = new Poke(t);
      up(p);
      if (via === 'mem') p.mw(MEM, v, 1);
      else p.iow(IO, v, 1);
      for (const [base, io] of [[MEM, false], [IO, true]] as const) {
        const rd = (o: number, s: number): bigint => (io ? p.ior(base + o, s).value! : p.mr(base + o, s).value!);
        expect(rd(0, 1)).toBe(BigInt(index));
        expect(rd(1, 1)).toBe(1n);
        expect(rd(4, 4)).toBe(BigInt(offset));
        expect(name(p, base, io)).toBe(title);
      }
    });
  }
});

test('counting: a byte on the offset counts; data-match tests count only 0xFA', () => {
  const p = new Poke(t);
  up(p);
  p.mw(MEM, 0, 1); // mmio-no-eventfd, offset 0x800, data 0xFA
  p.mw(MEM + 0x800, 0xfa, 1);
  p.mw(MEM + 0x800, 0x11, 1);
  p.mw(MEM + 0x800, 0x00fa, 2);
  expect(p.mr(MEM + 12, 4).value).toBe(2n);
});

test('a 1-byte write exactly at an eventfd test offset is swallowed; wider writes count', () => {
  const p = new Poke(t);
  up(p);
  p.mw(MEM, 1, 1); // mmio-wildcard-eventfd at 0x801
  p.mw(MEM + 0x801, 0x33, 1);
  expect(p.mr(MEM + 12, 4).value).toBe(0n);
  p.mw(MEM + 0x800, 0x12345678, 4);
  expect(p.mr(MEM + 12, 4).value).toBe(1n);
});

test('selecting a value of 3 or more deselects; reset deselects', () => {
  const p = new Poke(t);
  up(p);
  p.mw(MEM, 0, 1);
  p.mw(MEM, 7, 1);
  expect(p.mr(MEM + 4, 4).value).toBe(0n);
  p.mw(MEM, 0, 1);
  p.apply({ op: 'dev.reset', dev: 'td' });
  up(p);
  expect(p.mr(MEM + 4, 4).value).toBe(0n);
});
