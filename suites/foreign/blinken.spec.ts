/**
 * Foreign material over vfio-user: blinken (targets/blinken_vfu.py), a
 * vfio-user server written from the specification apart from isoroot, with
 * a device isoroot does not know. isoroot starts it itself (--server),
 * learns its device, and judges it by the specifications alone: clean
 * when it keeps to them; a departure (an error reply that carries a
 * payload, an access past a BAR's end served) is a finding that names the
 * rule and replays. A server that serves one client and exits, or keeps
 * its device's state across clients, is handled, or is a usage error that
 * names --server: never an internal error.
 */
import { test, expect } from '@playwright/test';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isoroot } from '../cli-run.ts';
import { openVfioUserTarget } from '../../harness/adapters/vfio-user/target.ts';
import { learnedLayout } from '../../harness/model/learned-layout.ts';
import type { CampaignFinding } from '../../harness/campaign/findings-store.ts';
import { requireProgram } from '../require.ts';

const SERVER = join(import.meta.dirname, 'targets', 'blinken_vfu.py');
const socketIn = (): string => join(mkdtempSync(join(tmpdir(), 'isoroot-blinken-')), 'blinken.sock');

test.beforeEach(() => requireProgram('python3', 'apt-get install python3'));

function fuzz(socket: string, server: string | null, runs: number): { code: number; out: string; dir: string; findings: CampaignFinding[] } {
  const dir = join(mkdtempSync(join(tmpdir(), 'isoroot-blinken-run-')), 'run');
  const r = isoroot('fuzz', '--target', `vfio-user:${socket}`, ...(server === null ? [] : ['--server', server]), '--runs', String(runs), '--seed', '2', '--out', dir);
  const fdir = join(dir, 'findings');
  const findings = existsSync(fdir)
    ? readdirSync(fdir)
        .filter((f) => f.endsWith('.finding.json'))
        .map((f) => JSON.parse(readFileSync(join(fdir, f), 'utf8')) as CampaignFinding)
    : [];
  return { code: r.code, out: r.out + r.err, dir, findings };
}

test('its device is learned from the server: config space, write masks, what REGION_INFO and IRQ_INFO say', async () => {
  const socket = socketIn();
  const t = await openVfioUserTarget([socket], { server: `python3 ${SERVER} {socket} --once` });
  try {
    const d = t.fixedTopology!.roots[0].devices[0];
    expect(d).toMatchObject({ kind: 'opaque', identity: { vendor: 0x1209, device: 0x5150 } });
    expect(d.learned?.regions).toEqual([0x1000, 0, 0x10, 0, 0, 0, 0, 0x100, 0]);
    expect(d.learned?.irqs).toEqual([1, 0, 0]); // INTx, MSI, MSI-X: the ones isoroot observes
    const lay = learnedLayout(d.learned!);
    expect(lay.bars.filter((b) => b !== undefined).map((b) => [b.region, b.kind, b.size])).toEqual([
      [0, 'mem32', 0x1000],
      [2, 'io', 0x10],
    ]);
    // Judged by the specifications alone: a foreign server declares no profile.
    expect(t.profile).toBeNull();
    expect(t.servers[0].starts).toBeGreaterThanOrEqual(1);
  } finally {
    await t.dispose();
  }
});

test('a server that keeps to the specification, serves one client and exits, yields no finding', () => {
  const r = fuzz(socketIn(), `python3 ${SERVER} {socket} --once`, 40);
  expect(r.code, r.out).toBe(0);
  expect(r.findings).toEqual([]);
  expect(r.out).not.toContain('internal error');
});

test('its departures are findings that name the rule, and replay on the server', () => {
  const socket = socketIn();
  const server = `python3 ${SERVER} {socket} --error-body --stale`;
  const r = fuzz(socket, server, 60);
  expect(r.code, r.out).toBe(1);
  const body = r.findings.find((f) => f.signature.endsWith('.reply.body'));
  expect(body, r.out).toBeDefined();
  expect(body!.kind).toBe('protocol');
  expect(body!.rule.id).toBe('protocol.vfio-user');
  const past = r.findings.find((f) => /region\.(read|write):unknown:status\(error>ok\)/.test(f.signature));
  expect(past, r.out).toBeDefined();
  expect(past!.rule.id).toBe('region.access');
  for (const f of [body!, past!]) {
    const trace = join(r.dir, 'findings', f.trace);
    expect(isoroot('check', trace).code).toBe(1);
    const again = isoroot('check', trace, '--target', `vfio-user:${socket}`, '--server', server);
    expect(again.code, again.out + again.err).toBe(1);
    expect(again.out).toContain(f.signature);
    // The same trace on a server without the departures passes.
    expect(isoroot('check', trace, '--target', `vfio-user:${socket}`, '--server', `python3 ${SERVER} {socket}`).code).toBe(0);
    expect(isoroot('explain', trace).code).toBe(0);
  }
});

test('a server that keeps its state across clients, or exits after one, without --server: a usage error naming --server', async () => {
  for (const flag of ['--keep-state', '--once']) {
    const socket = socketIn();
    const p = spawn('python3', [SERVER, socket, flag], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 1200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
      const r = fuzz(socket, null, 30);
      expect(r.code, r.out).toBe(2);
      expect(r.out).toContain('--server');
      expect(r.out).not.toContain('internal error');
    } finally {
      p.kill('SIGKILL');
    }
  }
});
