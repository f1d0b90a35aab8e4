/** PCI-to-PCI Bridge 1.2: windows (§3.2.5.6–.10), decode (§4), secondary bus reset (§3.2.5.18), INTx swizzle (§9.1). */
import { test, expect } from '@playwright/test';
import { Poke, ep, oneRoot } from '../helpers.ts';
import type { Topology } from '../../harness/topology/types.ts';

const t: Topology = oneRoot([
  {
    id: 'br',
    kind: 'bridge',
    slot: 2,
    fn: 0,
    children: [ep('b', 1, { bars: [{ kind: 'mem32', size: 0x100000 }, { kind: 'io', size: 0x10 }, { kind: 'mem64', size: 0x100000, prefetch: true }] })],
  },
]);

/** Bus numbers 0/1/1 and the child's BARs: mem at m, IO at io, 64-bit at pref. */
function setup(p: Poke, m: number, io: number, pref: number): void {
  p.wr('00:02.0', 0x18, 0x010100);
  p.wr('01:01.0', 0x10, m);
  p.wr('01:01.0', 0x14, io);
  p.wr('01:01.0', 0x18, pref % 2 ** 32);
  p.wr('01:01.0', 0x1c, Math.floor(pref / 2 ** 32));
  p.wr('01:01.0', 0x04, 0x7, 2);
}

test('memory window: [base, limit | 0xFFFFF] in 1 MiB units, only with the bridge decoding memory', () => {
  const p = new Poke(t);
  setup(p, 0xd0100000, 0x4000, 0x10_0000_0000);
  p.wr('00:02.0', 0x20, 0xd010d000); // base 0xd0000000, limit 0xd01fffff
  expect(p.mr(0xd0100000).status).toBe('ma');
  p.wr('00:02.0', 0x04, 0x2, 2);
  expect(p.mr(0xd0100000).to?.dev).toBe('b');
  expect(p.mr(0xd01ffffc).to?.dev).toBe('b'); // the last dword of the window
  p.wr('00:02.0', 0x20, 0xd000d000); // window shrinks to 0xd0000000..0xd00fffff
  expect(p.mr(0xd0100000).status).toBe('ma');
});

test('a window whose limit is below its base is closed', () => {
  const p = new Poke(t);
  setup(p, 0xd0000000, 0x4000, 0x10_0000_0000);
  p.wr('00:02.0', 0x20, 0xcff0d000);
  p.wr('00:02.0', 0x04, 0x2, 2);
  expect(p.mr(0xd0000000).status).toBe('ma');
});

test('IO window in 4 KiB units, with the upper 16 bits of a 32-bit IO bridge', () => {
  const p = new Poke(t);
  setup(p, 0xd0000000, 0x4010, 0x10_0000_0000);
  expect(p.cfg('00:02.0', 0x1c, 1) & 0xf).toBe(1); // 32-bit IO addressing
  p.wr('00:02.0', 0x1c, 0x4141, 2); // 0x4000..0x4fff
  p.wr('00:02.0', 0x04, 0x1, 2);
  expect(p.ior(0x4010).to?.dev).toBe('b');
  p.wr('00:02.0', 0x1c, 0x5151, 2);
  expect(p.ior(0x4010).status).toBe('ma');
});

test('prefetchable window is 64-bit: base and limit have upper dwords', () => {
  const p = new Poke(t);
  setup(p, 0xd0000000, 0x4000, 0x10_0000_0000);
  expect(p.cfg('00:02.0', 0x24, 2) & 0xf).toBe(1);
  p.wr('00:02.0', 0x24, 0x00010001); // 0x..00000000 .. 0x..000fffff
  p.wr('00:02.0', 0x28, 0x10);
  p.wr('00:02.0', 0x2c, 0x10);
  p.wr('00:02.0', 0x04, 0x2, 2);
  expect(p.mr(0x10_0000_0000).to?.dev).toBe('b');
  p.wr('00:02.0', 0x2c, 0x0f);
  expect(p.mr(0x10_0000_0000).status).toBe('ma');
});

test('a BAR only partly inside the window decodes only the inside part', () => {
  const p = new Poke(t);
  setup(p, 0xd0000000, 0x4000, 0x10_0000_0000); // BAR0 is 1 MiB at 0xd0000000
  p.wr('00:02.0', 0x20, 0xd000d000);
  p.wr('00:02.0', 0x04, 0x2, 2);
  expect(p.m.claimants(0, 'memory', 0xd0000000).map((d) => d.fn?.id)).toEqual(['b']);
  expect(p.m.claimants(0, 'memory', 0xd0100000)).toEqual([]);
});

test('secondary bus reset resets the functions below', () => {
  const p = new Poke(t);
  setup(p, 0xd0000000, 0x4000, 0x10_0000_0000);
  expect(p.cfg('01:01.0', 0x04, 2)).toBe(0x7);
  p.wr('00:02.0', 0x3e, 0x40, 2);
  expect(p.cfg('01:01.0', 0x04, 2)).toBe(0);
  expect(p.cfg('01:01.0', 0x10)).toBe(0);
});

test('INTx swizzle: pin A of device 1 on the secondary bus is pin B at the root', () => {
  const p = new Poke(t);
  setup(p, 0xd0000000, 0x4000, 0x10_0000_0000);
  p.wr('00:02.0', 0x20, 0xd000d000);
  p.wr('00:02.0', 0x04, 0x6, 2);
  expect(p.mw(0xd0000004, 0).irqs).toEqual([{ space: 0, dev: 'b', kind: 'intx', pin: 1, level: 1 }]);
});

test('DMA from below a bridge needs the bridge to be a bus master too', () => {
  const p = new Poke(t);
  setup(p, 0xd0000000, 0x4000, 0x10_0000_0000);
  expect(p.apply({ op: 'dma.read', dev: 'b', iova: 0x1000, len: 4 })).toEqual({ status: 'fault', reason: 'bus-master-disabled' });
  p.wr('00:02.0', 0x04, 0x4, 2);
  expect(p.apply({ op: 'dma.read', dev: 'b', iova: 0x1000, len: 4 }).status).toBe('ok');
});

test('bridge registers: bus numbers read-write, window low nibbles read-only', () => {
  const p = new Poke(t);
  p.wr('00:02.0', 0x18, 0xffffffff);
  expect(p.cfg('00:02.0', 0x18)).toBe(0xffffffff);
  p.wr('00:02.0', 0x20, 0xffffffff);
  expect(p.cfg('00:02.0', 0x20)).toBe(0xfff0fff0);
  p.wr('00:02.0', 0x1c, 0xffff, 2);
  expect(p.cfg('00:02.0', 0x1c, 2)).toBe(0xf1f1);
  expect(p.cfg('00:02.0', 0x0e, 1)).toBe(0x01);
  expect(p.cfg('00:02.0', 0x08) >>> 8).toBe(0x060400);
});
