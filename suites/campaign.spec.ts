/** Fuzz campaigns: determinism, kill -9 and --resume, progress and the coverage journal. */
import { test, expect } from '@playwright/test';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCampaign } from '../harness/campaign/coordinator.ts';
import { Progress } from '../harness/campaign/progress.ts';
import { RunDir, campaignConfig, type CampaignConfig } from '../harness/campaign/run-dir.ts';
import { readTrace } from '../harness/trace/reader.ts';
import { UNIVERSE } from '../harness/coverage/universe.ts';
import { modelTarget } from '../harness/adapters/model/target.ts';
import { execute } from '../harness/run/execute.ts';
import { checkRun, violations } from '../harness/run/check.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'isoroot.mjs');

const config = (over: Partial<CampaignConfig>): CampaignConfig => campaignConfig({ target: 'model', seed: 1, workers: 2, budget: { runs: 1000 }, ...over });

async function campaign(c: CampaignConfig, dir: string, resume = false) {
  const lines: string[] = [];
  const out = new Progress({ isTTY: false, write: (s: string) => lines.push(s) });
  const r = await runCampaign({ config: c, dir, resume, log: (s) => lines.push(s), out, show: (f) => `${f.kind} ${f.signature}` });
  return { ...r, lines };
}

/** Finding files and trace bodies (without the header's time): what must not depend on scheduling. */
function findingsOf(dir: string): string[] {
  const d = join(dir, 'findings');
  return readdirSync(d)
    .sort()
    .map((f) => (f.endsWith('.jsonl') ? `${f}\n${readFileSync(join(d, f), 'utf8').split('\n').slice(1).join('\n')}` : f));
}

test('the same seed, run budget and worker count find the same findings', async () => {
  const base = mkdtempSync(join(tmpdir(), 'isoroot-det-'));
  const c = config({ seed: 11, budget: { runs: 3000 }, mutant: 'stale-bar' });
  const a = await campaign(c, join(base, 'a'));
  const b = await campaign(c, join(base, 'b'));
  expect(a.findings.length).toBeGreaterThan(0);
  expect(findingsOf(join(base, 'a'))).toEqual(findingsOf(join(base, 'b')));
  expect(a.summary.runs).toBe(3000);
  expect(b.summary.covered).toBe(a.summary.covered);
});

test('every finding of a campaign reproduces: from its recorded trace, and replayed on the target', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'isoroot-repro-')), 'run');
  const r = await campaign(config({ seed: 4, budget: { runs: 2500 }, mutant: 'shared-io-space' }), dir);
  expect(r.findings.length).toBeGreaterThan(0);
  for (const f of r.findings) {
    const t = await readTrace(join(dir, 'findings', f.trace));
    const recorded = violations(checkRun(t.header.topology, t.header.target.observes, t.steps.filter((s) => s.obs !== undefined).map((s) => ({ op: s.op, obs: s.obs! }))));
    expect(recorded.map((x) => x.signature)).toContain(f.signature);
    const again = await execute(modelTarget('shared-io-space'), t.header.topology, t.steps.map((s) => s.op));
    expect(violations(checkRun(t.header.topology, t.header.target.observes, again.steps)).map((x) => x.signature)).toContain(f.signature);
    expect(t.steps.length).toBe(f.ops);
  }
});

test('on a terminal the status line is redrawn in place; elsewhere it is a plain line at intervals', () => {
  const tty: string[] = [];
  const live = new Progress({ isTTY: true, write: (s: string) => tty.push(s) });
  const tally = { elapsedMs: 65_000, budget: '10:00', runs: 1200, ops: 30_000, covered: 200, total: 259, findings: new Map([['leak', 2]]) };
  live.tick(tally);
  live.say('LEAK something');
  live.tick(tally);
  live.end();
  expect(tty[0]).toBe('\r\x1b[K[1:05/10:00] 1200 seq (18/s), 30000 ops (462/s) | coverage 200/259 (77.2%) | findings: leak 2');
  expect(tty[1]).toBe('\r\x1b[K');
  expect(tty[2]).toBe('LEAK something\n');
  expect(tty[tty.length - 1]).toBe('\n');
  const plain: string[] = [];
  const log = new Progress({ isTTY: false, write: (s: string) => plain.push(s) }, 10_000);
  for (const ms of [1000, 5000, 11_000, 12_000, 22_000]) log.tick({ ...tally, elapsedMs: ms });
  expect(plain.length).toBe(2);
  expect(plain.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
});

test('a campaign journals coverage over time and the features it reached', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'isoroot-cov-')), 'run');
  const r = await campaign(config({ budget: { runs: 500 }, workers: 1 }), dir);
  const rd = new RunDir(dir);
  const { points } = rd.readCoverage();
  expect(points[0]).toMatchObject({ t: 0, runs: 0, covered: 0, total: UNIVERSE.length });
  expect(points[points.length - 1]).toMatchObject({ runs: 500, covered: r.summary.covered });
  const features = rd.read<Record<string, number>>(rd.features);
  expect(Object.keys(features).length).toBeGreaterThanOrEqual(r.summary.covered);
  // The last status line counts the whole budget (how long it took is the benches' business, not a test's).
  expect(r.lines.some((l) => /^\[\d+:\d\d\/500 runs\] 500 seq/.test(l))).toBe(true);
  // Coverage over time never goes back.
  for (let i = 1; i < points.length; i++) expect(points[i].covered).toBeGreaterThanOrEqual(points[i - 1].covered);
  expect(r.summary.findings).toEqual([]);
});

test('a run directory that holds a campaign is not overwritten', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'isoroot-twice-')), 'run');
  await campaign(config({ budget: { runs: 20 }, workers: 1 }), dir);
  await expect(campaign(config({ budget: { runs: 20 }, workers: 1 }), dir)).rejects.toThrow(/use --resume/);
});

test('kill -9 loses no printed finding and leaves no worker behind; --resume finishes the budget', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'isoroot-k9-')), 'run');
  const child = spawn(process.execPath, [BIN, 'fuzz', '--runs', '8000', '--seed', '3', '--workers', '2', '--mutant', 'stale-bar', '--out', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve) => {
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (/^LEAK \S+ \(run \d+/m.test(out)) resolve();
    });
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const printed = [...out.matchAll(/trace: (\S+\.jsonl)/g)].map((m) => m[1]);
  expect(printed.length).toBeGreaterThan(0);
  for (const f of printed) {
    expect(existsSync(f)).toBe(true);
    expect((await readTrace(f)).steps.length).toBeGreaterThan(0);
  }
  // Orphaned workers notice and exit (they check before every run; the bound is generous for a busy machine).
  let left = '1';
  for (let i = 0; i < 600 && left !== ''; i++) {
    await new Promise((r) => setTimeout(r, 200));
    try {
      left = execFileSync('pgrep', ['-f', `campaign/worker.ts ${dir}`], { encoding: 'utf8' }).trim();
    } catch {
      left = '';
    }
  }
  expect(left).toBe('');
  const resumed = await campaign(config({}), dir, true);
  expect(resumed.summary.runs).toBe(8000);
  const kept = readdirSync(join(dir, 'findings'));
  for (const f of printed) expect(kept).toContain(f.split('/').pop());
});
