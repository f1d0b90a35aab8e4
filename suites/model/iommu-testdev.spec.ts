/** QEMU's iommu-testdev (hw/misc/iommu-testdev.c, QEMU 11) in the model: registers, the trigger, its writes. */
import { test, expect } from '@playwright/test';
import { Poke, oneRoot } from '../helpers.ts';
import { ITD, ITD_RESULT, itdPattern } from '../../harness/model/personalities/iommu-testdev.ts';
import type { DeviceSpec } from '../../harness/topology/types.ts';

const MIB = 2 ** 20;
const itd = (extra: Partial<DeviceSpec> = {}): DeviceSpec => ({ id: 'i', kind: 'iommu-testdev', slot: 4, fn: 0, ...extra });
const B = 0xfeb00000;
const PATTERN = 0x12345678n;

/** BAR0 at B with Memory Space only: no Bus Master, which the device does not consult. */
function up(p: Poke): void {
  p.wr('00:04.0', 0x10, B);
  p.wr('00:04.0', 0x04, 0x2, 2);
}
/** Sets the IOVA, the length and the read-back address, arms, triggers; returns RESULT. */
function run(p: Poke, iova: number, len: number, back = iova, arm = true): number {
  p.mw(B + ITD.iovaLo, iova);
  p.mw(B + ITD.len, len);
  p.mw(B + ITD.gpaLo, back);
  if (arm) p.mw(B + ITD.doorbell, 1);
  expect(p.mr(B + ITD.trigger).value).toBe(0n);
  return Number(p.mr(B + ITD.result).value);
}

test('identity: 1b36:0005, class 00ff00, no pin, no capabilities; BAR0 4 KiB memory', () => {
  const p = new Poke(oneRoot([itd()]));
  expect(p.cfg('00:04.0', 0)).toBe(0x00051b36);
  expect(p.cfg('00:04.0', 0x08)).toBe(0x00ff0000);
  expect(p.cfg('00:04.0', 0x3d, 1)).toBe(0);
  expect(p.cfg('00:04.0', 0x06, 2) & 0x10).toBe(0);
  p.wr('00:04.0', 0x10, 0xffffffff);
  expect(p.cfg('00:04.0', 0x10)).toBe(0xfffff000);
});

test('registers: 4-byte accesses only; RESULT idle at reset, busy when armed; the refusals a trigger reports', () => {
  const p = new Poke(oneRoot([itd()]));
  up(p);
  expect(Number(p.mr(B + ITD.result).value)).toBe(ITD_RESULT.idle);
  p.mw(B + ITD.iovaHi, 0xabcd);
  expect(p.mr(B + ITD.iovaHi).value).toBe(0xabcdn);
  expect(p.mr(B + ITD.iovaHi, 2).value).toBe(0n);
  p.mw(B + ITD.iovaHi, 0x5555, 2);
  expect(p.mr(B + ITD.iovaHi).value).toBe(0xabcdn);
  p.mw(B + ITD.iovaHi, 0);
  expect(run(p, 0x1000, 4, 0x1000, false)).toBe(ITD_RESULT.notArmed);
  expect(run(p, 0x1000, 0)).toBe(ITD_RESULT.badLen);
  p.mw(B + ITD.attrs, 0xb);
  expect(run(p, 0x1000, 4)).toBe(ITD_RESULT.badAttrs);
  p.mw(B + ITD.attrs, 2);
  p.mw(B + ITD.doorbell, 1);
  expect(Number(p.mr(B + ITD.result).value)).toBe(ITD_RESULT.busy);
  p.mw(B + ITD.doorbell, 0);
  expect(Number(p.mr(B + ITD.result).value)).toBe(ITD_RESULT.idle);
});

test('the trigger writes the pattern without Bus Master; the read-back compares; a page past RAM fails alone', () => {
  const p = new Poke(oneRoot([itd()], { ram: 8 * MIB }));
  up(p);
  expect(run(p, 0x3000, 16)).toBe(0);
  expect(p.mr(0x3000, 8).value).toBe((PATTERN << 32n) | PATTERN);
  expect(run(p, 0x5000, 8, 0x6000)).toBe(ITD_RESULT.mismatch);
  // Across the end of RAM: the page inside lands, the one outside fails the write.
  expect(run(p, 8 * MIB - 8, 16, 0)).toBe(ITD_RESULT.txFail);
  expect(p.mr(8 * MIB - 8, 8).value).toBe((PATTERN << 32n) | PATTERN);
});

test('dma.write drives it: only its pattern; registers put back, the doorbell left disarmed; a read is refused', () => {
  const p = new Poke(oneRoot([itd()], { ram: 8 * MIB }));
  expect(p.apply({ op: 'dma.write', dev: 'i', iova: 0x2000, data: itdPattern(4) })).toMatchObject({ status: 'error', reason: 'unreachable' });
  up(p);
  p.mw(B + ITD.iovaLo, 0x7777);
  p.mw(B + ITD.doorbell, 1);
  expect(p.apply({ op: 'dma.write', dev: 'i', iova: 0x2000, data: itdPattern(8) })).toMatchObject({ status: 'ok' });
  expect(p.mr(0x2000, 8).value).toBe((PATTERN << 32n) | PATTERN);
  expect(p.mr(B + ITD.iovaLo).value).toBe(0x7777n);
  expect(Number(p.mr(B + ITD.result).value)).toBe(ITD_RESULT.busy);
  expect(run(p, 0x7777, 4, 0, false)).toBe(ITD_RESULT.notArmed);
  expect(p.apply({ op: 'dma.write', dev: 'i', iova: 0x2000, data: Uint8Array.of(1, 2, 3, 4) })).toMatchObject({ status: 'error', reason: 'unsupported' });
  expect(p.apply({ op: 'dma.read', dev: 'i', iova: 0x2000, len: 4 })).toMatchObject({ status: 'error', reason: 'unsupported' });
  expect(p.apply({ op: 'dma.write', dev: 'i', iova: 0x800000, data: itdPattern(4) })).toMatchObject({ status: 'fault', reason: 'no-memory' });
});

test('under an IOMMU: each page translates on its own, the first translation fault is the reason', () => {
  const p = new Poke(oneRoot([itd({ domain: 0 })], { iommu: true, domains: 1 }));
  up(p);
  expect(p.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x10000, size: 0x1000, gpa: 0x40000, perm: 'rw' }).status).toBe('ok');
  expect(p.apply({ op: 'dma.write', dev: 'i', iova: 0x10ff8, data: itdPattern(16) })).toMatchObject({ status: 'fault', reason: 'iova-unmapped' });
  expect(p.mr(0x40ff8, 8).value).toBe((PATTERN << 32n) | PATTERN);
  expect(p.mr(0x41000, 8).value).toBe(0n);
});

test('a length above 64 KiB is refused by the harness (rule harness.itd-length); the register keeps its value', () => {
  const p = new Poke(oneRoot([itd()]));
  up(p);
  p.mw(B + ITD.len, 0x10000);
  const o = p.full({ op: 'mmio.write', root: 0, addr: B + ITD.len, size: 4, value: 0x10001n });
  expect(o).toMatchObject({ status: 'error', reason: 'unsupported', source: 'harness', rule: 'harness.itd-length' });
  expect(p.mr(B + ITD.len).value).toBe(0x10000n);
});

test('reset clears every register', () => {
  const p = new Poke(oneRoot([itd()]));
  up(p);
  p.mw(B + ITD.len, 0x40);
  p.mw(B + ITD.doorbell, 1);
  expect(p.apply({ op: 'root.reset', root: 0 }).status).toBe('ok');
  up(p);
  expect(p.mr(B + ITD.len).value).toBe(0n);
  expect(Number(p.mr(B + ITD.result).value)).toBe(ITD_RESULT.idle);
});

test("an 8-byte access at a multiple of 4 is two register accesses, as QEMU's memory core cuts it; other pieces reach nothing", () => {
  const p = new Poke(oneRoot([itd()]));
  up(p);
  p.mw(B + ITD.iovaLo, 0x1111_0000_2222n * 0x10000n + 0x3333n, 8);
  expect(p.mr(B + ITD.iovaLo).value).toBe(0x22223333n);
  expect(p.mr(B + ITD.iovaHi).value).toBe(0x11110000n);
  // RESULT (idle) and the doorbell (reads 0) together.
  expect(p.mr(B + ITD.result, 8).value).toBe(BigInt(ITD_RESULT.idle));
  expect(p.mr(B + ITD.iovaLo + 2, 8).value).toBe(0x11110000n << 16n);
  // The length in the upper half of an 8-byte write is held to the same bound.
  expect(p.full({ op: 'mmio.write', root: 0, addr: B + 0x08, size: 8, value: 0x20000n << 32n })).toMatchObject({ status: 'error', source: 'harness', rule: 'harness.itd-length' });
});
