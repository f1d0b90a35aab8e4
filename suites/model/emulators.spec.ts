/**
 * Emulator routing (seeds/002, Xen's ioreq servers): BDFs and ranges
 * delegated to named emulators; every access goes to exactly one handler.
 */
import { test, expect } from '@playwright/test';
import { Poke, ep, oneRoot } from '../helpers.ts';

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
