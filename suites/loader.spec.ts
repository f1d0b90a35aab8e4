/**
 * How isoroot runs its TypeScript (bin/register.mjs): tsx, without the
 * class-name blocks tsx adds (they made V8 build instances slowly). A
 * class keeps its name, and an error still points at the TypeScript line
 * and column it was thrown from (the blocks are blanked, not removed).
 */
import { expect, test } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REGISTER = join(import.meta.dirname, '..', 'bin', 'register.mjs');

test('a class run through bin/register.mjs keeps its name, has no name block, and errors point at the TypeScript source', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-loader-'));
  const file = join(dir, 'probe.ts');
  // An ES module, as isoroot's own sources are (bin/register.mjs registers tsx's ESM hooks).
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  // Line 4, column 11 is where the Error is built.
  writeFileSync(
    file,
    [
      'class Probe { readonly n: number = 1; }',
      'export class Sub extends Probe { m = 2; }',
      'console.log(JSON.stringify({ name: Sub.name, base: Probe.name, block: Sub.toString().includes("__name"), n: new Sub().n + new Sub().m }));',
      'const e = new Error("where");',
      'console.log(e.stack!.split("\\n")[1]);',
    ].join('\n'),
  );
  const r = spawnSync(process.execPath, ['--import', REGISTER, file], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const [facts, frame] = r.stdout.trim().split('\n');
  expect(JSON.parse(facts)).toEqual({ name: 'Sub', base: 'Probe', block: false, n: 3 });
  expect(frame).toContain(`${file}:4:11`);
});
