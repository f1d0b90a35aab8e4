/**
 * The CI gate on QEMU: corpora/qemu replays as recorded (the open QEMU
 * bugs still fail, as their quirks say, and are skipped), and a
 * fixed-seed fuzz on QEMU finds nothing new: what it meets of the known
 * bugs is named apart.
 */
import { expect, test } from '@playwright/test';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isoroot } from '../cli-run.ts';
import { requireQemu, suiteQemuVersion, SUITE_QEMU_ARGS } from './helpers.ts';

test.beforeEach(() => requireQemu());

test('the gate on QEMU: known divergences pass, open QEMU bugs are skipped, a fixed-seed fuzz is clean', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-qemu-gate-'));
  const junit = join(dir, 'junit.xml');
  const corpus = join(import.meta.dirname, '..', '..', 'corpora', 'qemu');
  const r = isoroot('gate', '--target', 'qemu', ...SUITE_QEMU_ARGS, '--corpus', corpus, '--runs', '40', '--workers', '2', '--junit', junit, '--out', join(dir, 'run'));
  expect(r.err).toBe('');
  expect(r.code, r.out).toBe(0);
  const xml = readFileSync(junit, 'utf8');
  // Recorded on QEMU 7.2; QEMU 11.1.3 fixed edu's bounds check, and the gate says so without failing.
  const fixedHere = suiteQemuVersion().startsWith('7.') ? [] : ['edu-dma-to-buffer-end-aborts'];
  // Recorded on QEMU 11's scalable-mode IOMMU, which 7.2 does not have: skipped there, with the reason.
  const scalable = suiteQemuVersion().startsWith('7.') ? [] : ['pasid-zeroed-entry-faults-invalid'];
  if (scalable.length === 0) expect(xml).toMatch(/name="pasid-zeroed-entry-faults-invalid"[^>]*>\s*<skipped message="this target cannot build the trace&apos;s machine: [^"]*scalable mode/);
  for (const open of ['bridge-window-survives-reset', 'bridge-bus-range-captures-other-roots', 'cf8-reserved-bits-pick-the-register', 'edu-dma-to-buffer-end-aborts', 'expander-intx-off-its-routing-table', ...scalable]) {
    if (fixedHere.includes(open)) expect(xml).toMatch(new RegExp(`name="${open}"[^>]*>\\s*<system-out>open, but no longer fails: mark it fixed`));
    else expect(xml).toMatch(new RegExp(`name="${open}"[^>]*>\\s*<skipped message="still open: `));
  }
  // The fuzz part: clean, and the known bugs it met counted apart, each by the name of its corpus entry.
  expect(xml).toMatch(/<testsuite name="fuzz[^"]*" tests="\d+" failures="0"/);
  const entries = readdirSync(corpus).filter((f) => f.endsWith('.jsonl')).map((f) => f.slice(0, -'.jsonl'.length));
  for (const m of xml.matchAll(/name="known: ([^"]+)"/g)) expect(entries).toContain(m[1]);
});
