/**
 * The out-of-process target protocol, with the example target written in
 * Python (harness/adapters/exec/example/endpoint_target.py): it passes a
 * fuzz campaign, its injected bug is found, and a target that crashes,
 * hangs or talks nonsense becomes a finding, never a harness crash.
 */
import { test, expect } from '@playwright/test';
import { requireProgram } from './require.ts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
    // It has a bus (mmio, pio) and asks isoroot to lower config operations onto it: isoroot then carries out config too.
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
  // The target counts the bus accesses it was sent (a config operation is one or two); the finding names the operation.
  expect(f.kind).toBe('crash');
  expect(f.index).toBeLessThanOrEqual(3);
  expect(f.message).toContain('exited with status 3');
  expect(f.details?.stderr).toContain('crashing on purpose at op 3');
});

test('a target that stops answering is a hang finding, and is killed', async () => {
  const marker = `hang-${randomUUID()}`;
  const { r } = await campaign(`${PY} --hang-after 1 --marker ${marker}`, 5, 20, { timeoutMs: 300 }, () => true);
  expect(r.findings[0].kind).toBe('hang');
  expect(r.findings[0].index).toBeLessThanOrEqual(1);
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
  // A config read through CF8/CFC is two bus accesses (the latch, the data port): the target dies at the third.
  const t = await openExecTarget(`${PY} --crash-after 2`);
  try {
    const s = await t.open({ roots: [{ bus: 0, busLimit: 255, cf8: true, devices: [{ id: 'a', kind: 'endpoint', slot: 3, fn: 0, bars: [{ kind: 'mem32', size: 0x1000 }] }] }] });
    expect(await s.apply({ op: 'cfg.read', root: 0, via: 'cf8', bdf: 3 << 3, reg: 0, size: 4 })).toEqual({ status: 'ok', value: 0x11001b36n, to: { root: 0, dev: 'a', region: 'cfg', offset: 0 } });
    await expect(s.apply({ op: 'cfg.read', root: 0, via: 'ecam', bdf: 3 << 3, reg: 0, size: 4 })).rejects.toThrow(TargetFailed);
    await s.close();
  } finally {
    await t.dispose();
  }
});

test('config over the bus: isoroot sends a config operation as the accesses of its mechanism, and refuses a target that lacks them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-bus-target-'));
  const log = join(dir, 'ops.log');
  const script = join(dir, 'bus.sh');
  const hello = (ops: string[]): string => JSON.stringify({
    type: 'hello',
    protocol: 'isoroot-target',
    version: 1,
    target: { name: 'bus', version: '0' },
    capabilities: { ops, configOverBus: true, maxRoots: 1, personalities: ['endpoint'], caps: [], vias: ['ecam', 'cf8'], observes: { delivery: false, irqs: false }, contract: 'topology' },
  });
  // A bus that reads all ones and records what it was sent.
  writeFileSync(script, `read l\necho '${hello(['mmio', 'pio'])}'\nwhile read l; do echo "$l" >> ${log}; case "$l" in *'"type":"open"'*) echo '{"type":"opened"}';; *'"type":"op"'*) s=$(echo "$l" | sed 's/.*"seq":\\([0-9]*\\).*/\\1/'); case "$l" in *read*) echo "{\\"type\\":\\"obs\\",\\"seq\\":$s,\\"obs\\":{\\"status\\":\\"ok\\",\\"value\\":\\"0xffffffff\\"}}";; *) echo "{\\"type\\":\\"obs\\",\\"seq\\":$s,\\"obs\\":{\\"status\\":\\"ok\\"}}";; esac;; *close*) echo '{"type":"closed"}';; esac; done\n`);
  const t = await openExecTarget(`sh ${script}`);
  try {
    expect(t.capabilities.ops).toEqual(['config', 'mmio', 'pio']);
    const s = await t.open({ roots: [{ bus: 0, busLimit: 255, cf8: true, devices: [] }] });
    const r = await s.run([
      { op: 'cfg.read', root: 0, via: 'cf8', bdf: (1 << 8) | (3 << 3), reg: 0x06, size: 2 },
      { op: 'cfg.write', root: 0, via: 'ecam', bdf: 3 << 3, reg: 0x04, size: 2, value: 6n },
    ]);
    expect(r.failure).toBeUndefined();
    expect(r.observations).toEqual([{ status: 'ok', value: 0xffffffffn }, { status: 'ok' }]);
    await s.close();
  } finally {
    await t.dispose();
  }
  const sent = readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"type":"op"')).map((l) => (JSON.parse(l) as { op: unknown }).op);
  expect(sent).toEqual([
    { op: 'pio.write', root: 0, port: '0xcf8', size: 4, value: '0x80011804' },
    { op: 'pio.read', root: 0, port: '0xcfe', size: 2 },
    { op: 'mmio.write', root: 0, addr: '0xb0018004', size: 2, value: '0x6' },
  ]);
  // ECAM and CF8 need memory and port accesses: a target that has no pio cannot take CF8 config over its bus.
  writeFileSync(script, `read l\necho '${hello(['mmio'])}'\nread l\n`);
  await expect(openExecTarget(`sh ${script}`)).rejects.toThrow(/capabilities\.ops.*pio among the ops/);
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
