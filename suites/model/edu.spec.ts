/**
 * QEMU's edu device (hw/misc/edu.c) as QEMU 7.2 implements it. Register
 * semantics checked against Debian 12's qemu-system-x86 7.2 during
 * development; see docs/model.md for the two deliberate differences.
 */
import { test, expect } from '@playwright/test';
import { Poke, oneRoot } from '../helpers.ts';

const t = oneRoot([{ id: 'edu', kind: 'edu', slot: 4, fn: 0 }], { iommu: false });
const BAR = 0xfea00000;

function up(p: Poke, cmd = 0x7): void {
  p.wr('00:04.0', 0x10, BAR);
  p.wr('00:04.0', 0x04, cmd, 2);
}

test('identity and header: 1234:11e8 rev 10, class 00ff00, subsystem 1af4:1100, pin A, MSI at 0x40', () => {
  const p = new Poke(t);
  expect(p.cfg('00:04.0', 0x00)).toBe(0x11e81234);
  expect(p.cfg('00:04.0', 0x08)).toBe(0x00ff0010);
  expect(p.cfg('00:04.0', 0x2c)).toBe(0x11001af4);
  expect(p.cfg('00:04.0', 0x3d, 1)).toBe(1);
  expect(p.cfg('00:04.0', 0x34, 1)).toBe(0x40);
  expect(p.cfg('00:04.0', 0x40, 2)).toBe(0x0005);
  expect(p.cfg('00:04.0', 0x42, 2)).toBe(0x0080); // 64-bit, one vector
});

test('BAR0 is 1 MiB of 32-bit memory; the command register takes 0x0507 (QEMU)', () => {
  const p = new Poke(t);
  p.wr('00:04.0', 0x10, 0xffffffff);
  expect(p.cfg('00:04.0', 0x10)).toBe(0xfff00000);
  p.wr('00:04.0', 0x04, 0xffff, 2);
  expect(p.cfg('00:04.0', 0x04, 2)).toBe(0x0507);
  expect(p.cfg('00:04.0', 0x0d, 1)).toBe(0); // latency timer read-only zero
});

test.describe('register reads', () => {
  for (const [off, size, value, what] of [
    [0x00, 4, 0x010000edn, 'identification'],
    [0x04, 4, 0x0n, 'liveness at reset'],
    [0x60, 4, 0xffffffffn, 'write-only raise reads all-ones'],
    [0xa0, 4, 0xffffffffn, 'an unlisted offset reads all-ones'],
    [0x00, 8, 0xffffffffffffffffn, 'an 8-byte read below 0x80'],
    [0x00, 2, 0x0n, 'a 2-byte read is refused by the memory core: 0'],
    [0x01, 1, 0x0n, 'a 1-byte read: 0'],
    [0x84, 4, 0xffffffffn, 'the upper half of a DMA register at 4 bytes'],
  ] as const) {
    test(`${what}: ${size} bytes at ${off.toString(16)}`, () => {
      const p = new Poke(t);
      up(p);
      expect(p.mr(BAR + off, size).value).toBe(value);
    });
  }
});

test('liveness stores the inverse; factorial computes n! with 32-bit wrap', () => {
  const p = new Poke(t);
  up(p);
  p.mw(BAR + 4, 0x12345678);
  expect(p.mr(BAR + 4).value).toBe(0xedcba987n);
  p.mw(BAR + 8, 5);
  expect(p.mr(BAR + 8).value).toBe(120n);
  p.mw(BAR + 8, 0);
  expect(p.mr(BAR + 8).value).toBe(1n);
  p.mw(BAR + 8, 33);
  expect(p.mr(BAR + 8).value).toBe(0x80000000n);
  p.mw(BAR + 8, 34);
  expect(p.mr(BAR + 8).value).toBe(0n);
  p.mw(BAR + 4, 1, 8); // 8-byte writes below 0x80 are ignored
  expect(p.mr(BAR + 4).value).toBe(0xedcba987n);
});

test('raise and acknowledge: INTx while MSI is off, one MSI per raise when on', () => {
  const p = new Poke(t);
  up(p);
  expect(p.mw(BAR + 0x60, 0x3).irqs).toEqual([{ space: 0, dev: 'edu', kind: 'intx', pin: 0, level: 1 }]);
  expect(p.mr(BAR + 0x24).value).toBe(3n);
  expect(p.mw(BAR + 0x64, 0x1).irqs).toBeUndefined();
  expect(p.mw(BAR + 0x64, 0x2).irqs).toEqual([{ space: 0, dev: 'edu', kind: 'intx', pin: 0, level: 0 }]);
  p.wr('00:04.0', 0x44, 0xfee00000);
  p.wr('00:04.0', 0x4c, 0x4055, 2);
  p.wr('00:04.0', 0x42, 0x71, 2);
  expect(p.cfg('00:04.0', 0x42, 2)).toBe(0x81); // MME clamped to one vector
  const msi = { space: 0, dev: 'edu', kind: 'msi', vector: 0, addr: 0xfee00000, data: 0x4055 };
  expect(p.mw(BAR + 0x60, 0x4).irqs).toEqual([msi]);
  expect(p.mw(BAR + 0x60, 0x0).irqs).toEqual([msi]); // status still non-zero: signals again
});

test('status bit 7 raises interrupt 0x1 when the factorial completes', () => {
  const p = new Poke(t);
  up(p);
  p.mw(BAR + 0x20, 0x80);
  expect(p.mr(BAR + 0x20).value).toBe(0x80n);
  expect(p.mw(BAR + 0x8, 3).irqs?.[0]).toMatchObject({ kind: 'intx', level: 1 });
  expect(p.mr(BAR + 0x24).value).toBe(1n);
});

test('DMA engine: 100 ms after the command, RAM to buffer and buffer to RAM, then bit 0 clears and 0x100 is raised', () => {
  const p = new Poke(t);
  up(p);
  p.mw(0x10000, 0xcafef00d);
  p.mw(BAR + 0x80, 0x10000, 8);
  p.mw(BAR + 0x88, 0x40000, 8);
  p.mw(BAR + 0x90, 4, 8);
  p.mw(BAR + 0x98, 0x5, 8); // start, RAM to device, interrupt
  expect(p.mr(BAR + 0x98, 8).value).toBe(5n);
  expect(p.apply({ op: 'clock.step', ns: 99_000_000 }).irqs).toBeUndefined();
  expect(p.apply({ op: 'clock.step', ns: 1_000_000 }).irqs).toEqual([{ space: 0, dev: 'edu', kind: 'intx', pin: 0, level: 1 }]);
  expect(p.mr(BAR + 0x98, 8).value).toBe(4n);
  expect(p.mr(BAR + 0x24).value).toBe(0x100n);
  // Buffer back to RAM at another address.
  p.mw(BAR + 0x80, 0x40000, 8);
  p.mw(BAR + 0x88, 0x20000, 8);
  p.mw(BAR + 0x98, 0x3, 8);
  p.apply({ op: 'clock.step', ns: 100_000_000 });
  expect(p.mr(0x20000).value).toBe(0xcafef00dn);
});

test('DMA registers: a 4-byte write zero-extends; writes are ignored while a transfer runs', () => {
  const p = new Poke(t);
  up(p);
  p.mw(BAR + 0x80, 0x1122334455667788n, 8);
  p.mw(BAR + 0x80, 0x99, 4);
  expect(p.mr(BAR + 0x80, 8).value).toBe(0x99n);
  p.mw(BAR + 0x98, 1, 8);
  p.mw(BAR + 0x80, 0x5, 8);
  expect(p.mr(BAR + 0x80, 8).value).toBe(0x99n);
});

test('the RAM-side DMA address is masked to 28 bits; out-of-buffer transfers are skipped', () => {
  const p = new Poke(t);
  up(p);
  p.mw(0x30000, 0xab, 1);
  expect(p.apply({ op: 'dma.read', dev: 'edu', iova: 0x10030000, len: 1 }).data).toEqual(Uint8Array.of(0xab));
  p.mw(BAR + 0x80, 0x30000, 8);
  p.mw(BAR + 0x88, 0x40ff0, 8);
  p.mw(BAR + 0x90, 0x20, 8); // runs past the buffer's end
  p.mw(BAR + 0x98, 0x1, 8);
  p.apply({ op: 'clock.step', ns: 100_000_000 });
  expect(p.mr(BAR + 0x98, 8).value).toBe(0n);
});

test('without Bus Master the engine reads zeros and its writes are dropped', () => {
  const p = new Poke(t);
  up(p, 0x2);
  p.mw(0x10000, 0x12345678);
  expect(p.apply({ op: 'dma.read', dev: 'edu', iova: 0x10000, len: 4 })).toEqual({ status: 'fault', reason: 'bus-master-disabled' });
  p.mw(BAR + 0x80, 0x40000, 8);
  p.mw(BAR + 0x88, 0x10000, 8);
  p.mw(BAR + 0x90, 4, 8);
  p.mw(BAR + 0x98, 0x3, 8);
  p.apply({ op: 'clock.step', ns: 100_000_000 });
  expect(p.mr(0x10000).value).toBe(0x12345678n);
});

test('reset clears the config side but edu keeps its registers; 0x4e..0xff is plain storage that survives', () => {
  const p = new Poke(t);
  up(p);
  p.mw(BAR + 4, 0);
  p.wr('00:04.0', 0x80, 0xabcdef01);
  p.apply({ op: 'dev.reset', dev: 'edu' });
  expect(p.cfg('00:04.0', 0x04, 2)).toBe(0);
  expect(p.cfg('00:04.0', 0x80)).toBe(0xabcdef01);
  up(p);
  expect(p.mr(BAR + 4).value).toBe(0xffffffffn);
});
