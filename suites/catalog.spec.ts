/**
 * The operation catalog decides (harness/ops/catalog.ts): what an op is
 * (its family, the space a root routes it through, whether it may signal,
 * remove pins, or is a dialogue) is declared there once, and every
 * dispatch on the kind is exhaustive, so a new operation does not compile
 * until each place handles it or declares it unsupported.
 */
import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CATALOG, OP_KINDS, isDialogue, isRouted, mayRemovePins, maySignal, needs, reads, routeSpace, specOf, writeValue, type Op } from '../harness/ops/catalog.ts';
import { parseOp } from '../harness/ops/codec.ts';
import { JsonReader } from '../harness/util/json-read.ts';

const ROOT = resolve(import.meta.dirname, '..');

/** One op of each kind, with every field given (the smallest legal values). */
function sample(kind: (typeof OP_KINDS)[number]): Op {
  const json: Record<string, unknown> = { op: kind };
  for (const [k, f] of Object.entries(specOf(kind).fields)) {
    const v = { root: 0, via: 'ecam', bdf: '00:01.0', reg: 0, size: 4, value: '0x1', addr: 0x1000, port: 0x1000, domain: 0, iova: 0x1000, gpa: 0x1000, perm: 'rw', dev: 'd', len: 4, data: '00', pasid: 1, emulator: 'e', space: 'mmio', start: 0x1000, region: 0, offset: 0, count: 4, ns: 1, driver: 'vfio-pci', container: 0, type: 'type1v2' }[k];
    // VFIO region accesses name their way in (pread or mmap) in a field of the same name as config's.
    if (k === 'via' && kind.startsWith('vfio.')) json[k] = 'pread';
    else if (v !== undefined) json[k] = v;
    if (v === undefined && !f.optional) throw new Error(`no sample value for field ${k} of ${kind}`);
  }
  return parseOp(new JsonReader((p) => `sample ${kind}: ${p}`), '', json);
}

test('the catalog declares what each op is, and the questions asked of an op read it', () => {
  for (const kind of OP_KINDS) {
    const op = sample(kind);
    const s = CATALOG[kind];
    expect(routeSpace(op), kind).toBe(s.space);
    expect(isRouted(op), kind).toBe(s.space !== null);
    expect(reads(op), kind).toBe(s.reads);
    expect(maySignal(op), kind).toBe(s.signals);
    expect(mayRemovePins(op), kind).toBe(s.removesPins);
    expect(isDialogue(op), kind).toBe(s.dialogue);
    expect(needs(op, s.needs), kind).toBe(true);
    // A routed access names its root; a write carries the value it writes.
    if (s.space !== null && s.space !== 'dma') expect('root' in op, kind).toBe(true);
    expect(writeValue(op) !== null, kind).toBe('value' in s.fields);
    // A bus read has no side effect on a conforming device: it cannot signal.
    if (s.reads && s.space !== null && s.space !== 'dma') expect(s.signals, kind).toBe(false);
  }
});

test('a new operation does not compile until every dispatch handles it or declares it unsupported', () => {
  test.setTimeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-catalog-'));
  try {
    for (const d of ['harness', 'generators']) cpSync(join(ROOT, d), join(dir, d), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ ...tsconfig, include: ['harness', 'generators'] }));
    const catalog = join(dir, 'harness/ops/catalog.ts');
    const text = readFileSync(catalog, 'utf8');
    const end = text.lastIndexOf('} as const;');
    expect(end).toBeGreaterThan(0);
    // A bus-like op (not a dialogue) and a dialogue: each reaches a different set of dispatches.
    const probe = (dialogue: boolean): string =>
      `  'probe.op': spec({ doc: 'a probe', needs: 'config', reads: false, space: null, signals: true, removesPins: false, dialogue: ${dialogue}, fields: { dev: F.dev() } }),\n`;
    const failing = (dialogue: boolean): Set<string> => {
      writeFileSync(catalog, text.slice(0, end) + probe(dialogue) + text.slice(end));
      let out = '';
      try {
        execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', dir], { cwd: dir, encoding: 'utf8' });
      } catch (e) {
        out = String((e as { stdout?: string }).stdout ?? '');
      }
      return new Set([...out.matchAll(/^([\w/.-]+\.ts)\(\d+,\d+\): error/gm)].map((m) => m[1]));
    };
    const everywhere = ['harness/model/model.ts', 'harness/model/register-rules.ts', 'harness/report/trace-table.ts', 'harness/adapters/vfio-user/session.ts', 'generators/guard.ts'];
    const exchange = failing(false);
    for (const f of [...everywhere, 'harness/adapters/qemu/access.ts']) expect([...exchange], `a new exchange op must not compile in ${f}`).toContain(f);
    const dialogue = failing(true);
    for (const f of [...everywhere, 'harness/adapters/qemu/session.ts']) expect([...dialogue], `a new dialogue op must not compile in ${f}`).toContain(f);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
