/**
 * QEMU's own trace events as evidence (--qemu-events): the PCI core's
 * config accesses and BAR mappings, each batch with the op it was read
 * after, and attached to the findings of those ops.
 */
import { expect, test } from '@playwright/test';
import { join } from 'node:path';
import type { Op } from '../../harness/ops/catalog.ts';
import { readTrace } from '../../harness/trace/reader.ts';
import { checkRun, violations } from '../../harness/run/check.ts';
import { execute } from '../../harness/run/execute.ts';
import { bdf, cfgR, cfgW, conform, edu, lines, machine, requireQemu, withQemu } from './helpers.ts';

test.beforeEach(() => requireQemu());

const BAR = 0xc0000000;

test("QEMU's trace events come with the op whose run they were logged in: the config writes, the BAR QEMU maps, and its unmapping at a reset", async () => {
  const ops: Op[] = [cfgW(bdf(0, 3), 0x10, BAR), cfgW(bdf(0, 3), 0x04, 2, 2), { op: 'root.reset', root: 0 }, cfgR(bdf(0, 3), 0x10)];
  await withQemu(
    async (q) => {
      const r = await conform(q, machine([edu('e0', 3)]), ops);
      expect(lines(r.violations)).toEqual([]);
      // Ops 0 and 1 run as one pipelined segment: their events come with op 1.
      expect(r.steps[0].obs.evidence?.events).toBeUndefined();
      expect(r.steps[1].obs.evidence?.events).toEqual(['pci_cfg_write edu 00:03.0 @0x10 <- 0xc0000000', 'pci_cfg_write edu 00:03.0 @0x4 <- 0x2', 'pci_update_mappings_add edu 00:03.0 0,0xc0000000+0x100000']);
      // The reset (an interactive op, its own batch) unmaps the BAR.
      expect(r.steps[2].obs.evidence?.events).toContain('pci_update_mappings_del edu 00:03.0 0,0xc0000000+0x100000');
      expect(r.steps[3].obs.evidence?.events).toEqual(['pci_cfg_read edu 00:03.0 @0x10 -> 0x0']);
    },
    { events: true },
  );
  // Without the option, no events.
  await withQemu(async (q) => {
    const r = await conform(q, machine([edu('e0', 3)]), ops);
    expect(r.steps.some((s) => s.obs.evidence?.events !== undefined)).toBe(false);
  });
});

test("a finding carries the events of its ops: QEMU 7.2's bridge window surviving a reset, with the BAR QEMU maps there", async () => {
  const t = await readTrace(join(import.meta.dirname, '..', '..', 'corpora', 'qemu', 'bridge-window-survives-reset.jsonl'));
  await withQemu(
    async (q) => {
      const ops = t.steps.map((s) => s.op);
      const topology = q.prepare!(t.header.topology);
      const ex = await execute(q, topology, ops);
      const found = violations(checkRun(topology, q.capabilities.observes, ex.steps, ex.failure, ops));
      const leak = found.find((f) => f.signature === 'leak:maps:memory:survives-reset');
      expect(leak, lines(found).join('\n')).toBeDefined();
      expect(leak!.details?.['target events']).toContain('pci_update_mappings_add pci-testdev 01:00.0 0,0xd0000000+0x1000');
    },
    { events: true },
  );
});

test("QEMU's trace events are coverage too: a campaign with --qemu-events counts the paths QEMU reports, apart from the model's features, and keeps their seeds", async () => {
  const { runQuiet } = await import('../../harness/campaign/catch.ts');
  const { campaignConfig } = await import('../../harness/campaign/run-dir.ts');
  const { readFileSync } = await import('node:fs');
  const dir = test.info().outputPath('campaign');
  const { UNIVERSE_SET } = await import('../../harness/coverage/universe.ts');
  const log: string[] = [];
  const r = await runQuiet(campaignConfig({ target: 'qemu', qemuEvents: true, known: 'corpora/qemu', seed: 3, workers: 1, budget: { runs: 2 } }), dir, undefined, (s) => log.push(s));
  const features = Object.keys(JSON.parse(readFileSync(join(dir, 'features.json'), 'utf8')) as Record<string, number>);
  const target = features.filter((f) => f.startsWith('target:'));
  // Config registers QEMU handled and BARs it mapped, per device model.
  expect(target.some((f) => /^target:pci_cfg_write:[\w-]+:0x[0-9a-f]+$/.test(f))).toBe(true);
  expect(target.some((f) => /^target:pci_update_mappings_add:[\w-]+:bar\d$/.test(f))).toBe(true);
  expect(r.summary.targetFeatures).toBe(target.length);
  // Counted apart: the model's coverage is the universe's features only, and no target feature is called a stray.
  expect(r.summary.covered).toBe(features.filter((f) => UNIVERSE_SET.has(f)).length);
  expect(r.summary.covered).toBeGreaterThan(0);
  expect(log.filter((w) => /not in the universe/.test(w))).toEqual([]);
});
