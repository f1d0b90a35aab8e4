/**
 * Conformance of QEMU 11's iommu-testdev (hw/misc/iommu-testdev.c) against
 * the model: its registers, its trigger, its writes without Bus Master,
 * page by page; and, under intel-iommu's scalable mode, DMA with no
 * harness transfer around it, so that what intel-iommu cached stays
 * cached and a stale translation VT-d §6.5 allows can be seen.
 */
import { expect, test } from '@playwright/test';
import { probeQemu } from '../../harness/adapters/qemu/binary.ts';
import { qemuBuild } from '../../harness/adapters/qemu/build.ts';
import { PLATFORMS } from '../../harness/adapters/qemu/platform.ts';
import { ITD, ITD_RESULT, itdPattern } from '../../harness/model/personalities/iommu-testdev.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import type { DeviceSpec } from '../../harness/topology/types.ts';
import { missing, requireProgram } from '../require.ts';
import { bdf, cfgR, cfgW, conform, lines, machine, mr, mw, port, withQemu } from './helpers.ts';
import { QEMU11 } from './qemu11.ts';

test.beforeEach(() => {
  requireProgram(QEMU11, 'scripts/install-qemu-backports.sh installs QEMU 11');
  if (!qemuBuild(probeQemu(QEMU11), PLATFORMS.q35).iommuTestdev) missing(`${QEMU11} has no iommu-testdev (QEMU 11 has)`);
});

const MIB = 2 ** 20;
const itd = (id: string, slot: number, extra: Partial<DeviceSpec> = {}): DeviceSpec => ({ id, kind: 'iommu-testdev', slot, fn: 0, ...extra });
const B = 0xc0000000;
const PATTERN2 = 0x1234567812345678n;
const write = (dev: string, iova: number, len = 4): Op => ({ op: 'dma.write', dev, iova, data: itdPattern(len) });
/** IOVA, length, read-back address, doorbell, trigger, RESULT. */
const trigger = (iova: number, len: number, back: number, arm = true): Op[] => [mw(B + ITD.iovaLo, iova), mw(B + ITD.len, len), mw(B + ITD.gpaLo, back), ...(arm ? [mw(B + ITD.doorbell, 1)] : []), mr(B + ITD.trigger), mr(B + ITD.result)];

test('identity, registers, the trigger and its refusals, and writes without Bus Master agree with the model', async () => {
  const ops: Op[] = [
    cfgR(bdf(0, 2), 0),
    cfgR(bdf(0, 2), 8),
    cfgW(bdf(0, 2), 0x10, B),
    cfgW(bdf(0, 2), 0x04, 2, 2), // Memory Space only
    mr(B + ITD.result),
    mr(B + ITD.result, 2),
    mr(B + ITD.result, 8),
    ...trigger(0x3000, 0x10, 0x3000, false), // 7: not armed
    ...trigger(0x3000, 0, 0x3000), // 12: no length
    ...trigger(0x3000, 0x10, 0x3000), // 18: lands, read back equal
    mr(0x3000, 8),
    ...trigger(8 * MIB - 8, 0x10, 0), // 25: across the end of the topology's RAM (QEMU's harness RAM is there)
    mr(8 * MIB - 8, 8),
    write('i0', 0x5000, 8),
    mr(0x5000, 8),
    write('i0', 0xfeb00000, 16), // nobody there
  ];
  await withQemu(
    async (q) => {
      const r = await conform(q, machine([itd('i0', 2)], [], { ram: 8 * MIB }), ops);
      expect(r.failure).toBeUndefined();
      expect(lines(r.violations)).toEqual([]);
      const obs = r.steps.map((s) => s.obs);
      expect(obs[0].value).toBe(0x00051b36n);
      expect(obs[1].value).toBe(0x00ff0000n);
      expect(obs[4].value).toBe(BigInt(ITD_RESULT.idle));
      expect(obs[5].value).toBe(0n);
      expect(obs[6].value).toBe(BigInt(ITD_RESULT.idle));
      expect(obs[11].value).toBe(BigInt(ITD_RESULT.notArmed));
      expect(obs[17].value).toBe(BigInt(ITD_RESULT.badLen));
      expect(obs[23].value).toBe(0n);
      expect(obs[24].value).toBe(PATTERN2);
      expect(obs[30].value).toBe(BigInt(ITD_RESULT.mismatch));
      expect(obs[31].value).toBe(PATTERN2);
      expect(obs[32]).toMatchObject({ status: 'ok' });
      expect(obs[33].value).toBe(PATTERN2);
      expect(obs[34]).toMatchObject({ status: 'fault', reason: 'no-memory' });
    },
    { qemu: QEMU11 },
  );
});

test('a length above 64 KiB is refused by the harness, as the model predicts; QEMU keeps the length it had', async () => {
  await withQemu(
    async (q) => {
      const r = await conform(q, machine([itd('i0', 2)]), [cfgW(bdf(0, 2), 0x10, B), cfgW(bdf(0, 2), 0x04, 2, 2), mw(B + ITD.len, 0x10000), mw(B + ITD.len, 0x10001), mw(B + 8, 0x7fffffffn << 32n, 8), mr(B + ITD.len)]);
      expect(lines(r.violations)).toEqual([]);
      expect(r.steps[3].obs).toMatchObject({ status: 'error', reason: 'unsupported', source: 'harness' });
      expect(r.steps[4].obs).toMatchObject({ status: 'error', reason: 'unsupported', source: 'harness' });
      expect(r.steps[5].obs.value).toBe(0x10000n);
    },
    { qemu: QEMU11 },
  );
});

for (const stage of ['first', 'second'] as const) {
  test(`${stage}-stage tables: two testdevs share a PASID table, one behind a root port of an expander has its own; a transfer across an unmapped page lands in the mapped one; a cached translation VT-d allows is taken`, async () => {
    const t = machine([itd('i0', 2, { domain: 0, pasidContext: 0 }), itd('i1', 3, { domain: 0, pasidContext: 0 })], [{ bus: 0x20, devices: [port('p3', 0, itd('i2', 0, { domain: 1, pasidContext: 1 }))] }], { iommu: true, scalable: stage, domains: 2, pasidContexts: 2 });
    const up: Op[] = [
      ...[2, 3].flatMap((slot, i) => [cfgW(bdf(0, slot), 0x10, B + i * 0x100000), cfgW(bdf(0, slot), 0x04, 2, 2)]),
      cfgW(bdf(0x20, 0), 0x18, 0x212120),
      cfgW(bdf(0x20, 0), 0x20, 0xd000d000),
      cfgW(bdf(0x20, 0), 0x04, 6, 2),
      cfgW(bdf(0x21, 0), 0x10, 0xd0000000),
      cfgW(bdf(0x21, 0), 0x04, 2, 2),
      { op: 'dma.map', root: 0, domain: 0, iova: 0x10000, size: 0x1000, gpa: 0x100000, perm: 'rw' },
      { op: 'dma.map', root: 0, domain: 1, iova: 0x10000, size: 0x1000, gpa: 0x200000, perm: 'rw' },
    ];
    const ops: Op[] = [
      ...up,
      write('i0', 0x10000), // 0
      mr(0x100000),
      write('i2', 0x10008), // 2: the other context's domain
      mr(0x200008),
      write('i0', 0x10ffc, 8), // 4: the second page is not mapped
      mr(0x100ffc),
      mr(0x101000),
      // 7: i1's first DMA writes its context entry, which flushes intel-iommu's caches; from here on they stay.
      write('i1', 0x10100),
      { op: 'pasid.unbind', dev: 'i0', pasid: 0, clear: 'present' }, // 8: no invalidation yet
      write('i1', 0x10010), // 9: i1 shares the table
      mr(0x100010),
    ];
    await withQemu(
      async (q) => {
        const r = await conform(q, t, ops);
        expect(r.failure).toBeUndefined();
        expect(lines(r.violations)).toEqual([]);
        const at = (i: number) => r.steps[up.length + i].obs;
        expect(at(0)).toMatchObject({ status: 'ok' });
        expect(at(1).value).toBe(0x12345678n);
        expect(at(3).value).toBe(0x12345678n);
        expect(at(4).status).toBe('fault');
        expect(at(5).value).toBe(0x12345678n);
        expect(at(6).value).toBe(0n);
        // The entry is gone but not yet invalidated: the old translation is allowed (choice translation.stale), and QEMU gives it.
        expect(at(7)).toMatchObject({ status: 'ok' });
        expect(at(9)).toMatchObject({ status: 'ok' });
        expect(at(10).value).toBe(0x12345678n);
      },
      { qemu: QEMU11 },
    );
  });
}
