/**
 * Conformance on QEMU: hot-plug and unplug at root ports leave no mapping
 * behind. QEMU's own flat views are taken after every op and held against
 * the model's maps (the maps oracle), and each op's observation against
 * the model's prediction.
 */
import { expect, test } from '@playwright/test';
import { join } from 'node:path';
import { readTrace } from '../../harness/trace/reader.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import type { Observation } from '../../harness/ops/observation.ts';
import { bdf, cfgR, cfgW, conform, edu, lines, machine, mr, mw, port, requireQemu, withQemu } from './helpers.ts';

test.beforeEach(() => requireQemu());

const EDU_ID = 0x11e81234n;
const SLOT = 0x54 + 0x18; // pcie-root-port's Slot Control, Slot Status above it
const plug = (dev: string): Op => ({ op: 'dev.plug', dev });
const unplug = (dev: string): Op => ({ op: 'dev.unplug', dev });
/**
 * A root port at `p` with its secondary bus `sec`, a memory window at
 * `base` (1 MiB), decoding on, and its empty slot powered (power indicator
 * on, attention indicator off) as an OS leaves a slot it waits on.
 */
const openPort = (p: number, sec: number, base: number): Op[] => [
  cfgW(p, 0x18, (p >> 8) | (sec << 8) | (sec << 16)),
  cfgW(p, 0x20, ((base >>> 16) | (base & 0xfff00000)) >>> 0),
  cfgW(p, 0x04, 6, 2),
  cfgW(p, SLOT, 0x01c0, 2),
];
/** Root port p0 at 00:03.0 with an empty slot that edu e1 (01:00.0 once the port has bus 1) can be plugged into. */
const t = machine([port('p0', 3, edu('e1', 0, { present: false }))]);
const p0 = bdf(0, 3);
const e1 = bdf(1, 0);
const owners = (o: Observation | undefined): string[] => [...(o?.evidence?.maps?.memory ?? []), ...(o?.evidence?.maps?.io ?? [])].flatMap((s) => (s.owner === undefined ? [] : [s.owner]));

test('a device plugged into a root port decodes; unplugged, it answers nothing and QEMU maps nothing of it; plugged again, it starts unprogrammed', async () => {
  await withQemu(
    async (q) => {
      const r = await conform(q, t, [
        ...openPort(p0, 1, 0xd0000000),
        cfgR(e1, 0),
        plug('e1'),
        cfgR(e1, 0),
        cfgW(e1, 0x10, 0xd0000000),
        cfgW(e1, 0x04, 6, 2),
        mr(0xd0000000),
        cfgR(p0, SLOT),
        unplug('e1'),
        cfgR(p0, SLOT),
        cfgR(e1, 0),
        unplug('e1'),
        plug('e1'),
        cfgR(e1, 0x10),
        cfgR(e1, 0x04, 2),
      ]);
      expect(r.failure).toBeUndefined();
      expect(lines(r.violations)).toEqual([]);
      const obs = r.steps.map((s) => s.obs);
      expect(obs[4].value).toBe(0xffffffffn);
      expect(obs[6].value).toBe(EDU_ID);
      expect(obs[9].value).toBe(0x010000edn);
      expect(owners(obs[9])).toContain('e1');
      // Plugged: presence and the latched Presence Detect Changed and Attention Button Pressed.
      expect(Number(obs[10].value! >> 16n) & 0x49).toBe(0x49);
      expect(owners(obs[11])).not.toContain('e1');
      // Removed: presence gone, Presence Detect Changed latched, Slot Control as it was.
      expect(Number(obs[12].value! >> 16n) & 0x48).toBe(0x08);
      expect(obs[12].value! & 0xffffn).toBe(obs[10].value! & 0xffffn);
      expect(obs[13].value).toBe(0xffffffffn);
      expect(obs[14]).toMatchObject({ status: 'error', reason: 'not-present' });
      expect(obs[16].value).toBe(0n);
      expect(obs[17].value).toBe(0n);
      expect(owners(obs[17])).not.toContain('e1');
    },
    { mtreeEvery: 1 },
  );
});

test('an eject the sequence does itself through Slot Control is followed: the device is gone for DMA and unplug, and plugs again', async () => {
  await withQemu(
    async (q) => {
      const r = await conform(q, t, [
        ...openPort(p0, 1, 0xd0000000),
        plug('e1'),
        cfgW(e1, 0x10, 0xd0000000),
        cfgW(e1, 0x04, 6, 2),
        // Power controller off, power indicator off: the OS's eject (PCIe Base §6.7.1.8).
        cfgW(p0, SLOT, 0x07c0, 2),
        { op: 'dma.read', dev: 'e1', iova: 0x1000, len: 4 },
        unplug('e1'),
        plug('e1'),
        cfgR(e1, 0),
      ]);
      expect(r.failure).toBeUndefined();
      expect(lines(r.violations)).toEqual([]);
      const obs = r.steps.map((s) => s.obs);
      expect(owners(obs[6])).toContain('e1');
      expect(owners(obs[7])).not.toContain('e1');
      expect(obs[8]).toMatchObject({ status: 'error', reason: 'not-present' });
      expect(obs[9]).toMatchObject({ status: 'error', reason: 'not-present' });
      expect(obs[10].status).toBe('ok');
      // Plugged into a slot that is powered off: it reads all ones until the slot is powered.
      expect(obs[11].value).toBe(0xffffffffn);
    },
    { mtreeEvery: 1 },
  );
});

test('a slot held by its electromechanical interlock refuses a plug until released', async () => {
  await withQemu(async (q) => {
    const r = await conform(q, t, [cfgW(p0, SLOT, 0x0fc0, 2), plug('e1'), cfgR(p0, SLOT), cfgW(p0, SLOT, 0x0fc0, 2), plug('e1'), cfgR(bdf(1, 0), 0)]);
    expect(lines(r.violations)).toEqual([]);
    expect(r.steps[1].obs).toMatchObject({ status: 'error', reason: 'busy' });
    expect(Number(r.steps[2].obs.value! >> 16n) & 0x80).toBe(0x80);
    expect(r.steps[4].obs.status).toBe('ok');
  });
});

test('on an expander root behind intel-iommu, a replugged device translates through its own domain again', async () => {
  const t = machine([edu('e0', 2)], [{ bus: 0x20, devices: [port('p2', 0, edu('e2', 0, { present: false, domain: 1 }))] }], { iommu: true, domains: 2 });
  const p2 = bdf(0x20, 0);
  const e2 = bdf(0x21, 0);
  const up: Op[] = [cfgW(e2, 0x10, 0xd0000000), cfgW(e2, 0x04, 6, 2)];
  const read: Op = { op: 'dma.read', dev: 'e2', iova: 0x1000, len: 4 };
  await withQemu(
    async (q) => {
      const r = await conform(q, t, [
        ...openPort(p2, 0x21, 0xd0000000),
        mw(0x5000, 0x11223344),
        { op: 'dma.map', root: 0, domain: 1, iova: 0x1000, size: 0x1000, gpa: 0x5000, perm: 'r' },
        plug('e2'),
        ...up,
        read,
        unplug('e2'),
        read,
        plug('e2'),
        ...up,
        read,
      ]);
      expect(r.failure).toBeUndefined();
      expect(lines(r.violations)).toEqual([]);
      const obs = r.steps.map((s) => s.obs);
      expect(obs[9].data).toEqual(Uint8Array.of(0x44, 0x33, 0x22, 0x11));
      expect(obs[11]).toMatchObject({ status: 'error', reason: 'not-present' });
      expect(obs[15].data).toEqual(Uint8Array.of(0x44, 0x33, 0x22, 0x11));
    },
    { mtreeEvery: 1 },
  );
});

test('a QEMU whose devices were plugged or removed is not reused: the next sequence starts from the topology again', async () => {
  await withQemu(async (q) => {
    const first = await conform(q, t, [plug('e1')]);
    expect(first.steps[0].obs.status).toBe('ok');
    const second = await conform(q, t, [cfgR(bdf(0, 3), SLOT), plug('e1')]);
    expect(lines(second.violations)).toEqual([]);
    expect(second.steps[1].obs.status).toBe('ok');
    expect(q.stats.starts).toBe(2);
  });
});

test('an eject written straight into ECAM, or through CONFIG_DATA, is followed too', async () => {
  const ecamSlot = 0xb0000000 + p0 * 0x1000 + SLOT; // q35's ECAM (PCIEXBAR) at 0xb0000000
  await withQemu(async (q) => {
    const r = await conform(q, t, [
      ...openPort(p0, 1, 0xd0000000),
      plug('e1'),
      mw(ecamSlot, 0x07c0, 2),
      unplug('e1'),
      cfgW(p0, SLOT, 0x01c0, 2),
      plug('e1'),
      { op: 'pio.write', root: 0, port: 0xcf8, size: 4, value: BigInt((0x80000000 | (p0 << 8) | SLOT) >>> 0) },
      { op: 'pio.write', root: 0, port: 0xcfc, size: 2, value: 0x07c0n },
      unplug('e1'),
    ]);
    expect(r.failure).toBeUndefined();
    expect(lines(r.violations)).toEqual([]);
    expect(r.steps[6].obs).toMatchObject({ status: 'error', reason: 'not-present' });
    expect(r.steps[8].obs.status).toBe('ok');
    expect(r.steps[11].obs).toMatchObject({ status: 'error', reason: 'not-present' });
  });
});

test("a plug QEMU warns about (\"Interrupt Mask set, irq is not generated\") still plugs, and is observed so (a campaign's 12-op trace)", async () => {
  const trace = await readTrace(join(import.meta.dirname, 'traces', 'plug-with-a-warning.jsonl'));
  await withQemu(async (q) => {
    const r = await conform(q, trace.header.topology, trace.steps.map((s) => s.op));
    expect(lines(r.violations)).toEqual([]);
    expect(r.steps[11].obs.status).toBe('ok');
  });
});
