/**
 * How the suite's QEMU runs (build.ts): with the qtest accelerator where
 * the binary has it (QEMU 11), virtual time moved only by clock_step; else
 * (Debian's 7.2) TCG with its CPUs stopped (-S), the VM run while an edu
 * transfer is in flight. Both are looked at on the live process: its
 * command line (/proc), QMP's run state, and qtest's clock.
 */
import { expect, test } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { probeQemu } from '../../harness/adapters/qemu/binary.ts';
import { EDU_DMA_NS } from '../../harness/adapters/qemu/dma.ts';
import type { QemuTarget } from '../../harness/adapters/qemu/target.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import { SUITE_QEMU, bdf, cfgW, conform, edu, lines, machine, mr, mw, requireQemu, withQemu } from './helpers.ts';

test.beforeEach(() => requireQemu());

const BAR = 0xc0000000;
const one = machine([edu('e0', 2)]);
const up: Op[] = [cfgW(bdf(0, 2), 0x10, BAR), cfgW(bdf(0, 2), 0x04, 6, 2)];
const T = 5_000;

/** The accelerator the suite's QEMU must have where its version decides: none in Debian's 7.2, qtest from 11 on; on 8 to 10 it is the build's choice (a module Debian may leave out), checked against the binary instead. */
function expectedAccel(version: string): 'qtest' | 'tcg' | null {
  if (version.startsWith('7.2.')) return 'tcg';
  return Number(version.split('.')[0]) >= 11 ? 'qtest' : null;
}

/** The live QEMU's arguments, as the kernel has them (through the backports wrapper, QEMU keeps the PID it was started with). */
const cmdline = (q: QemuTarget): string[] => readFileSync(`/proc/${q.pid}/cmdline`, 'utf8').split('\0');
const hasPair = (args: string[], a: string, b: string): boolean => args.some((x, i) => x === a && args[i + 1] === b);
const runState = async (q: QemuTarget): Promise<string> => ((await q.process!.qmp.execute('query-status', undefined, T)) as { status: string }).status;

/**
 * What the binary itself says when asked for the qtest accelerator, read apart
 * from the probe: the QMP greeting, or QEMU's own refusal ("invalid accelerator").
 */
function startsWithQtestAccel(path: string): boolean {
  const r = spawnSync(path, ['-accel', 'qtest', '-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', 'stdio'], { input: '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n', encoding: 'utf8', timeout: 60_000 });
  if ((r.stdout ?? '').includes('"QMP"')) return true;
  expect(r.stderr, `${path} neither started with -accel qtest nor refused it`).toMatch(/invalid accelerator qtest|accelerator.*qtest.*not/i);
  return false;
}

test("QEMU 11 runs with the qtest accelerator, Debian's 7.2 with TCG and -S: as probed, as started, and as the trace header says", async () => {
  const bin = probeQemu(SUITE_QEMU);
  // On every version the probe agrees with the binary; where the version decides (7.2 as Debian ships it, 11 on), it is what that version has.
  expect(bin.qtestAccel).toBe(startsWithQtestAccel(bin.path));
  const want = expectedAccel(bin.version);
  if (want !== null) expect(bin.qtestAccel).toBe(want === 'qtest');
  await withQemu(async (q) => {
    expect(q.build.accel).toBe(bin.qtestAccel ? 'qtest' : 'tcg');
    expect(q.info.version).toBe(`${bin.version}, ${bin.qtestAccel ? 'accel qtest' : 'accel tcg -S'}`);
    const r = await conform(q, one, [...up, mr(BAR)]);
    expect(r.failure).toBeUndefined();
    expect(r.steps[2].obs.value).toBe(0x010000edn);
    const args = cmdline(q);
    if (q.build.accel === 'qtest') {
      expect(hasPair(args, '-accel', 'qtest')).toBe(true);
      expect(args).not.toContain('-S');
      expect(args).not.toContain('-icount');
      expect(((await q.process!.qmp.execute('query-accelerators', undefined, T)) as { enabled: string }).enabled).toBe('qtest');
      // Running, though no CPU executes: virtual time's timers fire on clock_step only in a running VM.
      expect(await runState(q)).toBe('running');
    } else {
      expect(hasPair(args, '-accel', 'tcg')).toBe(true);
      expect(args).toContain('-S');
      expect(hasPair(args, '-icount', 'shift=0,sleep=off')).toBe(true);
      expect(await runState(q)).toBe('prelaunch');
    }
  });
});

test("edu's DMA completes by clock_step under the qtest accelerator (one 100 ms step per transfer), by running the VM under TCG", async () => {
  await withQemu(async (q) => {
    const ops: Op[] = [...up, mw(0x100000, 0x11223344), { op: 'dma.read', dev: 'e0', iova: 0x100000, len: 4 }, { op: 'dma.write', dev: 'e0', iova: 0x200010, data: Uint8Array.of(9, 8, 7, 6, 5) }, mr(0x200010, 8)];
    const r = await conform(q, one, ops);
    expect(r.failure).toBeUndefined();
    expect(lines(r.violations)).toEqual([]);
    expect(r.steps[3].obs.data).toEqual(Uint8Array.of(0x44, 0x33, 0x22, 0x11));
    expect(r.steps[5].obs.value).toBe(0x506070809n);
    if (q.build.accel === 'qtest') {
      // Four transfers (each DMA op moves the data through the harness's scratch): exactly 400 ms of virtual time, stepped.
      expect(await q.process!.qtest.call(['clock_step 1'], T)).toEqual([`OK ${4 * EDU_DMA_NS + 1}`]);
      expect(await runState(q)).toBe('running');
    } else {
      // No qtest clock: virtual time moved while the VM ran, and the VM is stopped again.
      await expect(q.process!.qtest.call(['clock_step 1'], T)).rejects.toThrow(/Unknown command/);
      expect(await runState(q)).toBe('paused');
    }
    // A reused process (edu scrubbed by DMA, on the same clock) answers the same.
    const again = await conform(q, one, ops);
    expect(lines(again.violations)).toEqual([]);
    expect(again.steps.map((s) => s.obs)).toEqual(r.steps.map((s) => s.obs));
    expect(q.stats).toMatchObject({ starts: 1, resets: 1, fallbacks: 0 });
  });
});
