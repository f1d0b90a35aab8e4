/**
 * Conformance on QEMU: interrupts. INTx is seen as the IOAPIC's inputs
 * (qtest's irq_intercept_in) and held against the line the machine's
 * routing table gives each slot; MSI is seen as the write it is, landing
 * in a watched window of RAM. Each test asserts the lines and messages
 * themselves, and that the oracles find nothing.
 */
import { expect, test } from '@playwright/test';
import type { Irq } from '../../harness/ops/observation.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import { MESSAGE_WINDOW } from '../../harness/adapters/qemu/interrupts.ts';
import { bdf, cfgW, conform, edu, lines, machine, mr, mw, port, requireQemu, withQemu } from './helpers.ts';

test.beforeEach(() => requireQemu());

const BAR = 0xc0000000;
const BAR2 = 0xc0100000;
/** edu at 00:slot.0 with BAR0 at `bar`, memory decode and Bus Master on. */
const up = (slot: number, bar: number): Op[] => [cfgW(bdf(0, slot), 0x10, bar), cfgW(bdf(0, slot), 0x04, 6, 2)];
const line = (n: number, level: 0 | 1): Irq => ({ space: 0, kind: 'line', line: n, level });
/** The irqs each op observed, by op index, leaving out ops that saw none. */
const seen = (steps: readonly { obs: { irqs?: Irq[] } }[]): Record<number, Irq[]> => Object.fromEntries(steps.flatMap((s, i) => (s.obs.irqs === undefined ? [] : [[i, s.obs.irqs]])));

test("edu's INTx reaches the IOAPIC line of its slot (q35: PIRQ E..H by slot and pin), follows Interrupt Disable and drops on acknowledge", async () => {
  await withQemu(async (q) => {
    // Slot 3, INTA: PIRQ E + (3 + 0) % 4 = PIRQ H, GSI 23.
    const ops: Op[] = [
      ...up(3, BAR),
      mw(BAR + 0x60, 0x1), // 2: raise
      mw(BAR + 0x60, 0x2), // 3: already asserted: no change
      cfgW(bdf(0, 3), 0x04, 0x406, 2), // 4: Interrupt Disable: the line drops, the status bit stays
      mr(BAR + 0x24),
      cfgW(bdf(0, 3), 0x04, 0x006, 2), // 6: enabled again: the line rises
      mw(BAR + 0x64, 0x1), // 7: one bit left: still asserted
      mw(BAR + 0x64, 0x2), // 8: nothing left: the line drops
    ];
    const r = await conform(q, machine([edu('e0', 3)]), ops);
    expect(lines(r.violations)).toEqual([]);
    expect(seen(r.steps)).toEqual({ 2: [line(23, 1)], 4: [line(23, 0)], 6: [line(23, 1)], 8: [line(23, 0)] });
  });
});

test('INTx lines are wired-OR: two functions on one line keep it asserted until both let go', async () => {
  await withQemu(async (q) => {
    // Slots 2 and 6 both rotate to PIRQ G (GSI 22); slot 5 to PIRQ F (GSI 21).
    const ops: Op[] = [
      ...up(2, BAR),
      ...up(6, BAR2),
      mw(BAR + 0x60, 0x1), // 4: up
      mw(BAR2 + 0x60, 0x1), // 5: already up
      mw(BAR + 0x64, 0x1), // 6: the other still holds it
      mw(BAR2 + 0x64, 0x1), // 7: down
    ];
    const r = await conform(q, machine([edu('e0', 2), edu('e1', 6)]), ops);
    expect(lines(r.violations)).toEqual([]);
    expect(seen(r.steps)).toEqual({ 4: [line(22, 1)], 7: [line(22, 0)] });
  });
});

test('MSI is a memory write: the message lands in RAM where its address says, with its data; an unchanged write is not seen', async () => {
  await withQemu(async (q) => {
    // edu's MSI capability is at 0x40: 64-bit address, data at 0x4c, one vector.
    const at = MESSAGE_WINDOW.base + 8;
    const msi = [cfgW(bdf(0, 3), 0x44, at), cfgW(bdf(0, 3), 0x48, 0), cfgW(bdf(0, 3), 0x4c, 0x4025, 2), cfgW(bdf(0, 3), 0x42, 1, 2)];
    const ops: Op[] = [
      ...up(3, BAR),
      ...msi, // 2..5
      mw(BAR + 0x60, 0x1), // 6: a message, no line
      mw(BAR + 0x60, 0x2), // 7: edu signals again, the same data over the same data: nothing to see
      cfgW(bdf(0, 3), 0x4c, 0x4026, 2), // 8
      mw(BAR + 0x60, 0x4), // 9: new data at the same address
      cfgW(bdf(0, 3), 0x04, 0x002, 2), // 10: Bus Master off: a message is a write the function may not issue
      mw(BAR + 0x60, 0x8), // 11: nothing
      mw(BAR + 0x64, 0xf),
    ];
    const r = await conform(q, machine([edu('e0', 3)]), ops);
    expect(lines(r.violations)).toEqual([]);
    const message = (data: number): Irq => ({ space: 0, kind: 'message', addr: at, data });
    expect(seen(r.steps)).toEqual({ 6: [message(0x4025)], 9: [message(0x4026)] });
  });
});

test("a factorial's interrupt belongs to the write that started it, however late edu's thread raises it", async () => {
  await withQemu(async (q) => {
    const ops: Op[] = [...up(3, BAR), mw(BAR + 0x20, 0x80), mw(BAR + 0x08, 12), mr(BAR + 0x08), mw(BAR + 0x64, 1), mw(BAR + 0x08, 10), mr(BAR + 0x24)];
    const r = await conform(q, machine([edu('e0', 3)]), ops);
    expect(lines(r.violations)).toEqual([]);
    expect(seen(r.steps)).toEqual({ 3: [line(23, 1)], 5: [line(23, 0)], 6: [line(23, 1)] });
  });
});

test('INTx below a root port is swizzled by the device number on each bus and enters by the port’s slot', async () => {
  await withQemu(async (q) => {
    // Port at 00:04.0, secondary bus 1; edu at 01:00.0, INTA stays INTA and enters at slot 4: PIRQ E, GSI 20.
    const p = bdf(0, 4);
    const ops: Op[] = [
      cfgW(p, 0x18, 0x010100),
      cfgW(p, 0x20, 0xc000c000),
      cfgW(p, 0x04, 6, 2),
      cfgW(bdf(1, 0), 0x10, BAR),
      cfgW(bdf(1, 0), 0x04, 6, 2),
      mw(BAR + 0x60, 1), // 5
      mw(BAR + 0x64, 1), // 6
    ];
    const r = await conform(q, machine([port('p0', 4, edu('e0', 0))]), ops);
    expect(lines(r.violations)).toEqual([]);
    expect(seen(r.steps)).toEqual({ 5: [line(20, 1)], 6: [line(20, 0)] });
  });
});

test("a root port's hot-plug interrupt: a plug raises it, and the unplug's eject (config writes) lowers it with Presence Detect Changed still latched", async () => {
  await withQemu(async (q) => {
    // Port at 00:04.0 (slot 4, INTA: GSI 20); Slot Control at 0x6c, Slot Status at 0x6e.
    const p = bdf(0, 4);
    const ops: Op[] = [
      cfgW(p, 0x6c, 0x28, 2), // 0: Presence Detect Changed Enable, Hot-Plug Interrupt Enable
      { op: 'dev.plug', dev: 'e0' }, // 1: Presence Detect Changed: the line rises
      { op: 'cfg.read', root: 0, via: 'ecam', bdf: p, reg: 0x6e, size: 2 },
      { op: 'dev.unplug', dev: 'e0' }, // 3: the eject's writes set INTx to the AER root interrupt: down
      { op: 'cfg.read', root: 0, via: 'ecam', bdf: p, reg: 0x6c, size: 4 },
    ];
    const r = await conform(q, machine([port('p0', 4, edu('e0', 0, { present: false }))]), ops);
    expect(lines(r.violations)).toEqual([]);
    expect(seen(r.steps)).toEqual({ 1: [line(20, 1)], 3: [line(20, 0)] });
    // After the plug: Presence Detect State and Changed, Attention Button Pressed, and Command Completed from op 0.
    expect(r.steps[2].obs.value).toBe(0x59n);
    // After the unplug: the events stay latched, presence is gone, Slot Control is as it was.
    expect(r.steps[4].obs.value).toBe(0x00190028n);
  });
});
