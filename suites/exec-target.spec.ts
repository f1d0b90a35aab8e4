/**
 * The out-of-process target protocol, with the example target written in
 * Python (harness/adapters/exec/example/endpoint_target.py): it passes a
 * fuzz campaign, its injected bug is found, and a target that crashes,
 * hangs or talks nonsense becomes a finding, never a harness crash.
 */
import { test, expect } from '@playwright/test';
import { requireProgram } from './require.ts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { openExecTarget } from '../harness/adapters/exec/target.ts';
import { quietCampaign, tracePath } from '../harness/campaign/catch.ts';
import type { CampaignResult } from '../harness/campaign/coordinator.ts';
import type { TargetChoice } from '../harness/adapters/select.ts';
import { readTrace } from '../harness/trace/reader.ts';
import { InputError } from '../harness/util/errors.ts';
import { TargetFailed } from '../harness/adapters/target.ts';


test.beforeEach(() => requireProgram('python3', 'apt-get install python3'));
const PY = `python3 ${join(import.meta.dirname, '..', 'harness', 'adapters', 'exec', 'example', 'endpoint_target.py')}`;
/** A campaign on an exec target, run by the engine `isoroot fuzz --target exec:...` runs. */
async function campaign(command: string, seed: number, runs: number, more: Partial<TargetChoice> = {}, stopWhen?: (sig: string) => boolean): Promise<{ r: CampaignResult; dir: string }> {
  const dir = test.info().outputPath(`campaign-${randomUUID()}`);
  const r = await quietCampaign({ spec: `exec:${command}`, ...more }, { dir, seed, runs, ...(stopWhen !== undefined ? { stopWhen: (f) => stopWhen(f.signature) } : {}) });
  return { r, dir };
}

const survivors = (marker: string): string => {
  try {
    // pgrep run directly, not through a shell whose own command line would match.
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};

test('the Python target declares what it supports and passes 1500 generated sequences', async () => {
  const t = await openExecTarget(PY);
  try {
    expect(t.info).toEqual({ name: 'python-endpoint', version: '1.0' });
    expect(t.capabilities.ops).toEqual(['config', 'mmio', 'pio']);
    expect(t.capabilities.contract).toMatchObject({ memory: 'isolated', io: 'isolated' });
  } finally {
    await t.dispose();
  }
  const { r } = await campaign(PY, 5, 1500);
  expect(r.findings).toEqual([]);
  expect(r.known).toEqual([]);
  expect(r.summary.runs).toBe(1500);
});

test('its injected stale-BAR bug is found as a leak, shrunk to a few operations', async () => {
  const { r, dir } = await campaign(`${PY} --bug stale-bar`, 5, 3000, {}, (sig) => sig === 'leak:memory:stale-mapping');
  const f = r.stoppedBy?.finding;
  expect(f).toMatchObject({ kind: 'leak', signature: 'leak:memory:stale-mapping' });
  expect(f!.ops).toBeLessThanOrEqual(6);
  expect((await readTrace(tracePath(dir, f!))).steps).toHaveLength(f!.ops);
});

test('a target that dies is a crash finding carrying its stderr', async () => {
  const { r } = await campaign(`${PY} --crash-after 3`, 5, 200, {}, () => true);
  const f = r.findings[0];
  expect(f).toMatchObject({ kind: 'crash', index: 3 });
  expect(f.message).toContain('exited with status 3');
  expect(f.details?.stderr).toContain('crashing on purpose at op 3');
});

test('a target that stops answering is a hang finding, and is killed', async () => {
  const marker = `hang-${randomUUID()}`;
  const { r } = await campaign(`${PY} --hang-after 1 --marker ${marker}`, 5, 20, { timeoutMs: 300 }, () => true);
  expect(r.findings[0]).toMatchObject({ kind: 'hang', index: 1 });
  expect(survivors(marker)).toBe('');
});

test('a protocol violation is a crash finding that names what was wrong', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-bad-target-'));
  const script = join(dir, 'bad.sh');
  const hello = JSON.stringify({
    type: 'hello',
    protocol: 'isoroot-target',
    version: 1,
    target: { name: 'bad', version: '0' },
    capabilities: { ops: ['mmio'], maxRoots: 1, personalities: ['endpoint'], caps: [], vias: ['ecam'], observes: { delivery: false, irqs: false }, contract: 'topology' },
  });
  writeFileSync(script, `read l\necho '${hello}'\nwhile read l; do case "$l" in *open*) echo '{"type":"opened"}';; *op*) echo '{"type":"obs","seq":0,"obs":{"status":"maybe"}}';; *close*) echo '{"type":"closed"}';; esac; done\n`);
  const { r } = await campaign(`sh ${script}`, 1, 50, {}, () => true);
  const f = r.findings[0];
  expect(f.kind).toBe('crash');
  expect(f.message).toMatch(/protocol: target's obs message at obs\.status: expected one of ok, ur, ma, fault, error, got "maybe"/);
});

test('a session applies one operation at a time too; a target that dies throws TargetFailed', async () => {
  const t = await openExecTarget(`${PY} --crash-after 1`);
  try {
    const s = await t.open({ roots: [{ bus: 0, busLimit: 255, cf8: true, devices: [{ id: 'a', kind: 'endpoint', slot: 3, fn: 0, bars: [{ kind: 'mem32', size: 0x1000 }] }] }] });
    expect(await s.apply({ op: 'cfg.read', root: 0, via: 'cf8', bdf: 3 << 3, reg: 0, size: 4 })).toEqual({ status: 'ok', value: 0x11001b36n, to: { root: 0, dev: 'a', region: 'cfg', offset: 0 } });
    await expect(s.apply({ op: 'cfg.read', root: 0, via: 'ecam', bdf: 3 << 3, reg: 0, size: 4 })).rejects.toThrow(TargetFailed);
    await s.close();
  } finally {
    await t.dispose();
  }
});

test('a program that does not complete the handshake is an input error, not a hang', async () => {
  await expect(openExecTarget('true')).rejects.toThrow(InputError);
  await expect(openExecTarget('echo hello')).rejects.toThrow(/target sent a line that is not JSON/);
});

test('no target process outlives the harness', async () => {
  const marker = `live-${randomUUID()}`;
  const t = await openExecTarget(`${PY} --marker ${marker}`);
  expect(survivors(marker)).not.toBe('');
  await t.dispose();
  expect(survivors(marker)).toBe('');
  // A campaign's workers each start their own; none is left when it ends.
  const { r } = await campaign(`${PY} --marker ${marker}`, 9, 10, {});
  expect(r.summary.runs).toBe(10);
  expect(survivors(marker)).toBe('');
});
