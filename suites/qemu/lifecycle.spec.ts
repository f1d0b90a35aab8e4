/**
 * The QEMU target's lifecycle: a reused QEMU answers as a fresh one does;
 * a hung or dead QEMU is a hang or crash finding and is killed; and no
 * QEMU outlives isoroot, whichever way it ends (normal exit, input error,
 * SIGINT, SIGTERM).
 */
import { expect, test } from '@playwright/test';
import fc from 'fast-check';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constraintsFor } from '../../generators/constraints.ts';
import { sequenceArb } from '../../generators/sequence.ts';
import { topologyArb } from '../../generators/topology.ts';
import { execute } from '../../harness/run/execute.ts';
import { writeTrace } from '../../harness/trace/writer.ts';
import type { Observation } from '../../harness/ops/observation.ts';
import { bdf, cfgR, cfgW, edu, machine, mr, port, requireQemu, SUITE_QEMU_ARGS, testdev, withQemu } from './helpers.ts';

test.beforeEach(() => requireQemu());

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'isoroot.mjs');

/** Observations without evidence (QEMU's maps are compared by the maps oracle, not here). */
const plain = (os: readonly Observation[]): Observation[] => os.map(({ evidence: _, ...o }) => o);

test('a QEMU reused through a reset answers every sequence exactly as a fresh QEMU does', async () => {
  const probe = await withQemu(async (q) => constraintsFor(q));
  const topologies = fc.sample(topologyArb(probe), { seed: 21, numRuns: 3 });
  await withQemu(async (reused) => {
    await withQemu(async (fresh) => {
      for (const [i, t] of topologies.entries()) {
        const [a, b] = fc.sample(sequenceArb(t, probe), { seed: 500 + i, numRuns: 2 });
        await execute(reused, t, a);
        const again = await execute(reused, t, b);
        const once = await execute(fresh, t, b);
        expect(again.failure?.kind, `topology ${i}`).toBe(once.failure?.kind);
        expect(plain(again.steps.map((s) => s.obs)), `topology ${i}`).toEqual(plain(once.steps.map((s) => s.obs)));
      }
      // Not vacuous: the reused target did reset, and the fresh one never did.
      expect(reused.stats.resets).toBeGreaterThan(0);
      expect(fresh.stats.resets).toBe(0);
    }, { reuse: false });
  });
});

test('config bytes that no reset handler restores are fresh again on a reused QEMU', async () => {
  // QEMU makes the bytes after the header writable and its reset leaves them (pci_init_wmask, pci_do_device_reset):
  // pci-testdev's 0x40-0xff, edu's after its MSI capability, a root port's AER severity, and a pci-testdev behind that port.
  const kept: [number, number][] = [
    [bdf(0, 1), 0x44],
    [bdf(0, 1), 0xfc],
    [bdf(0, 2), 0x80],
    [bdf(0, 3), 0x10c],
    [bdf(1, 0), 0x44],
  ];
  // The port forwards bus 1 (its bus numbers go with the machine reset; the kept bytes below it must not stay).
  // Through ECAM: CONFIG_ADDRESS names no register past 0x100.
  const buses = cfgW(bdf(0, 3), 0x18, 0x010100);
  const dirty = kept.map(([b, reg]) => cfgW(b, reg, 0xa5a5a5a5));
  const look = kept.map(([b, reg]) => cfgR(b, reg));
  await withQemu(async (reused) => {
    await withQemu(async (fresh) => {
      const t = reused.prepare!(machine([testdev('td', 1), edu('edu', 2), port('rp', 3, testdev('tdb', 0))]));
      const wrote = await execute(reused, t, [buses, ...dirty, ...look]);
      const again = await execute(reused, t, [buses, ...look]);
      const once = await execute(fresh, t, [buses, ...look]);
      const values = (r: typeof once): (bigint | undefined)[] => r.steps.slice(-look.length).map((s) => s.obs.value);
      // Not vacuous: every write stuck within the sequence that made it.
      for (const [i, v] of values(wrote).entries()) expect(v, `register ${i}`).not.toBe(values(once)[i]);
      expect(plain(again.steps.map((s) => s.obs))).toEqual(plain(once.steps.map((s) => s.obs)));
      expect(reused.stats.resets).toBeGreaterThan(0);
    }, { reuse: false });
  });
});

test('QEMU that stops answering is a hang finding, and is killed', async () => {
  await withQemu(
    async (q) => {
      const t = q.prepare!(machine([edu('e0', 2)]));
      const s = await q.open(t);
      const pid = q.pid!;
      process.kill(pid, 'SIGSTOP');
      const r = await s.run([cfgW(bdf(0, 2), 0x10, 0xc0000000), mr(0xc0000000)]);
      expect(r.failure?.kind).toBe('hang');
      expect(r.failure?.index).toBe(0);
      expect(r.failure?.message).toMatch(/did not answer/);
      expect(q.pid).toBeUndefined();
      expect(spawnSync('kill', ['-0', String(pid)]).status).not.toBe(0);
    },
    { timeoutMs: 400 },
  );
});

test('QEMU killed under a session is a crash finding; the next session starts a new QEMU', async () => {
  await withQemu(async (q) => {
    const t = q.prepare!(machine([edu('e0', 2)]));
    const s = await q.open(t);
    process.kill(q.pid!, 'SIGKILL');
    const r = await s.run([mr(0)]);
    expect(r.failure?.kind).toBe('crash');
    expect(r.failure?.message).toMatch(/killed by SIGKILL|went away/);
    const again = await (await q.open(t)).run([mr(0)]);
    expect(again.failure).toBeUndefined();
    expect(q.stats.starts).toBe(2);
  });
});

/** QEMU processes whose sockets live under `dir` (each test gives isoroot its own TMPDIR). */
const qemusUnder = (dir: string): string[] =>
  spawnSync('pgrep', ['-f', `qemu-system-x86_64.*${dir}`], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.trim() !== '');

async function whileRunning(args: string[], signal: NodeJS.Signals | null): Promise<{ code: number | null; dir: string; seen: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-life-'));
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, TMPDIR: dir }, stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let seen = 0;
  for (let i = 0; i < 300 && seen === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    seen = qemusUnder(dir).length;
  }
  if (signal !== null) child.kill(signal);
  const code = await exited;
  // The group kill is immediate; give the kernel a moment to reap.
  for (let i = 0; i < 300 && qemusUnder(dir).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  return { code, dir, seen };
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`no QEMU survives ${signal} to a running campaign`, async () => {
    const r = await whileRunning(['fuzz', '--target', 'qemu', ...SUITE_QEMU_ARGS, '--runs', '100000', '--workers', '2', '--seed', '3', '--out', join(tmpdir(), `isoroot-life-run-${signal}-${process.pid}`)], signal);
    expect(r.seen).toBeGreaterThan(0);
    expect(r.code).not.toBe(0);
    expect(qemusUnder(r.dir)).toEqual([]);
  });
}

test('no QEMU survives a normal end, nor an input error found while QEMU runs', async () => {
  const done = await whileRunning(['fuzz', '--target', 'qemu', ...SUITE_QEMU_ARGS, '--runs', '6', '--workers', '1', '--seed', '3', '--out', join(tmpdir(), `isoroot-life-run-ok-${process.pid}`)], null);
  expect(done.seen).toBeGreaterThan(0);
  expect(qemusUnder(done.dir)).toEqual([]);

  // A trace whose tail is malformed: isoroot has started QEMU when it reads the bad line.
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-life-trace-'));
  const file = join(dir, 'bad.jsonl');
  await withQemu(async (q) => {
    const t = q.prepare!(machine([edu('e0', 2)]));
    const header = { format: 'isoroot-trace', version: 1, topology: t, target: { name: 'qemu', version: '7.2', observes: q.capabilities.observes }, seed: null, isoroot: '0.1.0', time: new Date().toISOString() } as const;
    writeTrace(file, header, Array.from({ length: 5000 }, () => ({ op: mr(0x1000) })));
  });
  writeFileSync(file, '{"op": "mmio.read", "root": 0}\n', { flag: 'a' });
  const bad = await whileRunning(['check', file, '--target', 'qemu', ...SUITE_QEMU_ARGS], null);
  expect(bad.code).toBe(2);
  expect(qemusUnder(bad.dir)).toEqual([]);
});
