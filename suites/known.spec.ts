/**
 * Known bugs recognised by behaviour: every corpora/qemu entry names a
 * quirk, the model changed to behave as the faulty QEMU does. The quirk
 * explains the entry's recording without a violation, the reference model
 * does not, and a recording the bug does not explain stays a finding.
 * `isoroot check` names known bugs and exits 0 when nothing else failed.
 */
import { crashCause } from '../harness/run/check.ts';
import { test, expect } from '@playwright/test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bySignature, knownBugs, quirkExplains, recognise } from '../harness/run/known.ts';
import { checkRun, judgeOfHeader, violations } from '../harness/run/check.ts';
import { readTrace } from '../harness/trace/reader.ts';
import { traceToText } from '../harness/trace/writer.ts';
import type { TargetFailure } from '../harness/adapters/target.ts';
import type { Step } from '../harness/trace/format.ts';
import { QEMU_QUIRKS } from '../harness/adapters/qemu/quirks.ts';
import { XEN_QUIRKS } from '../harness/adapters/xen/quirks.ts';
import { isoroot } from './cli-run.ts';

const dir = join(import.meta.dirname, '..', 'corpora', 'qemu');

/** A recorded trace's observed steps and the failure it ends with, if any. */
function recorded(steps: Step[]): { observed: { op: Step['op']; obs: NonNullable<Step['obs']> }[]; failure?: TargetFailure } {
  const observed = steps.filter((s) => s.obs !== undefined).map((s) => ({ op: s.op, obs: s.obs! }));
  const at = steps.findIndex((s) => s.failure !== undefined);
  return at < 0 ? { observed } : { observed, failure: { ...steps[at].failure!, index: at } };
}

test('every entry of corpora/qemu has a quirk that explains its recording, which the reference model does not', async () => {
  const bugs = knownBugs(dir);
  expect(bugs.length).toBeGreaterThanOrEqual(4);
  for (const b of bugs) {
    expect(b.quirk, `${b.name} names a quirk`).not.toBeNull();
    const t = await readTrace(join(dir, `${b.name}.jsonl`));
    const { observed, failure } = recorded(t.steps);
    const ops = t.steps.map((s) => s.op);
    expect(violations(checkRun(t.header.topology, judgeOfHeader(t.header), observed, failure, ops)).length, `${b.name} fails on the reference model`).toBeGreaterThan(0);
    expect(quirkExplains(b.quirk!, t.header.topology, judgeOfHeader(t.header), observed, failure, ops), `${b.name}'s quirk explains it`).toBe(true);
    expect(recognise(bugs, t.header.topology, judgeOfHeader(t.header), observed, [], failure, ops)?.bug.name).toBe(b.name);
  }
  // Every quirk of QEMU's serves an entry.
  for (const q of QEMU_QUIRKS) expect(bugs.map((b) => b.quirk?.name)).toContain(q.name);
});

test('every entry of corpora/xen with a quirk: the quirk explains its recording, the reference model does not; every quirk of Xen serves an entry', async () => {
  const xen = join(import.meta.dirname, '..', 'corpora', 'xen');
  const bugs = knownBugs(xen);
  expect(bugs.length).toBeGreaterThanOrEqual(9);
  for (const b of bugs) {
    const t = await readTrace(join(xen, `${b.name}.jsonl`));
    const { observed, failure } = recorded(t.steps);
    const ops = t.steps.map((s) => s.op);
    const judge = judgeOfHeader(t.header);
    expect(violations(checkRun(t.header.topology, judge, observed, failure, ops)).length, `${b.name} fails on the reference model`).toBeGreaterThan(0);
    if (b.quirk === null) {
      expect(b.signature, `${b.name} names a quirk or a signature`).toBeDefined();
      continue;
    }
    expect(quirkExplains(b.quirk, t.header.topology, judge, observed, failure, ops), `${b.name}'s quirk explains it`).toBe(true);
    expect(recognise(bugs, t.header.topology, judge, observed, [], failure, ops)?.bug.quirk?.name).toBe(b.quirk.name);
  }
  for (const q of XEN_QUIRKS) expect(bugs.map((b) => b.quirk?.name)).toContain(q.name);
});

test("a known crash recognised by its signature hides nothing: after a violation no rule or quirk explains, the run is a finding", async () => {
  const xen = join(import.meta.dirname, '..', 'corpora', 'xen');
  const bugs = knownBugs(xen);
  const t = await readTrace(join(xen, 'guest-bar-beyond-address-width-crashes-guest.jsonl'));
  const { observed, failure } = recorded(t.steps);
  const ops = t.steps.map((s) => s.op);
  const judge = judgeOfHeader(t.header);
  const signatures = (o: typeof observed): string[] => violations(checkRun(t.header.topology, judge, o, failure, ops)).map((f) => f.signature);
  const alone = signatures(observed);
  expect(alone).toEqual(['crash:cfg.write:(XEN) error: domain_crash called from xen/drivers/vpci/header.c:#']);
  expect(recognise(bugs, t.header.topology, judge, observed, alone, failure, ops)).toMatchObject({ bug: { name: 'guest-bar-beyond-address-width-crashes-guest' }, by: 'signature' });
  // The same crash after a read of the upper BAR register that no rule allows (it holds all ones, read back as 0x1234).
  const read: (typeof observed)[number] = { op: { op: 'cfg.read', root: 1, via: 'ecam', bdf: observed[0].op.op === 'cfg.write' ? observed[0].op.bdf : 0, reg: 0x20, size: 4 }, obs: { status: 'ok', value: 0x1234n } };
  const tampered = [observed[0], read];
  const tOps = [ops[0], read.op, ...ops.slice(1)];
  const tFailure = { ...failure!, index: failure!.index + 1 };
  const both = violations(checkRun(t.header.topology, judge, tampered, tFailure, tOps)).map((f) => f.signature);
  expect(both).toContain(alone[0]);
  expect(both.length).toBeGreaterThan(1);
  expect(recognise(bugs, t.header.topology, judge, tampered, both, tFailure, tOps)).toBeNull();
});

test('a known crash is its message: the same domain_crash() site reached from another op is that bug, another site is not', () => {
  const bugs = knownBugs(join(import.meta.dirname, '..', 'corpora', 'xen'));
  const site = '(XEN) error: domain_crash called from xen/arch/x86/hvm/intercept.c:#';
  expect(bySignature(bugs, `crash:dev.plug:${site}`)?.bug.name).toBe('msix-reassign-takes-io-handler-slot');
  expect(bySignature(bugs, `crash:dev.reset:${site}`)?.bug.name).toBe('msix-reassign-takes-io-handler-slot');
  expect(bySignature(bugs, 'crash:dev.reset:(XEN) error: domain_crash called from xen/arch/x86/hvm/emulate.c:#')).toBeNull();
  expect(bySignature(bugs, 'hang:dev.reset:no reply')).toBeNull();
});

test('a recording the known bug does not explain is not taken for it', async () => {
  const bugs = knownBugs(dir);
  const t = await readTrace(join(dir, 'expander-intx-off-its-routing-table.jsonl'));
  const { observed } = recorded(t.steps);
  // Another wrong line than the one QEMU's arithmetic gives.
  const last = observed[observed.length - 1];
  const tampered = [...observed.slice(0, -1), { op: last.op, obs: { ...last.obs, irqs: [{ space: 0, kind: 'line' as const, line: 18, level: 1 as const }] } }];
  expect(violations(checkRun(t.header.topology, judgeOfHeader(t.header), tampered)).length).toBeGreaterThan(0);
  expect(recognise(bugs, t.header.topology, judgeOfHeader(t.header), tampered, ['divergence:irqs(lines)@rN'])).toBeNull();

  // The CLI: the recording is a known bug (exit 0, named); the tampered one a finding (exit 1).
  const ok = isoroot('check', join(dir, 'expander-intx-off-its-routing-table.jsonl'));
  expect(ok.code, ok.out + ok.err).toBe(0);
  expect(ok.out).toMatch(/known: expander-intx-off-its-routing-table \(open, recognised by its quirk\), seen as divergence:irqs\(lines\)@rN/);
  const file = join(mkdtempSync(join(tmpdir(), 'isoroot-known-')), 'tampered.jsonl');
  writeFileSync(file, traceToText(t.header, [...t.steps.slice(0, -1), tampered[tampered.length - 1]]));
  const bad = isoroot('check', file);
  expect(bad.code).toBe(1);
  expect(bad.out).not.toContain('known:');
  // Without the corpus, the recording is the finding it was.
  const empty = mkdtempSync(join(tmpdir(), 'isoroot-known-empty-'));
  expect(isoroot('check', join(dir, 'expander-intx-off-its-routing-table.jsonl'), '--known', empty).code).toBe(1);
  // --known none turns recognition off: a QEMU developer checking a fix sees the bug as the finding it is.
  const off = isoroot('check', join(dir, 'expander-intx-off-its-routing-table.jsonl'), '--known', 'none');
  expect(off.code).toBe(1);
  expect(off.out).not.toContain('known:');
});

test('a crash a quirk predicts is that known bug: the model with the quirk dies at the op QEMU died at', async () => {
  const r = isoroot('check', join(dir, 'edu-dma-to-buffer-end-aborts.jsonl'));
  expect(r.code, r.out + r.err).toBe(0);
  expect(r.out).toContain('(the target failed on the next)');
  expect(r.out).toMatch(/known: edu-dma-to-buffer-end-aborts \(open, recognised by its quirk\), seen as crash:dma\.read:/);
});

test("a crash is named by QEMU's hardware error, not by a warning QEMU printed before it", () => {
  const stderr = [
    'qemu-system-x86_64: vtd_iova_to_slpte: detected slpte permission error (iova=0x2f8000, level=0x1, slpte=0x0, write=1, pasid=0x0)',
    'qemu: hardware error: EDU: DMA range 0x0000000000040000-0x0000000000040fff out of bounds (0x0000000000040000-0x0000000000040fff)!',
    'CPU #0:',
  ].join('\n');
  expect(crashCause(stderr)).toBe('qemu: hardware error: EDU: DMA range #-# out of bounds (#-#)!');
  expect(crashCause('warning: something\nAssertion `x' + "' failed")).toBe("Assertion `x' failed");
});
