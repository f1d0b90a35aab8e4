/**
 * Emulator routing (seeds/002, Xen's ioreq servers): BDFs and ranges
 * delegated to named emulators; every access goes to exactly one handler.
 */
import { test, expect } from '@playwright/test';
import { Poke, ep, oneRoot, outcome } from '../helpers.ts';
import { Model } from '../../harness/model/model.ts';
import { REFERENCE_RULES } from '../../harness/model/rules.ts';
import type { Chooser } from '../../harness/model/choose.ts';
import type { Op } from '../../harness/ops/catalog.ts';

const t = { ...oneRoot([ep('own', 3), ep('q', 4, { emulator: 'qemu' }), ep('q1', 4, { fn: 1, emulator: 'qemu' })]), emulators: ['qemu', 'ioreq1'] };
const emu = (p: Poke, bdf: number, unmap = false, emulator = 'qemu') => p.apply({ op: unmap ? 'emu.unmap-bdf' : 'emu.map-bdf', root: 0, emulator, bdf });

test('a device hosted by an emulator answers config only once its BDF is forwarded there', () => {
  const p = new Poke(t);
  expect(p.rd('00:04.0', 0)).toEqual({ status: 'ur', value: 0xffffffffn, to: { root: 0 } });
  expect(emu(p, (4 << 3) | 0).status).toBe('ok');
  expect(p.rd('00:04.0', 0).to).toEqual({ root: 0, via: 'qemu', dev: 'q', region: 'cfg', offset: 0 });
  // Only that BDF: its neighbour function stays with the root.
  expect(p.rd('00:04.1', 0).to).toEqual({ root: 0 });
});

test("forwarding the root's own device to an emulator takes it away from the root", () => {
  const p = new Poke(t);
  emu(p, 3 << 3, false, 'ioreq1');
  expect(p.rd('00:03.0', 0)).toEqual({ status: 'ur', value: 0xffffffffn, to: { root: 0, via: 'ioreq1' } });
  emu(p, 3 << 3, true, 'ioreq1');
  expect(p.rd('00:03.0', 0).to?.dev).toBe('own');
});

test('claims are exclusive and must name a known emulator', () => {
  const p = new Poke(t);
  expect(emu(p, 3 << 3).status).toBe('ok');
  expect(emu(p, 3 << 3, false, 'ioreq1')).toEqual({ status: 'error', reason: 'busy' });
  expect(emu(p, 3 << 3, true, 'ioreq1')).toEqual({ status: 'error', reason: 'not-registered' });
  expect(emu(p, 3 << 3, false, 'xen')).toEqual({ status: 'error', reason: 'no-emulator' });
});

test("an emulator's device decodes MMIO only inside ranges forwarded to it", () => {
  const p = new Poke(t);
  emu(p, 4 << 3);
  p.place('00:04.0', 0, 0xc0000000);
  expect(p.mr(0xc0000000)).toEqual({ status: 'ma', value: 0xffffffffn, to: { root: 0 } });
  expect(p.apply({ op: 'emu.map-range', root: 0, emulator: 'qemu', space: 'mmio', start: 0xc0000000, size: 0x4000 }).status).toBe('ok');
  expect(p.mr(0xc0000000).to).toEqual({ root: 0, via: 'qemu', dev: 'q', region: 'bar0', offset: 0 });
  expect(p.apply({ op: 'emu.map-range', root: 0, emulator: 'ioreq1', space: 'mmio', start: 0xc0001000, size: 0x1000 })).toEqual({ status: 'error', reason: 'busy' });
  expect(p.apply({ op: 'emu.unmap-range', root: 0, emulator: 'qemu', space: 'mmio', start: 0xc0000000, size: 0x1000 })).toEqual({ status: 'error', reason: 'not-registered' });
  expect(p.apply({ op: 'emu.unmap-range', root: 0, emulator: 'qemu', space: 'mmio', start: 0xc0000000, size: 0x4000 }).status).toBe('ok');
  expect(p.mr(0xc0000000).status).toBe('ma');
});

test('IO ranges stop at 64 KiB', () => {
  const p = new Poke(t);
  expect(p.apply({ op: 'emu.map-range', root: 0, emulator: 'qemu', space: 'pio', start: 0xff00, size: 0x200 })).toEqual({ status: 'error', reason: 'unsupported' });
});

// ---- Xen's rangesets: choices emulator.overlap and emulator.unmap-partial (harness/spec/choices.ts) ----

/** A chooser that takes `option` for the choice `id` and the default elsewhere (as a profile would). */
const taking = (id: string, option: string): Chooser => (c, options) => ({ option: c === id ? option : options[0].option, declared: c === id });
const range = (op: 'emu.map-range' | 'emu.unmap-range', emulator: string, start: number, size: number): Op => ({ op, root: 0, emulator, space: 'mmio', start, size });

test("a claim overlapping another emulator's: refused by default; taken under emulator.overlap 'newest', where the emulator declared last receives", () => {
  const m = new Model(t);
  expect(m.apply(range('emu.map-range', 'qemu', 0xc0000000, 0x2000)).status).toBe('ok');
  expect(outcome(m.apply(range('emu.map-range', 'ioreq1', 0xc0001000, 0x2000)))).toEqual({ status: 'error', reason: 'busy' });
  const newest = taking('emulator.overlap', 'newest');
  expect(m.apply(range('emu.map-range', 'ioreq1', 0xc0001000, 0x2000), newest).status).toBe('ok');
  // Its own claims never overlap, whatever the choice.
  expect(outcome(m.apply(range('emu.map-range', 'ioreq1', 0xc0002000, 0x1000), newest))).toEqual({ status: 'error', reason: 'busy' });
  expect(m.apply({ op: 'mmio.read', root: 0, addr: 0xc0001000, size: 4 }).to).toEqual({ root: 0, via: 'ioreq1' });
  expect(m.apply({ op: 'mmio.read', root: 0, addr: 0xc0000000, size: 4 }).to).toEqual({ root: 0, via: 'qemu' });
  expect(m.apply(range('emu.unmap-range', 'ioreq1', 0xc0001000, 0x2000)).status).toBe('ok');
  expect(m.apply({ op: 'mmio.read', root: 0, addr: 0xc0001000, size: 4 }).to, 'qemu still claims it').toEqual({ root: 0, via: 'qemu' });
});

test("an unmap of part of a claim, or of adjacent claims together: refused by default; under emulator.unmap-partial 'split' that part goes", () => {
  const m = new Model(t);
  const split = taking('emulator.unmap-partial', 'split');
  m.apply(range('emu.map-range', 'qemu', 0xc0000000, 0x1000));
  m.apply(range('emu.map-range', 'qemu', 0xc0001000, 0x1000));
  expect(outcome(m.apply(range('emu.unmap-range', 'qemu', 0xc0000800, 0x1000)))).toEqual({ status: 'error', reason: 'not-registered' });
  expect(m.apply(range('emu.unmap-range', 'qemu', 0xc0000800, 0x1000), split).status).toBe('ok');
  expect(m.apply({ op: 'mmio.read', root: 0, addr: 0xc0000000, size: 4 }).to).toEqual({ root: 0, via: 'qemu' });
  expect(m.apply({ op: 'mmio.read', root: 0, addr: 0xc0000800, size: 4 }).to).toEqual({ root: 0 });
  expect(m.apply({ op: 'mmio.read', root: 0, addr: 0xc0001800, size: 4 }).to).toEqual({ root: 0, via: 'qemu' });
  // Not all of it held (a gap): refused even so.
  expect(outcome(m.apply(range('emu.unmap-range', 'qemu', 0xc0000000, 0x2000), split))).toEqual({ status: 'error', reason: 'not-registered' });
});

test('emulatorsAfterInternal (Xen): config accesses stay with the root though the BDF is registered, a decoding BAR answers inside a claimed range, and only ports CF8..CFF reach a claim', () => {
  const t2 = { ...oneRoot([ep('own', 3, { bars: [{ kind: 'mem32', size: 0x1000 }, { kind: 'io', size: 0x20 }] })]), emulators: ['qemu'] };
  const m = new Model(t2, { ...REFERENCE_RULES, emulatorsAfterInternal: true });
  const own = (3 << 3) | 0;
  m.apply({ op: 'emu.map-bdf', root: 0, emulator: 'qemu', bdf: own });
  expect(m.apply({ op: 'cfg.read', root: 0, via: 'ecam', bdf: own, reg: 0, size: 4 }).to).toEqual({ root: 0, dev: 'own', region: 'cfg', offset: 0 });
  m.apply({ op: 'cfg.write', root: 0, via: 'ecam', bdf: own, reg: 0x10, size: 4, value: 0xc0000000n });
  m.apply({ op: 'cfg.write', root: 0, via: 'ecam', bdf: own, reg: 0x14, size: 4, value: 0x1000n });
  m.apply({ op: 'cfg.write', root: 0, via: 'ecam', bdf: own, reg: 0x04, size: 2, value: 0x3n });
  m.apply(range('emu.map-range', 'qemu', 0xc0000000, 0x2000));
  m.apply({ op: 'emu.map-range', root: 0, emulator: 'qemu', space: 'pio', start: 0x1000, size: 0x20 });
  m.apply({ op: 'emu.map-range', root: 0, emulator: 'qemu', space: 'pio', start: 0xcfc, size: 4 });
  expect(m.apply({ op: 'mmio.read', root: 0, addr: 0xc0000000, size: 4 }).to?.dev).toBe('own');
  expect(m.apply({ op: 'mmio.read', root: 0, addr: 0xc0001000, size: 4 }).to).toEqual({ root: 0, via: 'qemu' });
  expect(m.apply({ op: 'pio.read', root: 0, port: 0x1000, size: 4 }).to?.dev).toBe('own');
  expect(m.apply({ op: 'pio.read', root: 0, port: 0xcfc, size: 4 }).to).toEqual({ root: 0, via: 'qemu' });
});
