/**
 * Profiles are data that narrow what the specifications allow, never
 * widen it: every built-in one reads, a profile's entries must name a
 * choice and one of its options, and a bad file is an error naming the
 * file, the path and what was expected. Every rule and choice cites where
 * it is written.
 */
import { test, expect } from '@playwright/test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinProfiles, loadProfile, parseProfile, profileFor } from '../../harness/profiles/profile.ts';
import { CHOICES, CHOICE_IDS } from '../../harness/spec/choices.ts';
import { RULES } from '../../harness/spec/rules.ts';
import { OP_RULES } from '../../harness/model/register-rules.ts';
import { OP_KINDS } from '../../harness/ops/catalog.ts';
import { isoroot } from '../cli-run.ts';

test('every built-in profile reads, and picks only options its choices allow', () => {
  expect(builtinProfiles()).toEqual(expect.arrayContaining(['qemu-7.2', 'qemu-11', 'linux-vfio-pci', 'isoroot-server']));
  for (const name of builtinProfiles()) {
    const p = loadProfile(name);
    expect(p.name).toBe(name);
    for (const [id, e] of Object.entries(p.choices)) {
      expect(Object.keys(CHOICES[id as keyof typeof CHOICES].options)).toContain(e.option);
      expect(e.because.trim()).not.toBe('');
    }
  }
  // Targets find theirs by version: the longest matching prefix.
  expect(profileFor('qemu', '7.2.22, accel tcg')?.name).toBe('qemu-7.2');
  expect(profileFor('qemu', '11.1.3')?.name).toBe('qemu-11');
  expect(profileFor('qemu', '9.2.0')).toBeNull();
});

test('every rule and every choice says where it is written; every op kind has a rule', () => {
  for (const [id, r] of Object.entries(RULES)) {
    expect(r.cites.trim(), id).not.toBe('');
    expect(r.says.trim(), id).not.toBe('');
  }
  for (const id of CHOICE_IDS) {
    expect(CHOICES[id].cites.trim()).not.toBe('');
    expect(Object.keys(CHOICES[id].options).length, id).toBeGreaterThanOrEqual(1);
  }
  for (const k of OP_KINDS) expect(RULES[OP_RULES[k]], k).toBeDefined();
});

test('a profile cannot widen what the specifications allow, and a bad one names the file, the path and what was expected', () => {
  const where = (p: string): string => `f.json: ${p}`;
  expect(() => parseProfile({ profile: 'x', describes: 'd', choices: { 'memory.unassigned-read': { option: 'fives', because: 'b' } } }, where)).toThrow(
    /f\.json: profile\.choices\.memory\.unassigned-read\.option: expected one of ones, zeros, got "fives"/,
  );
  expect(() => parseProfile({ profile: 'x', describes: 'd', choices: { 'isolation.memory': { option: 'shared', because: 'b' } } }, where)).toThrow(/profile\.choices\.isolation\.memory: a choice of harness\/spec\/choices\.ts/);
  expect(() => parseProfile({ profile: 'x', describes: 'd', choices: { 'memory.unassigned-read': { option: 'ones', because: ' ' } } }, where)).toThrow(/because: where the implementation makes this choice/);
  expect(() => parseProfile({ profile: 'x', describes: 'd', errno: { 'past-end': { errno: 'EWHAT', because: 'b' } } }, where)).toThrow(/errno\.past-end\.errno: expected an errno name/);
  expect(() => parseProfile({ profile: 'x', describes: 'd', errno: { nonsense: { errno: 'EIO', because: 'b' } } }, where)).toThrow(/errno\.nonsense: a refusal reason/);
  expect(() => parseProfile({ profile: 'X Y', describes: 'd' }, where)).toThrow(/profile\.profile: expected a name/);

  const dir = mkdtempSync(join(tmpdir(), 'isoroot-profile-'));
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{"profile": "bad", "describes": "d", "choices": {"io.unassigned-read": {"option": "maybe", "because": "b"}}}');
  const r = isoroot('check', join(import.meta.dirname, '..', '..', 'corpora', 'model', 'stale-bar.jsonl'), '--profile', bad);
  expect(r.code).toBe(2);
  expect(r.err).toContain(`${bad}: profile.choices.io.unassigned-read.option: expected one of ones, zeros, got "maybe"`);
  const none = isoroot('check', join(import.meta.dirname, '..', '..', 'corpora', 'model', 'stale-bar.jsonl'), '--profile', 'no-such-profile');
  expect(none.code).toBe(2);
  expect(none.err).toMatch(/--profile: a built-in profile \(.*qemu-7\.2.*\) or a profile file, got "no-such-profile"/);
});
