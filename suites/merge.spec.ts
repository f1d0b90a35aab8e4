/** Campaigns past one machine: --shard partitions the seed space; merge brings the shards back together. */
import { test, expect } from '@playwright/test';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCampaign } from '../harness/campaign/coordinator.ts';
import { mergeRuns } from '../harness/campaign/merge.ts';
import { Progress } from '../harness/campaign/progress.ts';
import { RunDir, campaignConfig, type CampaignConfig } from '../harness/campaign/run-dir.ts';

const quiet = (): Progress => new Progress({ isTTY: false, write: () => true }, 1e9);

const config = (shard: number, over: Partial<CampaignConfig> = {}): CampaignConfig =>
  campaignConfig({ target: 'model', mutant: 'stale-bar', seed: 9, workers: 2, budget: { runs: 1500 }, shard: { index: shard, count: 2 }, ...over });

const run = (c: CampaignConfig, dir: string) => runCampaign({ config: c, dir, resume: false, log: () => {}, out: quiet(), show: () => '' });
const signatures = (dir: string): string[] => readdirSync(join(dir, 'findings')).filter((f) => f.endsWith('.finding.json')).map((f) => JSON.parse(readFileSync(join(dir, 'findings', f), 'utf8')).signature).sort();

test('shards run disjoint streams, and merge unions their findings and coverage', async () => {
  const base = mkdtempSync(join(tmpdir(), 'isoroot-shards-'));
  const [a, b] = [join(base, 's0'), join(base, 's1')];
  const ra = await run(config(0), a);
  const rb = await run(config(1), b);
  expect(new RunDir(a).streams()).toEqual([0, 1]);
  expect(new RunDir(b).streams()).toEqual([2, 3]);
  const m = mergeRuns([a, b], join(base, 'merged'));
  expect(m.summary.runs).toBe(ra.summary.runs + rb.summary.runs);
  expect(m.summary.opsPerSecond).toBe(ra.summary.opsPerSecond + rb.summary.opsPerSecond);
  expect(m.summary.covered).toBeGreaterThanOrEqual(Math.max(ra.summary.covered, rb.summary.covered));
  expect(signatures(join(base, 'merged'))).toEqual([...new Set([...signatures(a), ...signatures(b)])].sort());
  expect(new RunDir(join(base, 'merged')).streams()).toEqual([0, 1, 2, 3]);
  const points = new RunDir(join(base, 'merged')).readCoverage().points;
  expect(points[points.length - 1]).toMatchObject({ runs: m.summary.runs, covered: m.summary.covered });
});

test('a shard is deterministic on its own', async () => {
  const base = mkdtempSync(join(tmpdir(), 'isoroot-shard-'));
  await run(config(1), join(base, 'x'));
  await run(config(1), join(base, 'y'));
  expect(signatures(join(base, 'x'))).toEqual(signatures(join(base, 'y')));
});

test('merge refuses runs of different campaigns and an occupied destination', async () => {
  const base = mkdtempSync(join(tmpdir(), 'isoroot-merge-'));
  await run(config(0, { budget: { runs: 40 } }), join(base, 'a'));
  await run(config(1, { budget: { runs: 40 }, seed: 10 }), join(base, 'b'));
  expect(() => mergeRuns([join(base, 'a'), join(base, 'b')], join(base, 'm'))).toThrow(/a run of the same campaign/);
  expect(() => mergeRuns([join(base, 'a')], join(base, 'a'))).toThrow(/already holds a campaign/);
  expect(existsSync(join(base, 'm', 'summary.json'))).toBe(false);
});
