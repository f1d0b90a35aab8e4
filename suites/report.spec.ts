/**
 * The HTML regression report, opened in real headless Chromium (Debian's
 * chromium, driven by Playwright with executablePath): it must render the
 * summary, the comparison with a baseline, the coverage plot, and every
 * finding with its trace table and address-map pictures. A screenshot and
 * the report itself are kept as artifacts of this test, so the Playwright
 * HTML report links to them.
 */
import { test, expect, chromium } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCampaign } from '../harness/campaign/coordinator.ts';
import { Progress } from '../harness/campaign/progress.ts';
import { loadRun } from '../harness/report/load-run.ts';
import { renderReport } from '../harness/report/html.ts';
import { writeFileAtomic } from '../harness/util/atomic.ts';
import { campaignConfig, type CampaignConfig } from '../harness/campaign/run-dir.ts';
import { requireProgram } from './require.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function campaign(dir: string, over: Partial<CampaignConfig>): Promise<void> {
  const quiet = new Progress({ isTTY: false, write: () => true }, 1e9);
  const config = campaignConfig({ target: 'model', seed: 7, workers: 2, budget: { runs: 3000 }, ...over });
  await runCampaign({ config, dir, resume: false, log: () => {}, out: quiet, show: () => '' });
}

test('the report renders findings, maps, coverage and the baseline comparison in Chromium', async () => {
  requireProgram(CHROMIUM, 'apt-get install chromium');
  const base = mkdtempSync(join(tmpdir(), 'isoroot-report-'));
  await campaign(join(base, 'baseline'), { budget: { runs: 500 } });
  await campaign(join(base, 'run'), { mutant: 'stale-bar' });
  const run = await loadRun(join(base, 'run'));
  expect(run.findings.length).toBeGreaterThan(0);
  const file = join(base, 'run', 'report.html');
  writeFileAtomic(file, renderReport(run, await loadRun(join(base, 'baseline'))));
  await test.info().attach('isoroot report', { path: file, contentType: 'text/html' });

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`file://${file}`);
    await expect(page).toHaveTitle(/isoroot report/);
    await expect(page.locator('table.summary')).toContainText('stale-bar');
    // Against the baseline: every finding is new.
    await expect(page.locator('#baseline')).toBeVisible();
    await expect(page.locator('li.new')).toHaveCount(run.findings.length);
    // Coverage over time.
    await expect(page.locator('svg.plot polyline.series')).toHaveCount(2);
    // Every finding, with its trace (failing step highlighted) and its maps, the stale range drawn as a marked ghost.
    const sections = page.locator('section.finding');
    await expect(sections).toHaveCount(run.findings.length);
    for (let i = 0; i < run.findings.length; i++) {
      const s = sections.nth(i);
      await expect(s.locator('table.trace tr.failing')).toHaveCount(1);
      expect(await s.locator('svg.map rect').count()).toBeGreaterThan(0);
    }
    const stale = page.locator('section.finding.leak', { hasText: 'leak:memory:stale-mapping' });
    await expect(stale.locator('svg.map g.marked.leak rect')).not.toHaveCount(0);
    await expect(stale.locator('svg.map g.point')).not.toHaveCount(0);
    const box = await stale.locator('svg.map').first().boundingBox();
    expect(box!.width).toBeGreaterThan(300);
    // Self-contained: nothing was fetched but the page itself.
    expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    const shot = test.info().outputPath('report.png');
    await page.screenshot({ path: shot, fullPage: false });
    await test.info().attach('report screenshot', { path: shot, contentType: 'image/png' });
    const finding = test.info().outputPath('finding.png');
    await stale.screenshot({ path: finding });
    await test.info().attach('finding with its address maps', { path: finding, contentType: 'image/png' });
  } finally {
    await browser.close();
  }
});
