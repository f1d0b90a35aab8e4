/**
 * The root-port personality claims QEMU's IDs (1b36:000c), so it follows
 * QEMU 7.2's pcie-root-port as isoroot's QEMU target builds it
 * (`-device pcie-root-port,chassis=1,slot=N` on q35), register for register.
 * These pin that layout and the QEMU behaviours a spec-only bridge would
 * not have; tmp scripts compared every one of them with a running QEMU.
 */
import { test, expect } from '@playwright/test';
import { Poke, ep } from '../helpers.ts';
import type { Topology } from '../../harness/topology/types.ts';

const share = { memory: 0, io: 0, dma: 0, irq: 0, pasid: 0, config: 0 };
/** Root 0 is q35's main bus; root 1 an expander. */
const t: Topology = {
  roots: [
    {
      bus: 0,
      busLimit: 0x1f,
      cf8: true,
      devices: [
        { id: 'a', kind: 'root-port', slot: 4, fn: 0, children: [ep('ea', 0, { caps: ['pcie'] })] },
        { id: 'b', kind: 'root-port', slot: 5, fn: 0 },
      ],
    },
    { bus: 0x20, busLimit: 0x3f, share, devices: [{ id: 'c', kind: 'root-port', slot: 0, fn: 0, children: [ep('ec', 0)] }] },
  ],
};
const A = '00:04.0';
const B = '00:05.0';
const C = '20:00.0';
const PCIE = 0x54;
const SLTCTL = PCIE + 0x18;
const SLTSTA = PCIE + 0x1a;

function open(): Poke {
  const p = new Poke(t);
  p.wr(A, 0x18, 0x010100);
  p.wr(C, 0x18, 0x212120);
  return p;
}

test('header: identity, a 16-bit IO window, windows closed at reset, QEMU writable bits', () => {
  const p = open();
  expect(p.cfg(A, 0x00)).toBe(0x000c1b36);
  expect(p.cfg(A, 0x04)).toBe(0x00100000); // capability list, nothing else in Status
  expect(p.cfg(A, 0x08)).toBe(0x06040000);
  expect(p.cfg(A, 0x0c)).toBe(0x00010000);
  expect([0x1c, 0x20, 0x24].map((r) => p.cfg(A, r))).toEqual([0x000000f0, 0x0000fff0, 0x0001fff1]); // base above limit
  expect(p.cfg(A, 0x3c)).toBe(0x00000100);
  p.wr(A, 0x04, 0xffff, 2);
  expect(p.cfg(A, 0x04, 2)).toBe(0x0507); // no Parity Error Response
  p.wr(A, 0x1c, 0xffffffff);
  expect(p.cfg(A, 0x1c)).toBe(0x0000f0f0); // secondary status read-only, no 32-bit IO
  p.wr(A, 0x30, 0xffffffff);
  expect(p.cfg(A, 0x30)).toBe(0);
  p.wr(A, 0x3c, 0xffffffff);
  expect(p.cfg(A, 0x3c)).toBe(0x005f01ff); // bridge control bits 0x5f
});

test('capabilities: PCIe at 0x54, MSI-X at 0x48, subsystem IDs at 0x40; AER then ACS from 0x100', () => {
  const p = open();
  const list: number[] = [];
  for (let at = p.cfg(A, 0x34, 1); at !== 0; at = p.cfg(A, at + 1, 1)) list.push(at, p.cfg(A, at, 1));
  expect(list).toEqual([0x54, 0x10, 0x48, 0x11, 0x40, 0x0d]);
  expect(p.cfg(A, 0x44)).toBe(0x1b36);
  expect([0x48, 0x4c, 0x50].map((r) => p.cfg(A, r))).toEqual([0x00004011, 0, 0x800]); // one vector, table and PBA in BAR 0
  expect(p.cfg(A, PCIE)).toBe(0x01424810); // v2, root port, slot
  expect(p.cfg(A, PCIE + 0x0c)).toBe(0x00300604); // x32 at 16 GT/s
  expect([0x100, 0x10c, 0x114, 0x118, 0x148, 0x14c].map((r) => p.cfg(A, r))).toEqual([0x14820001, 0x00462030, 0x0000e000, 0x000002a0, 0x0001000d, 0x5f]);
});

test('Slot Capabilities carry the Physical Slot Number, 1, 2, ... in topology order', () => {
  const p = open();
  expect([A, B].map((b) => p.cfg(b, PCIE + 0x14))).toEqual([0x000a007b, 0x0012007b]);
  expect(p.cfg(C, PCIE + 0x14)).toBe(0x001a007b);
});

test('slot at reset: populated slots are powered with the power indicator on and show presence; empty ones are off', () => {
  const p = open();
  expect(p.cfg(A, SLTCTL)).toBe(0x004001c0);
  expect(p.cfg(B, SLTCTL)).toBe(0x000007c0);
  expect(p.cfg(C, SLTCTL)).toBe(0x004001c0);
  expect(p.cfg(A, PCIE + 0x12, 2)).toBe(0x2011); // the PCIe endpoint below: x1 at 2.5 GT/s, link active
  expect(p.cfg(C, PCIE + 0x12, 2)).toBe(0x2204); // no link status below: the port's own maxima, link active
});

test('bytes no capability claims are storage, and a reset leaves them (and the AER settings) as written', () => {
  const p = open();
  for (const r of [0x90, 0xfc, 0x150, 0xffc, 0x10c, 0x114]) p.wr(A, r, 0xffffffff);
  p.wr(A, PCIE + 0x28, 0xffff, 2);
  p.apply({ op: 'dev.reset', dev: 'a' });
  expect([0x90, 0xfc, 0x150, 0xffc, 0x10c, 0x114].map((r) => p.cfg(A, r))).toEqual([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x03fff030, 0x0000f1c1]);
  expect(p.cfg(A, PCIE + 0x28, 2)).toBe(0x8000); // ARI forwarding resets, end-end TLP prefix blocking does not
  expect(p.cfg(A, 0x18)).toBe(0);
});

test('Slot Control: a command completes at once, EIC toggles the interlock, a stray 1 keeps the event bits', () => {
  const p = open();
  p.wr(A, SLTCTL, 0x0900, 2); // EIC with the power indicator on
  expect(p.cfg(A, SLTCTL)).toBe(0x00d00100); // EIC reads 0; interlock engaged, command completed, presence
  p.wr(A, SLTSTA, 0x0018, 2); // presence detect changed was not set: nothing is cleared
  expect(p.cfg(A, SLTSTA, 2)).toBe(0x00d0);
  p.wr(A, SLTSTA, 0x0010, 2);
  expect(p.cfg(A, SLTSTA, 2)).toBe(0x00c0);
});

test('the power controller powers the device below: off resets it and it reads all ones until power returns', () => {
  const p = open();
  p.wr('01:00.0', 0x04, 0x0006, 2);
  p.wr(A, SLTCTL, 0x0500, 2);
  expect(p.cfg('01:00.0', 0)).toBe(0xffffffff);
  p.wr('01:00.0', 0x04, 0x0006, 2); // dropped
  p.wr(A, SLTCTL, 0x0100, 2);
  expect(p.cfg('01:00.0', 0)).toBe(0x11001b36);
  expect(p.cfg('01:00.0', 0x04, 2)).toBe(0);
});

test('power and power indicator off eject a present device, on the main bus and on an expander', () => {
  const p = open();
  for (const [port, dev] of [[C, 'ec'], [A, 'ea']] as const) {
    expect(p.m.isPresent(dev)).toBe(true);
    p.wr(port, SLTCTL, 0x0700, 2);
    expect(p.m.isPresent(dev)).toBe(false);
    expect(p.cfg(port, SLTSTA, 2)).toBe(0x0018); // presence gone: changed, and the command completed
  }
});

test('Secondary Bus Reset resets below on its rising edge; an expander port holding it forwards nothing', () => {
  const p = open();
  p.wr('21:00.0', 0x3c, 0x55, 1);
  p.wr(C, 0x3e, 0x40, 2);
  expect(p.cfg('21:00.0', 0)).toBe(0xffffffff);
  p.wr(C, 0x3e, 0, 2);
  expect(p.cfg('21:00.0', 0x3c, 1)).toBe(0);
  p.wr(A, 0x3e, 0x40, 2);
  p.wr('01:00.0', 0x3c, 0x66, 1); // the main bus finds the port's bus by number, even in reset
  p.wr(A, 0x3e, 0x40, 2); // no edge: no reset
  expect(p.cfg('01:00.0', 0x3c, 1)).toBe(0x66);
});

test('on the main bus a port is found by its secondary bus number alone, whatever its subordinate', () => {
  const p = open();
  p.wr(A, 0x18, 0x000100);
  expect(p.cfg('01:00.0', 0)).toBe(0x11001b36);
  p.wr(C, 0x18, 0x202120);
  expect(p.rd('21:00.0', 0).value).toBe(0xffffffffn);
});

test('BAR 0: 4 KiB of MSI-X; the table stores what is written, only whole dwords; holes claim nothing', () => {
  const p = open();
  p.wr(A, 0x10, 0xffffffff);
  expect(p.cfg(A, 0x10)).toBe(0xfffff000);
  p.place(A, 0, 0xe0000000);
  expect(p.mr(0xe000000c).value).toBe(1n); // masked at reset
  p.mw(0xe0000000, 0xffffffff);
  p.mw(0xe000000c, 0xfffffffe);
  expect(p.mr(0xe0000000).value).toBe(0xffffffffn);
  expect(p.mr(0xe000000c).value).toBe(0xfffffffen);
  p.mw(0xe0000004, 0x1122334455667788n, 8); // split into the dwords at 4 and 8
  expect(p.mr(0xe0000008, 8).value).toBe(0xfffffffe11223344n);
  expect(p.mr(0xe000000c, 8).value).toBe(0xfffffffen); // the upper dword is a hole
  expect(p.mr(0xe0000000, 2).value).toBe(0n);
  expect(p.mr(0xe0000100)).toMatchObject({ status: 'ma', value: 0xffffffffn });
  // Two ports' BARs at one address: the later mapping takes the table and PBA; the holes stay nobody's.
  p.place(B, 0, 0xf0000000);
  p.place(A, 0, 0xf0000000);
  expect(p.mr(0xf0000804).to).toMatchObject({ dev: 'a', region: 'bar0', offset: 0x804 });
  expect(p.mr(0xf0000100)).toMatchObject({ status: 'ma', to: { root: 0 } });
  p.place(A, 0, 0xe0000000);
  expect(p.mr(0xf0000804).to).toMatchObject({ dev: 'b', region: 'bar0', offset: 0x804 });
});

test('hot-plug events through MSI-X: masked they pend in the PBA, unmasked they are sent', () => {
  const p = open();
  p.place(A, 0, 0xe0000000);
  p.mw(0xe0000000, 0xfee00000);
  p.mw(0xe0000008, 0x4041);
  p.wr(A, 0x48, 0xc0000000); // MSI-X enabled, function masked
  p.wr(A, SLTCTL, 0x0130, 2); // HPIE | CCIE: the command completes
  expect(p.mr(0xe0000800).value).toBe(1n);
  expect(p.mw(0xe000000c, 0).irqs).toBeUndefined(); // the function is still masked
  expect(p.wr(A, 0x48, 0x80000000).irqs).toEqual([{ space: 0, dev: 'a', kind: 'msix', vector: 0, addr: 0xfee00000, data: 0x4041 }]);
  expect(p.mr(0xe0000800).value).toBe(0n);
});
