/**
 * Configuration access decoding per root: ECAM (PCIe Base §7.2.2), CF8/CFC
 * (PCI 3.0 §3.2.2.3.2), type 1 forwarding through bridges (PCI-to-PCI
 * Bridge 1.2 §3.1.2.1) and roots that share one config space.
 */
import { test, expect } from '@playwright/test';
import { B, Poke, ep, oneRoot, root } from '../helpers.ts';
import { opProblem } from '../../harness/ops/codec.ts';
import type { Topology } from '../../harness/topology/types.ts';

const bridged: Topology = oneRoot([
  ep('a', 3),
  { id: 'br', kind: 'bridge', slot: 4, fn: 0, children: [ep('b', 1), { id: 'br2', kind: 'bridge', slot: 2, fn: 0, children: [ep('c', 0)] }] },
  { id: 'rp', kind: 'root-port', slot: 5, fn: 0, children: [ep('d', 0)] },
]);

test('ECAM: base + (bus << 20 | device << 15 | function << 12 | register)', () => {
  const p = new Poke(bridged);
  const viaCfg = p.rd('00:03.0', 0x02, 2);
  const viaMmio = p.mr(0xb0000000 + (3 << 15) + 0x02, 2);
  expect(viaMmio).toEqual(viaCfg);
  expect(viaCfg.value).toBe(0x1100n);
});

test('ECAM: an 8-byte access is two dword config accesses', () => {
  const p = new Poke(bridged);
  expect(p.mr(0xb0000000 + (3 << 15), 8).value).toBe(BigInt(p.cfg('00:03.0', 0)) | (BigInt(p.cfg('00:03.0', 4)) << 32n));
});

test('CF8/CFC: a dword at 0xCF8 latches the address; 0xCFC..0xCFF reach its bytes', () => {
  const p = new Poke(bridged);
  p.iow(0xcf8, 0x80000000 | (3 << 11));
  expect(p.ior(0xcfc, 4).value).toBe(0x11001b36n);
  expect(p.ior(0xcfe, 2).value).toBe(0x1100n);
  expect(p.ior(0xcfd, 1).value).toBe(0x1bn);
  expect(p.ior(0xcf8, 4).to).toEqual({ root: 0, region: 'cf8' });
});

test('CF8: bits 1:0 and 30:24 read as zero', () => {
  const p = new Poke(bridged);
  p.iow(0xcf8, 0xffffffff);
  expect(p.ior(0xcf8).value).toBe(0x80fffffcn);
});

test('CF8: byte or word accesses to 0xCF8 pass through as ordinary IO', () => {
  const p = new Poke(bridged);
  expect(p.ior(0xcf8, 1)).toEqual({ status: 'ma', value: 0xffn, to: { root: 0 } });
});

test('CFC with the enable bit clear passes through as ordinary IO', () => {
  const p = new Poke(bridged);
  p.iow(0xcf8, 3 << 11);
  expect(p.ior(0xcfc).status).toBe('ma');
});

test('the operation schema refuses CF8 accesses above 0xff and misaligned registers', () => {
  expect(opProblem({ op: 'cfg.read', root: 0, via: 'cf8', bdf: 0, reg: 0x100, size: 4 })).toMatch(/0x00..0xff/);
  expect(opProblem({ op: 'cfg.read', root: 0, via: 'ecam', bdf: 0, reg: 0x2, size: 4 })).toMatch(/aligned/);
  expect(opProblem({ op: 'cfg.read', root: 0, via: 'ecam', bdf: 0, reg: 0x100, size: 4 })).toBeNull();
});

test('type 1 forwarding: nothing below a bridge answers until its bus numbers are set', () => {
  const p = new Poke(bridged);
  expect(p.rd('01:01.0', 0).status).toBe('ur');
  p.wr('00:04.0', 0x18, 0x020100); // primary 0, secondary 1, subordinate 2
  expect(p.cfg('01:01.0', 0)).toBe(0x11001b36);
  expect(p.rd('01:02.0', 0).to?.dev).toBe('br2');
  // br2's secondary is not set: the type 1 request on conventional bus 1 finds no taker.
  expect(p.rd('02:00.0', 0).status).toBe('ma');
  p.wr('01:02.0', 0x18, 0x020201);
  expect(p.rd('02:00.0', 0).to?.dev).toBe('c');
  expect(p.rd('03:00.0', 0).status).toBe('ur'); // beyond subordinate
});

test('an absent device on a conventional bridge master-aborts; below a root port it is UR', () => {
  const p = new Poke(bridged);
  p.wr('00:04.0', 0x18, 0x020100);
  expect(p.rd('01:07.0', 0).status).toBe('ma');
  p.wr('00:05.0', 0x18, 0x030300);
  expect(p.rd('03:00.0', 0).to?.dev).toBe('d');
  // PCIe Base §7.3.1: a link carries device 0 only.
  expect(p.rd('03:01.0', 0).status).toBe('ur');
});

test('roots that share a config space split its buses; isolated roots do not see each other', () => {
  const shared: Topology = { roots: [root([ep('a', 3)], { bus: 0, busLimit: 0x1f }), root([ep('x', 3)], { bus: 0x20, busLimit: 0x3f, cf8: undefined, share: { config: 0 } })] };
  const p = new Poke(shared);
  expect(p.rd('20:03.0', 0, 4, 0).to).toEqual({ root: 1, dev: 'x', region: 'cfg', offset: 0 });
  expect(p.rd('20:03.0', 0, 4, 1).to).toEqual({ root: 1, dev: 'x', region: 'cfg', offset: 0 });
  const iso: Topology = { roots: [root([ep('a', 3)]), root([ep('x', 3)], { bus: 0x20 })] };
  const q = new Poke(iso);
  expect(q.rd('20:03.0', 0, 4, 0).status).toBe('ur');
  expect(q.rd('20:03.0', 0, 4, 1).to?.dev).toBe('x');
  expect(q.rd('00:03.0', 0, 4, 1).status).toBe('ur');
});

test('a root without ECAM or without CF8 refuses that mechanism', () => {
  const p = new Poke(oneRoot([ep('a', 3)], { ecam: null }));
  expect(p.rd('00:03.0', 0, 4, 0, 'ecam')).toEqual({ status: 'error', reason: 'no-ecam' });
  const q = new Poke(oneRoot([ep('a', 3)], { cf8: false }));
  expect(q.rd('00:03.0', 0, 4, 0, 'cf8')).toEqual({ status: 'error', reason: 'no-cf8' });
});

test('B() parses BDFs the way lspci prints them', () => {
  expect(B('1f:1f.7')).toBe((0x1f << 8) | (0x1f << 3) | 7);
});
