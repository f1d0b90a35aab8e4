/**
 * Conformance on QEMU: edu's registers and its DMA engine, against the
 * model. The DMA ops drive the engine as a driver would (virtual time
 * moves only while a transfer is in flight: clock_step under the qtest
 * accelerator, the VM run under TCG).
 */
import { expect, test } from '@playwright/test';
import type { Op } from '../../harness/ops/catalog.ts';
import { bdf, cfgW, conform, edu, lines, machine, mr, mw, port, requireQemu, withQemu } from './helpers.ts';

test.beforeEach(() => requireQemu());

const BAR = 0xc0000000;
/** edu at 00:02.0 with BAR0 at 0xc0000000, memory decode and Bus Master on. */
const up: Op[] = [cfgW(bdf(0, 2), 0x10, BAR), cfgW(bdf(0, 2), 0x04, 6, 2)];
const one = machine([edu('e0', 2)]);

test("edu's registers: identification, inverted address, factorial, status and interrupt status", async () => {
  await withQemu(async (q) => {
    const ops: Op[] = [
      ...up,
      mr(BAR),
      mw(BAR + 4, 0x12345678),
      mr(BAR + 4),
      // The factorial runs on a QEMU thread; the target waits for it as a driver polls the status.
      mw(BAR + 8, 10),
      mr(BAR + 8),
      mr(BAR + 0x20),
      mw(BAR + 8, 13),
      mr(BAR + 8),
      mw(BAR + 0x20, 0x80),
      mr(BAR + 0x20),
      mw(BAR + 0x60, 0x5),
      mr(BAR + 0x24),
      mw(BAR + 0x64, 0x1),
      mr(BAR + 0x24),
      // Sub-dword accesses below 0x80 are ignored by edu.
      mr(BAR, 2),
      mw(BAR + 4, 0xff, 1),
      mr(BAR + 4),
    ];
    const r = await conform(q, one, ops);
    expect(r.failure).toBeUndefined();
    expect(lines(r.violations)).toEqual([]);
    const v = (i: number): bigint | undefined => r.steps[i].obs.value;
    expect(v(2)).toBe(0x010000edn);
    expect(v(4)).toBe(0xedcba987n);
    expect(v(6)).toBe(3628800n);
    expect(v(9)).toBe(1932053504n); // 13! modulo 2^32
    expect(v(13)).toBe(0x5n);
    expect(v(15)).toBe(0x4n);
  });
});

test('DMA moves data between RAM and the buffer, and Bus Master off leaves zeros', async () => {
  await withQemu(async (q) => {
    const ops: Op[] = [
      ...up,
      mw(0x100000, 0x11223344),
      { op: 'dma.read', dev: 'e0', iova: 0x100000, len: 4 },
      { op: 'dma.write', dev: 'e0', iova: 0x200010, data: Uint8Array.of(9, 8, 7, 6, 5) },
      mr(0x200010, 8),
      // The engine's registers hold the driver's values now: the model does not predict them.
      mr(BAR + 0x80, 8),
      cfgW(bdf(0, 2), 0x04, 2, 2),
      { op: 'dma.read', dev: 'e0', iova: 0x100000, len: 4 },
      { op: 'dma.write', dev: 'e0', iova: 0x300000, data: Uint8Array.of(1) },
      mr(0x300000),
    ];
    const r = await conform(q, one, ops);
    expect(lines(r.violations)).toEqual([]);
    expect(r.steps[3].obs.data).toEqual(Uint8Array.of(0x44, 0x33, 0x22, 0x11));
    expect(r.steps[5].obs.value).toBe(0x0506070809n);
    expect(r.steps[8].obs.data).toEqual(new Uint8Array(4));
    expect(r.steps[10].obs.value).toBe(0n);
  });
});

test('a DMA op needs the registers in reach: unmapped, or behind a closed window, edu is unreachable', async () => {
  await withQemu(async (q) => {
    const t = machine([edu('e0', 2), port('p0', 3, edu('e1', 0))]);
    const ops: Op[] = [
      { op: 'dma.read', dev: 'e0', iova: 0x1000, len: 4 },
      cfgW(bdf(0, 3), 0x18, 0x010100),
      cfgW(bdf(1, 0), 0x10, 0xd0000000),
      cfgW(bdf(1, 0), 0x04, 6, 2),
      { op: 'dma.read', dev: 'e1', iova: 0x1000, len: 4 },
      // The port's window opened over the BAR: now it is in reach.
      cfgW(bdf(0, 3), 0x20, 0xd000d000),
      cfgW(bdf(0, 3), 0x04, 6, 2),
      { op: 'dma.read', dev: 'e1', iova: 0x1000, len: 4 },
    ];
    const r = await conform(q, t, ops);
    expect(lines(r.violations)).toEqual([]);
    expect(r.steps[0].obs).toMatchObject({ status: 'error', reason: 'unreachable' });
    expect(r.steps[4].obs).toMatchObject({ status: 'error', reason: 'unreachable' });
    expect(r.steps[7].obs.status).toBe('ok');
  });
});

test('a transfer started through MMIO waits for virtual time; the next DMA op lets it run first', async () => {
  await withQemu(async (q) => {
    const ops: Op[] = [
      ...up,
      mw(0x5000, 0xcafef00d),
      mw(BAR + 0x80, 0x5000, 8),
      mw(BAR + 0x88, 0x40000, 8),
      mw(BAR + 0x90, 4, 8),
      mw(BAR + 0x98, 1, 8),
      // Stopped machine: the engine is still busy.
      mr(BAR + 0x98, 8),
      { op: 'dma.write', dev: 'e0', iova: 0x6000, data: Uint8Array.of(0xaa) },
      mr(0x6000),
    ];
    const r = await conform(q, one, ops);
    expect(lines(r.violations)).toEqual([]);
    expect(r.steps[7].obs.value).toBe(1n);
    expect(r.steps[9].obs.value).toBe(0xaan);
  });
});

test("a transfer that ends at the buffer's end: QEMU 7.2 aborts (a crash finding with QEMU's stderr), a QEMU with the bounds check fixed completes it as the model predicts", async () => {
  await withQemu(async (q) => {
    const r = await conform(q, one, [...up, { op: 'dma.read', dev: 'e0', iova: 0x1000, len: 4096 }, mr(BAR)]);
    if (!q.info.version.startsWith('7.')) {
      // QEMU 11.1.3: edu_check_range accepts a transfer ending at the buffer's end.
      expect(r.failure).toBeUndefined();
      expect(lines(r.violations)).toEqual([]);
      return;
    }
    expect(r.failure?.kind).toBe('crash');
    expect(r.failure?.index).toBe(2);
    expect(r.failure?.stderr ?? '').toContain('EDU: DMA range');
    expect(r.violations.map((f) => f.kind)).toContain('crash');
    expect(q.pid).toBeUndefined();
  });
});
