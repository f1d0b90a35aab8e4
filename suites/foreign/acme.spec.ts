/**
 * Foreign material: acme-vmm (targets/acme_vmm.py), an exec target written
 * from the specifications apart from isoroot's model, with a device isoroot
 * does not know and its own implementation choices. Judged by the
 * specifications alone, or by the profile of its choices, it yields no
 * finding; judged by another profile, every finding names the profile's
 * entry; with a real isolation bug, the finding names the isolation rule,
 * and every finding replays (check with and without the target, explain).
 */
import { test, expect } from '@playwright/test';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isoroot } from '../cli-run.ts';
import type { CampaignFinding } from '../../harness/campaign/findings-store.ts';

const HERE = import.meta.dirname;
const TARGET = `exec:python3 ${join(HERE, 'targets', 'acme_vmm.py')}`;
const LINUX = '--unassigned ones --align page --ro-write ignore --not-decoding refuse --errno linux';
const profile = (name: string): string => join(HERE, 'profiles', `${name}.json`);

function fuzz(target: string, runs: number, ...extra: string[]): { code: number; out: string; dir: string; findings: CampaignFinding[] } {
  const dir = join(mkdtempSync(join(tmpdir(), 'isoroot-acme-')), 'run');
  const r = isoroot('fuzz', '--target', target, '--runs', String(runs), '--seed', '5', '--workers', '1', '--out', dir, ...extra);
  const fdir = join(dir, 'findings');
  const findings = readdirSync(fdir)
    .filter((f) => f.endsWith('.finding.json'))
    .map((f) => JSON.parse(readFileSync(join(fdir, f), 'utf8')) as CampaignFinding);
  return { code: r.code, out: r.out + r.err, dir, findings };
}

test('judged by the specifications alone, acme-vmm and its unknown device yield no finding; learned, the device is fuzzed', () => {
  const r = fuzz(TARGET, 250);
  expect(r.code, r.out).toBe(0);
  expect(r.findings).toEqual([]);
  // The campaign reached the device's registers: its BARs were placed and accessed.
  const cov = JSON.parse(readFileSync(join(r.dir, 'features.json'), 'utf8')) as Record<string, number>;
  expect(Object.keys(cov)).toEqual(expect.arrayContaining(['route:cfg:dev:learned', 'route:mmio:learned.bar']));
});

test("judged by its own profile, each variant yields no finding", () => {
  expect(fuzz(TARGET, 150, '--profile', profile('acme-bsd')).findings).toEqual([]);
  expect(fuzz(`${TARGET} ${LINUX}`, 150, '--profile', profile('acme-linux')).findings).toEqual([]);
});

test("judged by another implementation's profile, every finding is a departure from that profile and names its entry", () => {
  const r = fuzz(`${TARGET} ${LINUX}`, 150, '--profile', profile('acme-bsd'));
  expect(r.code).toBe(1);
  expect(r.findings.length).toBeGreaterThanOrEqual(4);
  for (const f of r.findings) {
    expect(f.signature).toMatch(/^divergence:profile:/);
    expect(f.rule.id).toMatch(/^profile acme-bsd: /);
    expect(f.rule.cites).toMatch(/acme_vmm\.py/);
  }
  const entries = new Set(r.findings.map((f) => f.rule.id.replace('profile acme-bsd: ', '')));
  expect([...entries]).toEqual(expect.arrayContaining(['memory.unassigned-read', 'io.unassigned-read']));
});

for (const [bug, kind, signature, rule] of [
  ['shared-io', 'collision', 'collision:io:cross-root', 'isolation.io'],
  ['stale-bar', 'leak', /^leak:(io|memory):stale-mapping$/, 'isolation.stale-mapping'],
] as const) {
  test(`a real isolation bug (${bug}) is found, names the rule it breaks, and replays`, () => {
    const r = fuzz(`${TARGET} --bug ${bug}`, 400, '--profile', profile('acme-bsd'));
    expect(r.code).toBe(1);
    const f = r.findings.find((x) => x.kind === kind && (typeof signature === 'string' ? x.signature === signature : signature.test(x.signature)));
    expect(f, r.out).toBeDefined();
    expect(f!.rule.id).toBe(rule);
    const trace = join(r.dir, 'findings', f!.trace);
    // The recorded observations, the target again, the clean target, and explain.
    const recorded = isoroot('check', trace);
    expect(recorded.code).toBe(1);
    expect(recorded.out).toContain(f!.signature);
    const replayed = isoroot('check', trace, '--target', `${TARGET} --bug ${bug}`, '--profile', profile('acme-bsd'));
    expect(replayed.code, replayed.out + replayed.err).toBe(1);
    expect(replayed.out).toContain(`rests on: ${rule}`);
    expect(isoroot('check', trace, '--target', TARGET, '--profile', profile('acme-bsd')).code).toBe(0);
    const explained = isoroot('explain', trace);
    expect(explained.code, explained.err).toBe(0);
    expect(explained.out).toContain('acme');
  });
}
