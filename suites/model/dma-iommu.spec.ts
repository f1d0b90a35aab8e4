/**
 * DMA and IOMMU domains: VFIO type-1 v2 map/unmap semantics
 * (include/uapi/linux/vfio.h), permissions, identity without an IOMMU,
 * translation faults as observations.
 */
import { test, expect } from '@playwright/test';
import { Poke, ep, oneRoot } from '../helpers.ts';

const t = oneRoot([ep('a', 3, { domain: 0 }), ep('b', 4)], { iommu: true, domains: 2, ram: 0x100000 });
const bm = (p: Poke, bdf = '00:03.0'): void => void p.wr(bdf, 0x04, 0x4, 2);

test.describe('map', () => {
  for (const [iova, size, gpa, reason] of [
    [0x1001, 0x1000, 0x0, 'align'],
    [0x1000, 0x800, 0x0, 'align'],
    [0x1000, 0x1000, 0x10, 'align'],
    [0x1000, 0, 0x0, 'align'],
  ] as const) {
    test(`iova ${iova.toString(16)} size ${size.toString(16)} gpa ${gpa.toString(16)} is refused: ${reason}`, () => {
      const p = new Poke(t);
      expect(p.apply({ op: 'dma.map', root: 0, domain: 0, iova, size, gpa, perm: 'rw' })).toEqual({ status: 'error', reason });
    });
  }
  test('an overlapping map is refused: exists', () => {
    const p = new Poke(t);
    expect(p.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x1000, size: 0x2000, gpa: 0, perm: 'rw' }).status).toBe('ok');
    expect(p.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x2000, size: 0x1000, gpa: 0, perm: 'rw' })).toEqual({ status: 'error', reason: 'exists' });
    expect(p.apply({ op: 'dma.map', root: 0, domain: 1, iova: 0x2000, size: 0x1000, gpa: 0, perm: 'rw' }).status).toBe('ok');
  });
  test('a domain that does not exist, or a root without IOMMU, is refused', () => {
    expect(new Poke(t).apply({ op: 'dma.map', root: 0, domain: 5, iova: 0, size: 0x1000, gpa: 0, perm: 'rw' })).toEqual({ status: 'error', reason: 'no-domain' });
    expect(new Poke(oneRoot([ep('a', 3)])).apply({ op: 'dma.map', root: 0, domain: 0, iova: 0, size: 0x1000, gpa: 0, perm: 'rw' })).toEqual({ status: 'error', reason: 'no-iommu' });
  });
});

test('unmap must cover whole mappings; unmapping nothing is refused', () => {
  const p = new Poke(t);
  p.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x1000, size: 0x2000, gpa: 0, perm: 'rw' });
  expect(p.apply({ op: 'dma.unmap', root: 0, domain: 0, iova: 0x1000, size: 0x1000 })).toEqual({ status: 'error', reason: 'partial' });
  expect(p.apply({ op: 'dma.unmap', root: 0, domain: 0, iova: 0x8000, size: 0x1000 })).toEqual({ status: 'error', reason: 'not-mapped' });
  expect(p.apply({ op: 'dma.unmap', root: 0, domain: 0, iova: 0x0, size: 0x4000 }).status).toBe('ok');
});

test('translation: permissions, spans across mappings, faults after unmap', () => {
  const p = new Poke(t);
  bm(p);
  p.mw(0x5000, 0x11111111);
  p.mw(0x7000, 0x22222222);
  p.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x10000, size: 0x1000, gpa: 0x4000, perm: 'r' });
  p.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x11000, size: 0x1000, gpa: 0x7000, perm: 'rw' });
  const span = p.apply({ op: 'dma.read', dev: 'a', iova: 0x10ffc, len: 8 });
  expect([...span.data!]).toEqual([0, 0, 0, 0, 0x22, 0x22, 0x22, 0x22]);
  expect(p.apply({ op: 'dma.write', dev: 'a', iova: 0x10000, data: Uint8Array.of(1) })).toEqual({ status: 'fault', reason: 'perm' });
  expect(p.apply({ op: 'dma.write', dev: 'a', iova: 0x11000, data: Uint8Array.of(9) }).status).toBe('ok');
  expect(p.mr(0x7000, 1).value).toBe(9n);
  p.apply({ op: 'dma.unmap', root: 0, domain: 0, iova: 0x10000, size: 0x1000 });
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0x10000, len: 4 })).toEqual({ status: 'fault', reason: 'iova-unmapped' });
});

test('a device attached to no domain faults; attach, detach and their refusals', () => {
  const p = new Poke(t);
  bm(p, '00:04.0');
  expect(p.apply({ op: 'dma.read', dev: 'b', iova: 0, len: 4 })).toEqual({ status: 'fault', reason: 'no-domain' });
  expect(p.apply({ op: 'dma.attach', dev: 'b', domain: 1 }).status).toBe('ok');
  expect(p.apply({ op: 'dma.attach', dev: 'b', domain: 0 })).toEqual({ status: 'error', reason: 'busy' });
  expect(p.apply({ op: 'dma.detach', dev: 'b' }).status).toBe('ok');
  expect(p.apply({ op: 'dma.detach', dev: 'b' })).toEqual({ status: 'error', reason: 'no-domain' });
  expect(p.apply({ op: 'dma.attach', dev: 'nope', domain: 0 })).toEqual({ status: 'error', reason: 'no-device' });
});

test('without an IOMMU DMA is identity-mapped; past the end of RAM it faults', () => {
  const p = new Poke(oneRoot([ep('a', 3)], { ram: 0x100000 }));
  bm(p);
  p.mw(0x3000, 0xdeadbeef);
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0x3000, len: 4 }).data).toEqual(Uint8Array.of(0xef, 0xbe, 0xad, 0xde));
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0xffffe, len: 4 })).toEqual({ status: 'fault', reason: 'no-memory' });
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0x3000, len: 4, pasid: 1 })).toEqual({ status: 'fault', reason: 'no-pasid-support' });
});
