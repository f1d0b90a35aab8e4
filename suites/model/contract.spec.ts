/**
 * The isolation contract: each root owns or shares its memory, IO, DMA,
 * interrupt and PASID spaces, as the topology declares (the domain brief:
 * QEMU's expander buses share memory and IO; one vfio-user server per
 * device isolates everything).
 */
import { test, expect } from '@playwright/test';
import { Poke, ep, root } from '../helpers.ts';
import type { Topology } from '../../harness/topology/types.ts';

const isolated: Topology = { roots: [root([ep('a', 3)]), root([ep('x', 3)])] };
const sharedMemIo: Topology = { roots: [root([ep('a', 3)], { busLimit: 0x1f }), root([ep('x', 4)], { bus: 0x20, busLimit: 0x3f, cf8: undefined, share: { memory: 0, io: 0, config: 0 } })] };

test("isolated roots: the same BAR address in each reaches each root's own device", () => {
  const p = new Poke(isolated);
  p.place('00:03.0', 0, 0xc0000000, 0);
  p.place('00:03.0', 0, 0xc0000000, 1);
  expect(p.mr(0xc0000000, 4, 0).to?.dev).toBe('a');
  expect(p.mr(0xc0000000, 4, 1).to?.dev).toBe('x');
  p.wr('00:03.0', 0x14, 0x1000, 4, 0);
  p.wr('00:03.0', 0x14, 0x1000, 4, 1);
  expect(p.ior(0x1000, 4, 0).to?.dev).toBe('a');
  expect(p.ior(0x1000, 4, 1).to?.dev).toBe('x');
});

test('isolated roots: RAM written through one root is not visible through the other', () => {
  const p = new Poke(isolated);
  p.mw(0x10000, 0xabcd, 4, 0);
  expect(p.mr(0x10000, 4, 1).value).toBe(0n);
  expect(p.mr(0x10000, 4, 0).value).toBe(0xabcdn);
});

test('shared memory and IO: both roots see one space; an overlap is resolved by the later mapping', () => {
  const p = new Poke(sharedMemIo);
  p.place('00:03.0', 0, 0xc0000000, 0);
  expect(p.mr(0xc0000000, 4, 1).to).toEqual({ root: 0, dev: 'a', region: 'bar0', offset: 0 });
  p.place('20:04.0', 0, 0xc0000000, 1);
  expect(p.mr(0xc0000000, 4, 0).to?.dev).toBe('x');
  expect(p.m.claimants(0, 'memory', 0xc0000000).map((d) => d.fn?.id).sort()).toEqual(['a', 'x']);
  p.mw(0x10000, 7, 4, 1);
  expect(p.mr(0x10000, 4, 0).value).toBe(7n);
});

test("DMA lands in the RAM of the device's own root", () => {
  const p = new Poke(isolated);
  p.wr('00:03.0', 0x04, 0x4, 2, 1);
  expect(p.apply({ op: 'dma.write', dev: 'x', iova: 0x20000, data: Uint8Array.of(1, 2, 3, 4) }).to).toEqual({ root: 1, region: 'ram', offset: 0x20000 });
  expect(p.mr(0x20000, 4, 1).value).toBe(0x04030201n);
  expect(p.mr(0x20000, 4, 0).value).toBe(0n);
});

test('interrupts are raised in the interrupt space the contract names', () => {
  const sharedIrq: Topology = { roots: [root([ep('a', 3)]), root([ep('x', 3)], { share: { irq: 0 } })] };
  const p = new Poke(sharedIrq);
  p.place('00:03.0', 0, 0xc0000000, 1);
  expect(p.mw(0xc0000004, 0, 4, 1).irqs?.[0].space).toBe(0);
  const q = new Poke(isolated);
  q.place('00:03.0', 0, 0xc0000000, 1);
  expect(q.mw(0xc0000004, 0, 4, 1).irqs?.[0].space).toBe(1);
});

test('a shared PASID space puts devices of two roots in one namespace', () => {
  const t: Topology = {
    roots: [root([ep('a', 3, { caps: ['pcie', 'pasid'], pasidContext: 0 })], { pasidContexts: 1 }), root([ep('x', 3, { caps: ['pcie', 'pasid'], pasidContext: 0 })], { share: { pasid: 0 } })],
  };
  const p = new Poke(t);
  expect(p.apply({ op: 'pasid.alloc', dev: 'a' }).value).toBe(1n);
  expect(p.apply({ op: 'pasid.alloc', dev: 'x' }).value).toBe(2n);
  expect(p.m.contextKey('x')).toBe('0:0');
});

test('the topology reader rejects contracts that cannot hold', async () => {
  const { parseTopology } = await import('../../harness/topology/validate.ts');
  const where = (path: string): string => `t.json: ${path}`;
  expect(() => parseTopology({ roots: [root([]), root([], { share: { io: 1 } })] }, where)).toThrow(/another root/);
  expect(() => parseTopology({ roots: [root([]), root([], { share: { io: 0 } })] }, where)).toThrow(/CF8\/CFC: root 0 already has them/);
  expect(() => parseTopology({ roots: [root([]), root([], { share: { config: 0 }, cf8: undefined })] }, where)).toThrow(/bus range disjoint/);
  expect(() => parseTopology({ roots: [root([ep('a', 3), ep('a', 4)])] }, where)).toThrow(/unique device id/);
  expect(() => parseTopology({ roots: [root([ep('a', 3, { domain: 0 })])] }, where)).toThrow(/domain index below 0/);
});
