/**
 * Conformance on QEMU: DMA through intel-iommu honours map and unmap.
 * isoroot's VT-d driver writes the tables into guest RAM and programs the
 * IOMMU's registers; edu's DMA then goes through QEMU's translation, and
 * the model says what it must do.
 */
import { expect, test } from '@playwright/test';
import type { Op } from '../../harness/ops/catalog.ts';
import { bdf, cfgW, conform, edu, lines, machine, mr, mw, port, requireQemu, withQemu } from './helpers.ts';

test.beforeEach(() => requireQemu());

const BAR = 0xc0000000;
const iommu = machine([edu('e0', 2, { domain: 0 }), port('p0', 3, edu('e1', 0, { domain: 1 }))], [], { iommu: true, domains: 2 });
const up: Op[] = [cfgW(bdf(0, 2), 0x10, BAR), cfgW(bdf(0, 2), 0x04, 6, 2), mw(0x5000, 0x11223344)];
const read = (dev: string, iova: number, len = 4): Op => ({ op: 'dma.read', dev, iova, len });
const write = (dev: string, iova: number, ...bytes: number[]): Op => ({ op: 'dma.write', dev, iova, data: Uint8Array.from(bytes) });
const map = (domain: number, iova: number, gpa: number, perm: 'r' | 'w' | 'rw', size = 0x1000): Op => ({ op: 'dma.map', root: 0, domain, iova, size, gpa, perm });
const unmap = (domain: number, iova: number, size = 0x1000): Op => ({ op: 'dma.unmap', root: 0, domain, iova, size });

test('a DMA faults until its IOVA is mapped, reads through the mapping, honours permissions, and faults again after unmap', async () => {
  await withQemu(async (q) => {
    const r = await conform(q, iommu, [
      ...up,
      read('e0', 0x1000),
      map(0, 0x1000, 0x5000, 'r'),
      read('e0', 0x1000),
      write('e0', 0x1000, 1, 2),
      unmap(0, 0x1000),
      // A stale IOTLB entry would still translate: the driver invalidated, QEMU must fault.
      read('e0', 0x1000),
    ]);
    expect(r.failure).toBeUndefined();
    expect(lines(r.violations)).toEqual([]);
    expect(r.steps[3].obs.status).toBe('fault');
    expect(r.steps[5].obs.data).toEqual(Uint8Array.of(0x44, 0x33, 0x22, 0x11));
    expect(r.steps[6].obs.status).toBe('fault');
    expect(r.steps[8].obs.status).toBe('fault');
  });
});

test('detach leaves the device without a domain; attach to another domain uses its mappings, RAM beyond the topology reads as nothing', async () => {
  await withQemu(async (q) => {
    const r = await conform(q, iommu, [
      ...up,
      { op: 'dma.detach', dev: 'e0' },
      read('e0', 0x1000),
      { op: 'dma.attach', dev: 'e0', domain: 1 },
      map(1, 0x3000, 0x6000, 'rw', 0x2000),
      write('e0', 0x3ffe, 9, 8, 7, 6),
      mr(0x6ffe, 2),
      mr(0x7000, 2),
      map(1, 0x10000, 0x2000000, 'rw'),
      read('e0', 0x10000, 8),
      // The mapping rules refuse an overlap and a partial unmap, as the model's do.
      map(1, 0x3000, 0x6000, 'rw'),
      unmap(1, 0x3000),
      { op: 'dma.attach', dev: 'e0', domain: 0 },
    ]);
    expect(lines(r.violations)).toEqual([]);
    expect(r.steps[4].obs).toMatchObject({ status: 'fault', reason: 'no-domain' });
    expect(r.steps[8].obs.value).toBe(0x0809n);
    expect(r.steps[9].obs.value).toBe(0x0607n);
    expect(r.steps[11].obs.data).toEqual(new Uint8Array(8));
    expect(r.steps[12].obs).toMatchObject({ status: 'error', reason: 'exists' });
    expect(r.steps[13].obs).toMatchObject({ status: 'error', reason: 'partial' });
    expect(r.steps[14].obs).toMatchObject({ status: 'error', reason: 'busy' });
  });
});

test('domains are isolated: a device below a root port translates through its own domain, also after its bus number changes', async () => {
  await withQemu(async (q) => {
    const r = await conform(q, iommu, [
      ...up,
      map(0, 0x8000, 0x5000, 'rw'),
      cfgW(bdf(0, 3), 0x18, 0x010100),
      cfgW(bdf(0, 3), 0x20, 0xd000d000),
      cfgW(bdf(0, 3), 0x04, 6, 2),
      cfgW(bdf(1, 0), 0x10, 0xd0000000),
      cfgW(bdf(1, 0), 0x04, 6, 2),
      // e1 is in domain 1, where 0x8000 is not mapped: the mapping of domain 0 must not serve it.
      read('e1', 0x8000),
      map(1, 0x8000, 0x5000, 'r'),
      read('e1', 0x8000),
      // Renumbered: its requester ID changes, its domain does not.
      cfgW(bdf(0, 3), 0x18, 0x020200),
      cfgW(bdf(2, 0), 0x04, 6, 2),
      read('e1', 0x8000),
    ]);
    expect(lines(r.violations)).toEqual([]);
    expect(r.steps[9].obs.status).toBe('fault');
    expect(r.steps[11].obs.data).toEqual(Uint8Array.of(0x44, 0x33, 0x22, 0x11));
    expect(r.steps[14].obs.data).toEqual(Uint8Array.of(0x44, 0x33, 0x22, 0x11));
  });
});
