/**
 * Conformance on QEMU: configuration space. Header and BAR semantics of
 * every device of a machine with an expander root, config routing to the
 * expander roots, and ECAM against CF8/CFC. Each test runs on real QEMU
 * and is checked by the model: any divergence fails it.
 */
import { expect, test } from '@playwright/test';
import type { Op } from '../../harness/ops/catalog.ts';
import { walkDevices } from '../../harness/topology/types.ts';
import { bdf, cfgR, cfgW, conform, edu, lines, machine, port, requireQemu, testdev, withQemu } from './helpers.ts';

test.beforeEach(() => requireQemu());

// Root 0: edu, pci-testdev, a root port with an edu; expander root 0x20: a root port with a pci-testdev.
const topology = machine([edu('e0', 2), testdev('t0', 3), port('p0', 4, edu('e1', 0))], [{ bus: 0x20, devices: [port('p1', 1, testdev('t1', 0))] }]);
/** Bus numbers for both ports, so that the devices below them answer. */
const buses: Op[] = [cfgW(bdf(0, 4), 0x18, 0x010100), cfgW(bdf(0x20, 1), 0x18, 0x212120)];
const below = [bdf(1, 0), bdf(0x21, 0)];

test('every register of every function reads as the model says, through ECAM', async () => {
  await withQemu(async (q) => {
    const t = q.prepare!(topology);
    const fns = [...walkDevices(t)].filter((w) => w.parent === null).map((w) => bdf(t.roots[w.root].bus, w.dev.slot, w.dev.fn));
    const ops: Op[] = [...buses];
    for (const f of [...fns, ...below]) for (let reg = 0; reg < 0x1000; reg += 4) ops.push(cfgR(f, reg));
    const r = await conform(q, topology, ops);
    expect(r.failure).toBeUndefined();
    expect(lines(r.violations)).toEqual([]);
    // Not vacuous: the identities are there (edu 1234:11e8, pci-testdev 1b36:0005, root port 1b36:000c, the MCH).
    const ids = new Set(r.steps.filter((s) => s.op.op === 'cfg.read' && s.op.reg === 0).map((s) => Number(s.obs.value)));
    for (const id of [0x11e81234, 0x00051b36, 0x000c1b36, 0x29c08086]) expect(ids).toContain(id);
  });
});

test('write masks and BAR sizing: all-ones then zeros into every header register of the devices QEMU emulates', async () => {
  await withQemu(async (q) => {
    const ops: Op[] = [...buses];
    for (const f of [bdf(0, 2), bdf(0, 3), bdf(0, 4), ...below]) {
      for (let reg = 0x04; reg < 0x40; reg += 4) {
        // Bus numbers stay: writing them would cut off the devices below.
        if (reg === 0x18 && (f === bdf(0, 4) || f === bdf(0x20, 1))) continue;
        ops.push(cfgW(f, reg, 0xffffffff), cfgR(f, reg), cfgW(f, reg, 0), cfgR(f, reg));
      }
      // 1- and 2-byte writes land in their lanes.
      ops.push(cfgW(f, 0x0d, 0xff, 1), cfgR(f, 0x0c), cfgW(f, 0x3c, 0xab, 1), cfgR(f, 0x3c), cfgW(f, 0x06, 0xffff, 2), cfgR(f, 0x04));
    }
    const r = await conform(q, topology, ops);
    expect(r.failure).toBeUndefined();
    expect(lines(r.violations)).toEqual([]);
    // BAR sizing through QEMU: edu's BAR0 is 1 MiB of 32-bit memory, pci-testdev's BAR1 256 ports.
    const sized = (b: number, reg: number): number => Number(r.steps.find((s) => s.op.op === 'cfg.read' && s.op.bdf === b && s.op.reg === reg)!.obs.value);
    expect(sized(bdf(0, 2), 0x10)).toBe(0xfff00000);
    expect(sized(bdf(0, 3), 0x14)).toBe(0xffffff01);
  });
});

test('config accesses reach the expander roots by bus number, and nothing else answers', async () => {
  await withQemu(async (q) => {
    const probes: Op[] = [];
    for (const b of [0, 1, 2, 0x1f, 0x20, 0x21, 0x22, 0x40]) for (const dev of [0, 1, 4]) probes.push(cfgR(bdf(b, dev), 0));
    const r = await conform(q, topology, [...probes, ...buses, ...probes]);
    expect(lines(r.violations)).toEqual([]);
    const value = (pass: 'before' | 'after', b: number, dev: number): number => {
      const steps = pass === 'before' ? r.steps.slice(0, probes.length) : r.steps.slice(probes.length + buses.length);
      return Number(steps.find((s) => s.op.op === 'cfg.read' && s.op.bdf === bdf(b, dev))!.obs.value);
    };
    // Before the ports have bus numbers, the devices below them are out of reach.
    expect(value('before', 0x21, 0)).toBe(0xffffffff);
    expect(value('before', 0x20, 1)).toBe(0x000c1b36);
    // After, the pci-testdev below the expander's port answers at 21:00.0, and buses past it stay empty.
    expect(value('after', 0x21, 0)).toBe(0x00051b36);
    expect(value('after', 1, 0)).toBe(0x11e81234);
    expect(value('after', 0x22, 0)).toBe(0xffffffff);
    expect(value('after', 0x40, 0)).toBe(0xffffffff);
  });
});

test('ECAM and CF8/CFC see the same registers, at every access size', async () => {
  await withQemu(async (q) => {
    const ops: Op[] = [...buses];
    for (const f of [bdf(0, 0), bdf(0, 2), bdf(0, 3), bdf(0, 4), bdf(0x20, 1), ...below])
      for (let reg = 0; reg < 0x100; reg += 4) for (const size of [1, 2, 4]) for (let o = 0; o < 4; o += size) ops.push(cfgR(f, reg + o, size, 'ecam'), cfgR(f, reg + o, size, 'cf8'));
    // A write through one mechanism is read back through the other.
    ops.push(cfgW(bdf(0, 2), 0x3c, 0x5a, 1, 'cf8'), cfgR(bdf(0, 2), 0x3c, 1, 'ecam'), cfgW(bdf(0, 3), 0x0c, 0x20, 1, 'ecam'), cfgR(bdf(0, 3), 0x0c, 1, 'cf8'));
    const r = await conform(q, topology, ops);
    expect(lines(r.violations)).toEqual([]);
    const reads = r.steps.filter((s) => s.op.op === 'cfg.read');
    for (let i = 0; i + 1 < reads.length - 2; i += 2) expect(reads[i].obs.value, JSON.stringify(reads[i].op)).toBe(reads[i + 1].obs.value);
    expect(reads.at(-2)!.obs.value).toBe(0x5an);
  });
});

test('the pc machine: i440FX and PIIX functions, edu and pci-testdev, through CF8/CFC only; one root', async () => {
  const pc = machine([edu('e0', 2), testdev('t0', 3)]);
  await withQemu(
    async (q) => {
      const t = q.prepare!(pc);
      expect(t.roots[0].ecam).toBeNull();
      const fns = [...walkDevices(t)].map((w) => bdf(t.roots[w.root].bus, w.dev.slot, w.dev.fn));
      const ops: Op[] = [];
      for (const f of fns) for (let reg = 0; reg < 0x100; reg += 4) ops.push(cfgR(f, reg, 4, 'cf8'));
      ops.push(cfgW(bdf(0, 2), 0x10, 0xffffffff, 4, 'cf8'), cfgR(bdf(0, 2), 0x10, 4, 'cf8'));
      const r = await conform(q, pc, ops);
      expect(r.failure).toBeUndefined();
      expect(lines(r.violations)).toEqual([]);
      const ids = new Set(r.steps.filter((s) => s.op.op === 'cfg.read' && s.op.reg === 0).map((s) => Number(s.obs.value)));
      for (const id of [0x11e81234, 0x00051b36, 0x12378086]) expect(ids).toContain(id); // edu, pci-testdev, i440FX
      expect(r.steps.at(-1)!.obs.value).toBe(0xfff00000n);
      expect(() => q.prepare!(machine([edu('e0', 2)], [{ bus: 0x20, devices: [edu('e2', 1)] }]))).toThrow(/one root on pc/);
    },
    { machine: 'pc' },
  );
});
