/** The CI gate and corpus management: statuses, regressions, JUnit XML. */
import { test, expect } from '@playwright/test';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CorpusStore } from '../harness/corpus/store.ts';
import { isoroot } from './cli-run.ts';

const ROOT = join(import.meta.dirname, '..');
const MODEL = join(ROOT, 'corpora', 'model');


/** Minimal structural reading of JUnit XML: the attributes of each element of a kind. */
function elements(xml: string, tag: string): Record<string, string>[] {
  return [...xml.matchAll(new RegExp(`<${tag}((?:\\s+[a-z]+="[^"]*")*)\\s*/?>`, 'g'))].map((m) => Object.fromEntries([...m[1].matchAll(/([a-z]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])));
}

test('the gate passes the model corpus and a clean fuzz, and says so in JUnit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-gate-'));
  const r = isoroot('gate', '--target', 'model', '--corpus', MODEL, '--runs', '200', '--workers', '2', '--junit', join(dir, 'junit.xml'), '--out', join(dir, 'run'));
  expect(r.code).toBe(0);
  const xml = readFileSync(join(dir, 'junit.xml'), 'utf8');
  expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
  const [all] = elements(xml, 'testsuites');
  const entries = new CorpusStore(MODEL).list().length;
  expect(all).toMatchObject({ tests: String(entries + 1), failures: '0', skipped: '0' });
  expect(elements(xml, 'testsuite').map((s) => s.name)).toEqual([`corpus ${MODEL}`, 'fuzz']);
  expect(elements(xml, 'testcase').map((c) => c.name)).toContain('scenario-io-bars-same-port');
});

test('a fixed trace that fails again fails the gate as a regression', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-gate-'));
  const r = isoroot('gate', '--target', 'model', '--mutant', 'global-dma', '--corpus', MODEL, '--runs', '0', '--junit', join(dir, 'junit.xml'));
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/FAIL {2}global-dma: regression: leak:dma:cross-root-memory is back/);
  expect(r.out).toMatch(/FAIL {2}scenario-dma-same-iova: regression: leak:/);
  const xml = readFileSync(join(dir, 'junit.xml'), 'utf8');
  const failures = elements(xml, 'failure');
  expect(failures.length).toBeGreaterThanOrEqual(2);
  expect(failures[0].message).toMatch(/^regression: /);
  expect(elements(xml, 'testsuites')[0].failures).toBe(String(failures.length));
});

test('open traces may still fail; known divergences must keep their signature', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-corpus-'));
  const corpus = join(dir, 'corpus');
  // A stale-bar finding, replayed on the stale-bar mutant: it still fails.
  const add = isoroot('corpus', 'add', join(MODEL, 'stale-bar.jsonl'), '--corpus', corpus);
  expect(add.code).toBe(0);
  expect(add.out).toContain('stale-bar: added to');
  expect(add.out).toContain('as open (leak:memory:stale-mapping)');
  copyFileSync(join(MODEL, 'global-dma.jsonl'), join(dir, 'other.jsonl'));
  expect(isoroot('corpus', 'add', join(dir, 'other.jsonl'), '--corpus', corpus, '--status', 'known-divergence').code).toBe(2);
  expect(isoroot('corpus', 'add', join(dir, 'other.jsonl'), '--corpus', corpus, '--status', 'known-divergence', '--reason', 'accepted for the test').code).toBe(0);
  const list = isoroot('corpus', 'list', '--corpus', corpus);
  expect(list.out).toMatch(/other\s+known-divergence\s+\d{4}-\d\d-\d\d\s+leak:dma:cross-root-memory\s+accepted for the test/);
  expect(list.out).toMatch(/stale-bar\s+open/);

  const open = isoroot('gate', '--target', 'model', '--mutant', 'stale-bar', '--corpus', corpus, '--runs', '0', '--junit', join(dir, 'a.xml'));
  expect(open.out).toContain('open  stale-bar: still open: leak:memory:stale-mapping');
  // other.jsonl does not fail on this mutant: its divergence is gone.
  expect(open.out).toContain('pass  other: the known divergence is gone');
  expect(open.code).toBe(0);
  expect(elements(readFileSync(join(dir, 'a.xml'), 'utf8'), 'skipped')).toHaveLength(1);

  const known = isoroot('gate', '--target', 'model', '--mutant', 'global-dma', '--corpus', corpus, '--runs', '0', '--junit', join(dir, 'b.xml'));
  expect(known.out).toContain('pass  other: known divergence: accepted for the test');
  expect(known.out).toContain('pass  stale-bar: open, but no longer fails: mark it fixed');
  expect(known.code).toBe(0);

  expect(isoroot('corpus', 'mark', 'stale-bar', '--corpus', corpus, '--status', 'fixed').code).toBe(0);
  const regressed = isoroot('gate', '--target', 'model', '--mutant', 'stale-bar', '--corpus', corpus, '--runs', '0', '--junit', join(dir, 'c.xml'));
  expect(regressed.code).toBe(1);
  expect(regressed.out).toContain('FAIL  stale-bar: regression');
  expect(isoroot('corpus', 'mark', 'nope', '--corpus', corpus, '--status', 'fixed').err).toMatch(/nope\.jsonl: a trace in the corpus/);
  expect(isoroot('corpus', 'frob', '--corpus', corpus).err).toMatch(/the first argument must be add, list or mark/);
});

test("a trace that ends in the target's failure is added with the failure's signature (a crash found again is then recognised by it)", () => {
  const corpus = join(mkdtempSync(join(tmpdir(), 'isoroot-corpus-')), 'corpus');
  const add = isoroot('corpus', 'add', join(ROOT, 'corpora', 'xen', 'bar-sizing-value-wraps-rangeset.jsonl'), '--corpus', corpus, '--name', 'crash');
  expect(add.code).toBe(0);
  expect(add.out).toContain("crash: added to");
  expect(add.out).toContain("as open (crash:cfg.write:(XEN) Assertion 's <= e' failed at xen/common/rangeset.c:#)");
  expect(new CorpusStore(corpus).meta('crash')).toMatchObject({ kind: 'crash', signature: "crash:cfg.write:(XEN) Assertion 's <= e' failed at xen/common/rangeset.c:#" });
});
