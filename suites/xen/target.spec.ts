/**
 * Conformance of Xen's vPCI through `--target xen-vpci` (hwdom mode): the
 * operations run on Xen's own code as the hardware domain's vCPU, and the
 * model judges every observation (with the target's profile,
 * harness/profiles/xen-vpci-hwdom.json). Each test asserts the values and
 * interrupts themselves, and that the oracles find nothing. BAR sizing and
 * placement, PCI segments with their own config spaces and one memory,
 * decode off unmapping, BAR writes while mapped, MSI-X table and PBA
 * trapped inside a mapped BAR, MSI and MSI-X messages as Xen's vPCI holds
 * them, a map preempted in the middle, and a campaign through the CLI.
 * Without a Xen tree or gcc: a failure in CI, a loud skip elsewhere.
 */
import { expect, test } from '@playwright/test';
import { openXenTarget, type XenOptions, type XenTarget } from '../../harness/adapters/xen/target.ts';
import { describeGuestMode, xenTree } from './xen-tree.ts';
import { execute } from '../../harness/run/execute.ts';
import { checkRun, judgeOf, violations } from '../../harness/run/check.ts';
import { createFunction } from '../../harness/model/personalities/index.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import type { Irq, Observation } from '../../harness/ops/observation.ts';
import type { DeviceSpec, Topology } from '../../harness/topology/types.ts';
import { isoroot } from '../cli-run.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BUILD_TIMEOUT = 300_000;
test.beforeEach(() => test.setTimeout(BUILD_TIMEOUT + 120_000));

async function withXen<T>(body: (x: XenTarget) => Promise<T>, o: XenOptions = {}): Promise<T> {
  xenTree();
  const x = await openXenTarget(o);
  try {
    return await body(x);
  } finally {
    await x.dispose();
  }
}

/** Runs ops on Xen and judges them with the model and the target's profile. */
async function conform(x: XenTarget, t: Topology, ops: readonly Op[]) {
  const topology = x.prepare!(t);
  const ex = await execute(x, topology, ops);
  return { ...ex, violations: violations(checkRun(topology, judgeOf(x), ex.steps, ex.failure, ops)).map((f) => `${f.signature} at op #${f.index}: ${f.message}`) };
}

const ep = (id: string, slot: number, extra: Partial<DeviceSpec> = {}): DeviceSpec => ({ id, kind: 'endpoint', slot, fn: 0, ...extra });
const one = (devices: DeviceSpec[], more: DeviceSpec[][] = []): Topology => ({ roots: [{ bus: 0, busLimit: 0xff, devices }, ...more.map((d) => ({ bus: 0, busLimit: 0xff, devices: d }))] });
const bdf = (dev: number, fn = 0): number => (dev << 3) | fn;
const cfgR = (b: number, reg: number, size = 4, root = 0, via: 'ecam' | 'cf8' = 'ecam'): Op => ({ op: 'cfg.read', root, via, bdf: b, reg, size });
const cfgW = (b: number, reg: number, value: number, size = 4, root = 0, via: 'ecam' | 'cf8' = 'ecam'): Op => ({ op: 'cfg.write', root, via, bdf: b, reg, size, value: BigInt(value >>> 0) });
const mr = (addr: number, size = 4, root = 0): Op => ({ op: 'mmio.read', root, addr, size });
const mw = (addr: number, value: number, size = 4, root = 0): Op => ({ op: 'mmio.write', root, addr, size, value: BigInt(value >>> 0) });
const values = (steps: readonly { obs: Observation }[]): (string | null)[] => steps.map((s) => (s.obs.value === undefined ? null : `0x${s.obs.value.toString(16)}`));
const irqsAt = (steps: readonly { obs: Observation }[]): Record<number, Irq[]> => Object.fromEntries(steps.flatMap((s, i) => (s.obs.irqs === undefined ? [] : [[i, s.obs.irqs]])));
/** The model endpoint's identity dword at offset 0 of a BAR. */
const identity = (uid: number, region: number): string => `0x${((0x15000000 | (uid << 8) | region) >>> 0).toString(16)}`;

const BAR = 0xc000_0000;
const BAR64 = 0x8_0000_0000;

test('BAR sizing and placement: each kind reads back its size mask, is placed where written, and decodes there once Command enables it', async () => {
  await withXen(async (x) => {
    const t = one([ep('e', 1, { bars: [{ kind: 'mem32', size: 0x4000 }, { kind: 'io', size: 0x20 }, { kind: 'mem64', size: 0x100000, prefetch: true }], rom: 0x800 })]);
    const d = bdf(1);
    const ops: Op[] = [
      cfgW(d, 0x10, 0xffffffff), cfgR(d, 0x10), // 1: mem32 16 KiB
      cfgW(d, 0x14, 0xffffffff), cfgR(d, 0x14), // 3: io 32 bytes
      cfgW(d, 0x18, 0xffffffff), cfgW(d, 0x1c, 0xffffffff), cfgR(d, 0x18), cfgR(d, 0x1c), // 6, 7: mem64 1 MiB prefetchable
      cfgW(d, 0x30, 0xfffffffe), cfgR(d, 0x30), // 9: ROM 2 KiB
      cfgW(d, 0x10, BAR), cfgW(d, 0x14, 0x1000), cfgW(d, 0x18, 0), cfgW(d, 0x1c, BAR64 / 2 ** 32), cfgW(d, 0x30, BAR + 0x10000 + 1),
      cfgW(d, 0x04, 0x3, 2), // IO and memory decode
      mr(BAR), mr(BAR + 0x10), mr(BAR64), mr(BAR + 0x10000), // 16..19
      { op: 'pio.read', root: 0, port: 0x1000, size: 4 }, // 20
    ];
    const r = await conform(x, t, ops);
    expect(r.violations).toEqual([]);
    const v = values(r.steps);
    expect([v[1], v[3], v[6], v[7], v[9]]).toEqual(['0xffffc000', '0xffffffe1', '0xfff0000c', '0xffffffff', '0xfffff800']);
    // uid 1: the first device in walk order, as the model numbers them.
    // The ROM's first dword: 0x55 0xaa, then (uid * 7 + offset) & 0xff (personalities/endpoint.ts).
    expect([v[16], v[17], v[18], v[19], v[20]]).toEqual([identity(1, 0), '0x0', identity(1, 2), '0xa09aa55', identity(1, 1)]);
  });
});

test('PCI segments: each root has its own config space (one BDF, two devices), one memory that both reach, and CF8 only on segment 0', async () => {
  await withXen(async (x) => {
    const t = one([ep('a', 1, { bars: [{ kind: 'mem32', size: 0x1000 }] })], [[ep('b', 1, { bars: [{ kind: 'mem32', size: 0x1000 }] })]]);
    const d = bdf(1);
    const ops: Op[] = [
      cfgW(d, 0x10, BAR, 4, 0), cfgW(d, 0x04, 0x2, 2, 0),
      cfgW(d, 0x10, BAR + 0x1000, 4, 1), cfgW(d, 0x04, 0x2, 2, 1),
      cfgR(d, 0x10, 4, 0), cfgR(d, 0x10, 4, 1), // 4, 5: the same BDF, each segment's own
      mr(BAR, 4, 1), mr(BAR + 0x1000, 4, 0), // 6, 7: either root reaches either BAR (one memory)
      cfgR(d, 0x10, 4, 0, 'cf8'), cfgR(d, 0x10, 4, 1, 'cf8'), // 8: segment 0; 9: no CF8 on segment 1
    ];
    const r = await conform(x, t, ops);
    expect(r.violations).toEqual([]);
    const v = values(r.steps);
    expect(v.slice(4, 9)).toEqual([`0x${BAR.toString(16)}`, `0x${(BAR + 0x1000).toString(16)}`, identity(1, 0), identity(2, 0), `0x${BAR.toString(16)}`]);
    expect(r.steps[9].obs).toMatchObject({ status: 'error', reason: 'no-cf8' });
  });
});

test('memory decode off unmaps the BARs; a BAR write while mapped is dropped (the profile), one under RAM is taken and mapped when decode turns on again', async () => {
  await withXen(async (x) => {
    const t = one([ep('e', 1, { bars: [{ kind: 'mem32', size: 0x1000 }] }), ep('f', 2, { bars: [{ kind: 'mem32', size: 0x1000 }] })]);
    const d = bdf(1);
    const f = bdf(2);
    const ops: Op[] = [
      cfgW(d, 0x10, BAR), cfgW(d, 0x04, 0x2, 2),
      mr(BAR), // 2: decodes
      cfgW(d, 0x10, BAR + 0x8000), cfgR(d, 0x10), mr(BAR), // 3..5: ignored while mapped: still at BAR
      cfgW(d, 0x04, 0x0, 2), mr(BAR), // 6, 7: decode off: unmapped
      cfgW(f, 0x04, 0x2, 2), // 8: f decodes at 0, under RAM: not mapped
      cfgW(f, 0x10, BAR + 0x4000), cfgR(f, 0x10), mr(BAR + 0x4000), // 9..11: taken, not mapped yet
      cfgW(f, 0x04, 0x0, 2), cfgW(f, 0x04, 0x2, 2), mr(BAR + 0x4000), // 12..14: mapped now
    ];
    const r = await conform(x, t, ops);
    expect(r.violations).toEqual([]);
    const v = values(r.steps);
    expect([v[2], v[4], v[5], v[7], v[10], v[11], v[14]]).toEqual([identity(1, 0), `0x${BAR.toString(16)}`, identity(1, 0), '0xffffffff', `0x${(BAR + 0x4000).toString(16)}`, '0xffffffff', identity(2, 0)]);
    expect(r.steps[7].obs.evidence?.events?.join()).toContain('unmapped');
  });
});

test("MSI-X: the table and PBA inside a mapped BAR are vPCI's; a doorbell sends its entry's message as Xen holds it, a masked one sets its PBA bit and goes out when unmasked", async () => {
  await withXen(async (x) => {
    const spec = ep('e', 1, { bars: [{ kind: 'mem32', size: 0x4000 }], caps: ['msix'], msixVectors: 8 });
    const t = one([spec]);
    const cap = createFunction(spec, 0, 1, false).caps.msix!;
    const d = bdf(1);
    const entry = (v: number): number => BAR + cap.table + 16 * v;
    const ops: Op[] = [
      cfgW(d, 0x10, BAR), cfgW(d, 0x04, 0x6, 2), // memory decode, bus master
      mw(entry(3), 0xfee01000), mw(entry(3) + 4, 0), mw(entry(3) + 8, 0x4133), mw(entry(3) + 12, 0), // 2..5: entry 3, unmasked
      mr(entry(3) + 8), // 6: read back through vPCI
      cfgW(d, cap.off + 2, 0x8000, 2), // 7: MSI-X enable
      mw(BAR + 4, 3), // 8: doorbell 3: the message
      mw(entry(3) + 12, 1), mw(BAR + 4, 3), mr(BAR + cap.pba), // 9..11: masked: pending
      mw(entry(3) + 12, 0), // 12: unmasked: the pending message goes out
      mr(BAR + cap.pba), // 13: no longer pending
    ];
    const r = await conform(x, t, ops);
    expect(r.violations).toEqual([]);
    const msg: Irq = { space: 0, dev: 'e', kind: 'msix', vector: 3, addr: 0xfee01000, data: 0x4133 };
    expect(irqsAt(r.steps)).toEqual({ 8: [msg], 12: [msg] });
    const v = values(r.steps);
    expect([v[6], v[11], v[13]]).toEqual(['0x4133', '0x8', '0x0']);
  });
});

test('MSI: a doorbell sends the message Xen holds for the vector (data with the vector in its low bits); a masked vector is pending and goes out when unmasked', async () => {
  await withXen(async (x) => {
    const spec = ep('e', 1, { bars: [{ kind: 'mem32', size: 0x1000 }], caps: ['msi'], msiVectors: 4 });
    const t = one([spec]);
    const msi = createFunction(spec, 0, 1, false).caps.msi!;
    const d = bdf(1);
    const ops: Op[] = [
      cfgW(d, 0x10, BAR), cfgW(d, 0x04, 0x6, 2),
      cfgW(d, msi.off + 4, 0xfee02000), cfgW(d, msi.off + 8, 0), cfgW(d, msi.data, 0x4140, 2),
      cfgW(d, msi.off + 2, 0x0021, 2), // 5: enable, 4 vectors (MME 2)
      mw(BAR + 4, 2), // 6: vector 2
      cfgW(d, msi.mask, 0x4), mw(BAR + 4, 2), cfgR(d, msi.pending), // 7..9: masked: pending bit 2
      cfgW(d, msi.mask, 0x0), // 10: unmasked: sent
      cfgR(d, msi.pending), // 11
    ];
    const r = await conform(x, t, ops);
    expect(r.violations).toEqual([]);
    const msg: Irq = { space: 0, dev: 'e', kind: 'msi', vector: 2, addr: 0xfee02000, data: 0x4142 };
    expect(irqsAt(r.steps)).toEqual({ 6: [msg], 10: [msg] });
    const v = values(r.steps);
    expect([v[9], v[11]]).toEqual(['0x4', '0x0']);
  });
});

test('a map preempted after every page (partial p2m progress, preemption on every check) ends with the whole BAR reachable, as the model says', async () => {
  await withXen(
    async (x) => {
      const t = one([ep('e', 1, { bars: [{ kind: 'mem64', size: 0x200000 }] })]);
      const d = bdf(1);
      const ops: Op[] = [cfgW(d, 0x10, 0), cfgW(d, 0x14, BAR64 / 2 ** 32), cfgW(d, 0x04, 0x2, 2), mr(BAR64), mr(BAR64 + 0x1ff000), cfgW(d, 0x04, 0, 2), mr(BAR64 + 0x1ff000)];
      const r = await conform(x, t, ops);
      expect(r.violations).toEqual([]);
      expect(values(r.steps).slice(3)).toEqual([identity(1, 0), '0x0', null, '0xffffffff']);
    },
    { knobs: { p2m_partial: 1, preempt_every: 1 } },
  );
});

test('isoroot fuzz --target xen-vpci: a campaign runs, judged with the profile, and reports only what corpora/xen does not already know', async () => {
  await withXen(async () => {
    const out = mkdtempSync(join(tmpdir(), 'isoroot-xen-fuzz-'));
    try {
      const r = isoroot('fuzz', '--target', 'xen-vpci', '--runs', '150', '--workers', '1', '--seed', '7', '--out', join(out, 'run'));
      expect(r.out).toContain('fuzzing xen-vpci');
      expect(r.out).toMatch(/150 sequences, \d+ operations/);
      expect(r.code, r.out + r.err).toBe(0);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

test("ioreq servers as emulators: claims and releases follow Xen's rangesets (the profile's emulator.overlap and emulator.unmap-partial) with nothing to report; a config access to a registered BDF is vPCI's, which the reference model calls a misroute (emulator.routing)", async () => {
  await withXen(async (x) => {
    const t: Topology = { ...one([ep('a', 1, { bars: [{ kind: 'mem32', size: 0x1000 }] })]), emulators: ['qemu', 'dm1'] };
    const X0 = 0x2000_0000;
    const emu = (op: 'emu.map-range' | 'emu.unmap-range', emulator: string, start: number, size: number, space: 'mmio' | 'pio' = 'mmio'): Op => ({ op, root: 0, emulator, space, start, size });
    const ops: Op[] = [
      emu('emu.map-range', 'qemu', X0, 0x2000), // 0
      emu('emu.map-range', 'qemu', X0 + 0x1000, 0x1000), // 1: its own claim: busy
      emu('emu.map-range', 'dm1', X0 + 0x1000, 0x2000), // 2: another's: taken, dm1 (the newer) receives
      emu('emu.unmap-range', 'dm1', X0 + 0x2000, 0x800), // 3: part of dm1's claim
      emu('emu.unmap-range', 'dm1', X0 + 0x2000, 0x800), // 4: gone already
      emu('emu.map-range', 'qemu', X0 + 0x8000, 0), // 5: empty: Xen's -EINVAL
      emu('emu.map-range', 'qemu', 0xfff0, 0x20, 'pio'), // 6: past port 0xffff: the device model would not ask
      { op: 'emu.unmap-bdf', root: 0, emulator: 'qemu', bdf: bdf(1) }, // 7: not registered
      mr(X0 + 0x1800), mr(X0 + 0x2800), // 8, 9: claimed, unmapped: the device model hosts nothing there
      { op: 'emu.map-bdf', root: 0, emulator: 'qemu', bdf: bdf(1) }, // 10
      { op: 'emu.map-bdf', root: 0, emulator: 'dm1', bdf: bdf(1) }, // 11: both may register it
    ];
    const r = await conform(x, t, ops);
    expect(r.violations).toEqual([]);
    expect(r.steps.slice(0, 8).map((s) => s.obs.reason ?? s.obs.status)).toEqual(['ok', 'busy', 'ok', 'ok', 'not-registered', 'align', 'unsupported', 'not-registered']);
    expect(r.steps[6].obs.source, "a port past 0xffff is the session's answer, not Xen's").toBe('harness');
    expect(values(r.steps).slice(8, 10)).toEqual(['0xffffffff', '0xffffffff']);
    expect(r.steps[8].obs.evidence?.events?.[0]).toContain('ioreq server 1');
    expect(r.steps.slice(10).map((s) => s.obs.status)).toEqual(['ok', 'ok']);
    // The device's IDs through CF8 though the BDF is registered: vPCI answers, and the agent names the server passed over.
    const misroute = await conform(x, t, [{ op: 'emu.map-bdf', root: 0, emulator: 'qemu', bdf: bdf(1) }, cfgR(bdf(1), 0, 4, 0, 'cf8')]);
    expect(values(misroute.steps)[1]).toBe('0x11001b36');
    expect(misroute.steps[1].obs.evidence?.events?.[0]).toContain('ioreq server 0 registered the SBDF');
    expect(misroute.violations.join('\n')).toContain('every configuration, memory or IO access reaches exactly one handler');
  });
});

test("corpora/xen replays on Xen: each entry is still Xen's behaviour, recognised as known by default and reported with its rule under --known none", async () => {
  await withXen(async () => {
    const traces = ['bar-sizing-value-wraps-rangeset', 'msi-address-keeps-low-bits', 'ioreq-bdf-passed-over-for-vpci'].map((n) => join(import.meta.dirname, '..', '..', 'corpora', 'xen', `${n}.jsonl`));
    const known = isoroot('check', '--target', 'xen-vpci', ...traces);
    expect(known.code, known.out + known.err).toBe(0);
    expect(known.out).toContain('known: bar-sizing-value-wraps-rangeset (open, recognised by its quirk)');
    expect(known.out).toContain('known: msi-address-keeps-low-bits (open, recognised by its quirk)');
    expect(known.out).toContain('known: ioreq-bdf-passed-over-for-vpci (known-divergence, recognised by its quirk)');
    const bare = isoroot('check', '--target', 'xen-vpci', '--known', 'none', ...traces);
    expect(bare.code).toBe(1);
    expect(bare.out).toContain("Assertion 's <= e' failed at xen/common/rangeset.c");
    expect(bare.out).toContain('rests on: cap.msi: PCI 3.0 §6.8.1');
  });
});

// ---- guest mode (Xen 4.21 and later) -------------------------------------------------------------

/** A guest-mode target (the suite defines these tests only where a 4.21 or later tree is configured: guest-tree.ts). */
async function withGuestXen<T>(body: (x: XenTarget) => Promise<T>): Promise<T> {
  const x = await openXenTarget({ mode: 'guest' });
  try {
    return await body(x);
  } finally {
    await x.dispose();
  }
}

describeGuestMode('guest mode (Xen 4.21 and later)', () => {
  test('two guests place BARs at the same guest address: each reaches its own device, the other guest sees nothing of it, as the isolation contract says', async () => {
    await withGuestXen(async (x) => {
      const dev = (id: string): DeviceSpec => ep(id, 0, { bars: [{ kind: 'mem32', size: 0x1000 }] });
      const t = one([dev('a')], [[dev('b')]]);
      const ops: Op[] = [cfgW(0, 0x10, BAR, 4, 0), cfgW(0, 0x04, 0x2, 2, 0), cfgW(0, 0x10, BAR, 4, 1), cfgW(0, 0x04, 0x2, 2, 1), mr(BAR, 4, 0), mr(BAR, 4, 1), mw(BAR + 0x10, 0x1234, 4, 0), mr(BAR + 0x10, 4, 1)];
      const r = await conform(x, t, ops);
      expect(r.violations).toEqual([]);
      expect(values(r.steps).slice(4)).toEqual([identity(1, 0), identity(2, 0), null, '0x0']);
    });
  });

  test("a guest's view: identity registers read all ones, Command takes no IO, the BARs start at 0, and a device alone at slot 3 answers there", async () => {
    await withGuestXen(async (x) => {
      const t = one([ep('e', 3, { bars: [{ kind: 'mem32', size: 0x4000 }], caps: ['msi', 'msix'], msixVectors: 8 })]);
      const d = bdf(3);
      const ops: Op[] = [cfgR(d, 0x00), cfgR(d, 0x08), cfgR(d, 0x10), cfgW(d, 0x04, 0x7, 2), cfgR(d, 0x04, 2), cfgR(d, 0x34, 1), cfgR(bdf(0), 0x00)];
      const r = await conform(x, t, ops);
      expect(r.violations).toEqual([]);
      expect(values(r.steps)).toEqual(['0xffffffff', '0xffffffff', '0x0', null, '0x6', values(r.steps)[5], '0xffffffff']);
      expect(values(r.steps)[5]).not.toBe('0xff');
    });
  });

  test('hot-plug in a guest: unplugged, a device answers nothing at its number; plugged again it takes its own slot though the slots below are free, its BARs at 0, and decodes where the guest puts it', async () => {
    await withGuestXen(async (x) => {
      const dev = (id: string, slot: number): DeviceSpec => ep(id, slot, { bars: [{ kind: 'mem32', size: 0x1000 }] });
      const t = one([dev('a', 0), dev('e', 2)]);
      const e = bdf(2);
      const ops: Op[] = [
        { op: 'dev.unplug', dev: 'a' },
        { op: 'dev.unplug', dev: 'e' },
        cfgR(e, 0x04, 2),
        { op: 'dev.unplug', dev: 'e' },
        { op: 'dev.plug', dev: 'e' },
        { op: 'dev.plug', dev: 'e' },
        cfgR(e, 0x10),
        cfgR(e, 0x04, 2),
        cfgW(e, 0x10, BAR),
        cfgW(e, 0x04, 0x2, 2),
        mr(BAR),
        cfgR(bdf(0), 0x04, 2),
      ];
      const r = await conform(x, t, ops);
      expect(r.violations).toEqual([]);
      expect(values(r.steps)).toEqual([null, null, '0xffff', null, null, null, '0x0', '0x0', null, null, identity(2, 0), '0xffff']);
      // What the toolstack refuses (unplugging an absent device, plugging a present one) is the session's answer, not Xen's.
      expect([r.steps[3].obs, r.steps[5].obs]).toEqual([
        { status: 'error', reason: 'not-present', source: 'harness' },
        { status: 'error', reason: 'present', source: 'harness' },
      ]);
      expect(r.steps[4].obs.evidence?.events?.[0]).toContain('virtual 0000:00:02.0');
    });
  });

  test("a guest's root reset is its reboot: its RAM is zeros (the profile's root-reset.ram), its BARs at 0 and unmapped, its device models' claims gone, an unplugged device still out and the others back at their own slots; the other guest keeps its RAM", async () => {
    await withGuestXen(async (x) => {
      const dev = (id: string, slot: number): DeviceSpec => ep(id, slot, { bars: [{ kind: 'mem32', size: 0x1000 }] });
      const t: Topology = { ...one([dev('a', 0), dev('e', 2)], [[dev('b', 0)]]), emulators: ['qemu'] };
      const e = bdf(2);
      const claim = (op: 'emu.map-range' | 'emu.unmap-range'): Op => ({ op, root: 0, emulator: 'qemu', space: 'mmio', start: 0x2000_0000, size: 0x1000 });
      const ops: Op[] = [
        mw(0x1000, 0x1234, 4, 0), mw(0x1000, 0x5678, 4, 1),
        cfgW(e, 0x10, BAR), cfgW(e, 0x04, 0x2, 2), mr(BAR), // 4: e decodes
        claim('emu.map-range'),
        { op: 'dev.unplug', dev: 'a' },
        { op: 'root.reset', root: 0 }, // 7
        mr(0x1000, 4, 0), mr(0x1000, 4, 1), // 8, 9
        cfgR(e, 0x10), cfgR(e, 0x04, 2), mr(BAR), // 10-12
        claim('emu.unmap-range'), // 13: the claim went with the old domain
        cfgR(bdf(0), 0x04, 2), // 14: a is still unplugged
        cfgW(e, 0x10, BAR + 0x1000), cfgW(e, 0x04, 0x2, 2), mr(BAR + 0x1000), // 17: e decodes at its new place
      ];
      const r = await conform(x, t, ops);
      expect(r.violations).toEqual([]);
      const v = values(r.steps);
      expect(v[4]).toBe(identity(2, 0));
      expect(v.slice(8, 13)).toEqual(['0x0', '0x5678', '0x0', '0x0', '0xffffffff']);
      expect(r.steps[13].obs).toMatchObject({ status: 'error', reason: 'not-registered' });
      expect(v[14]).toBe('0xffff');
      expect(v[17]).toBe(identity(2, 0));
      expect(r.steps[7].obs.evidence?.events?.join(' ')).toContain('e: XEN_DOMCTL_assign_device = 0; virtual 0000:00:02.0');
    });
  });

  test('corpora/xen guest entries replay on Xen and are recognised as known: the 26th hot-plug cycle of a guest\'s only MSI-X device crashes the guest (an I/O handler slot per cycle)', async () => {
    await withGuestXen(async () => {
      const trace = join(import.meta.dirname, '..', '..', 'corpora', 'xen', 'msix-reassign-takes-io-handler-slot.jsonl');
      const known = isoroot('check', '--target', 'xen-vpci:guest', trace);
      expect(known.code, known.out + known.err).toBe(0);
      expect(known.out).toContain('known: msix-reassign-takes-io-handler-slot (open');
      const bare = isoroot('check', '--target', 'xen-vpci:guest', '--known', 'none', trace);
      expect(bare.code).toBe(1);
      expect(bare.out).toContain('crashed by domain_crash() at xen/arch/x86/hvm/intercept.c:259');
    });
  });

  test("MSI-X in a guest: the message is the one Xen's vPCI holds for the guest's table entry", async () => {
    await withGuestXen(async (x) => {
      const spec = ep('e', 0, { bars: [{ kind: 'mem32', size: 0x4000 }], caps: ['msix'], msixVectors: 4 });
      const cap = createFunction(spec, 0, 1, false).caps.msix!;
      const entry = (v: number): number => BAR + cap.table + 16 * v;
      const ops: Op[] = [cfgW(0, 0x10, BAR), cfgW(0, 0x04, 0x6, 2), mw(entry(1), 0xfee00000), mw(entry(1) + 8, 0x51), mw(entry(1) + 12, 0), cfgW(0, cap.off + 2, 0x8000, 2), mw(BAR + 4, 1)];
      const r = await conform(x, one([spec]), ops);
      expect(r.violations).toEqual([]);
      expect(irqsAt(r.steps)).toEqual({ 6: [{ space: 0, dev: 'e', kind: 'msix', vector: 1, addr: 0xfee00000, data: 0x51 }] });
    });
  });
});
