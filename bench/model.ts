/**
 * npm run bench:model — the model's speed goals (issue: Core, Performance):
 *  1. ops/s of the model target with all four oracles on, 4 roots and 32
 *     devices, over 200 000 generated operations: as one stream (goal:
 *     400 000 ops/s on one core), and with a fresh target and checker per
 *     sequence as campaigns run them (goal: 100 000 ops/s). Each is measured
 *     in a process of its own, as a campaign worker is: run after the long
 *     stream in the same process, the fresh case inherited V8's pretenuring
 *     decisions and ran at 58 000 instead of 147 000 ops/s;
 *  2. per-operation cost at 1 000, 10 000 and 100 000 live IOMMU mappings
 *     (goal: no faster than logarithmic growth);
 *  3. checking a 1 000 000-operation trace from a file, streamed, in a
 *     separate process: peak RSS (goal: under 300 MB).
 */
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../harness/model/model.ts';
import { OBSERVES_ALL } from '../harness/ops/observation.ts';
import { TraceChecker } from '../harness/oracles/checker.ts';
import { sequenceArb } from '../generators/sequence.ts';
import { TraceWriter } from '../harness/trace/writer.ts';
import { walkDevices } from '../harness/topology/types.ts';
import type { Op } from '../harness/ops/catalog.ts';
import { BENCH_TOPOLOGY } from './topology.ts';
import { ISOROOT_VERSION } from '../harness/version.ts';

const OBSERVES = OBSERVES_ALL;
const t = BENCH_TOPOLOGY;
const devices = [...walkDevices(t)].length;

function generate(n: number, seed: number): Op[][] {
  const arb = sequenceArb(t, undefined, { maxFragments: 40 });
  const seqs: Op[][] = [];
  let total = 0;
  for (const s of fc.sample(arb, { numRuns: Math.ceil(n / 20), seed })) {
    seqs.push(s);
    total += s.length;
    if (total >= n) break;
  }
  while (total < n) {
    const more = fc.sample(arb, { numRuns: 500, seed: seed + seqs.length });
    for (const s of more) {
      seqs.push(s);
      total += s.length;
      if (total >= n) break;
    }
  }
  return seqs;
}

/** All sequences as one stream through one model target and one checker (reference model + oracles). */
function runStream(seqs: Op[][]): { ops: number; ms: number; violations: number } {
  const target = new Model(t);
  const checker = new TraceChecker(t, OBSERVES);
  let ops = 0;
  const start = performance.now();
  for (const s of seqs) {
    for (const op of s) checker.step(op, target.apply(op));
    ops += s.length;
  }
  return { ops, ms: performance.now() - start, violations: checker.violations };
}

/** Each sequence on a fresh target and a fresh checker, as fuzz runs them. */
function runChecked(seqs: Op[][]): { ops: number; ms: number; violations: number } {
  let ops = 0;
  let violations = 0;
  const start = performance.now();
  for (const s of seqs) {
    const target = new Model(t);
    const checker = new TraceChecker(t, OBSERVES);
    for (const op of s) checker.step(op, target.apply(op));
    violations += checker.violations;
    ops += s.length;
  }
  return { ops, ms: performance.now() - start, violations };
}

const STREAM_GOAL = 400_000;
const FRESH_GOAL = 100_000;

/** One throughput case, in this process: prints a JSON line for the parent. */
function throughputCase(which: 'stream' | 'fresh'): void {
  const seqs = generate(200_000, 1);
  const run = which === 'stream' ? runStream : runChecked;
  run(seqs.slice(0, 200)); // warm-up
  const best = [0, 1, 2].map(() => run(seqs)).sort((a, b) => a.ms - b.ms)[0];
  console.log(JSON.stringify({ ...best, sequences: seqs.length }));
}

/** Runs one throughput case in a fresh process (see the header for why). */
function throughputChild(which: 'stream' | 'fresh'): { ops: number; ms: number; violations: number; sequences: number } {
  const child = spawnSync(process.execPath, [...process.execArgv, import.meta.filename, `--case=${which}`], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`bench case ${which} failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!);
}

function throughput(): void {
  const st = throughputChild('stream');
  const rate = Math.round(st.ops / (st.ms / 1000));
  console.log(`1. model + 4 oracles, ${t.roots.length} roots, ${devices} devices: ${st.ops.toLocaleString('en')} generated ops in ${st.ms.toFixed(0)} ms = ${rate.toLocaleString('en')} ops/s (goal ${STREAM_GOAL.toLocaleString('en')}; ${st.violations} violations, expected 0)`);
  const fz = throughputChild('fresh');
  console.log(`   as fuzz runs them, a fresh target and checker per sequence (${fz.sequences} sequences, ${(fz.ops / fz.sequences).toFixed(0)} ops each): ${Math.round(fz.ops / (fz.ms / 1000)).toLocaleString('en')} ops/s (goal ${FRESH_GOAL.toLocaleString('en')}), ${Math.round(fz.sequences / (fz.ms / 1000)).toLocaleString('en')} sequences/s; ${fz.violations} violations, expected 0`);
}

/** Per-operation cost with n live mappings: DMA reads, maps and unmaps, config reads. */
function perOpCost(n: number): number {
  const target = new Model(t);
  const checker = new TraceChecker(t, OBSERVES);
  const apply = (op: Op): void => void checker.step(op, target.apply(op));
  apply({ op: 'cfg.write', root: 0, via: 'ecam', bdf: 1 << 3, reg: 0x04, size: 2, value: 0x6n });
  const PAGE = 0x1000;
  for (let i = 0; i < n; i++) apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x1000_0000 + i * 2 * PAGE, size: PAGE, gpa: (i % 1024) * PAGE, perm: 'rw' });
  if (target.liveMappings !== n) throw new Error(`expected ${n} live mappings, have ${target.liveMappings}`);
  const rnd = fc.sample(fc.nat(n - 1), { numRuns: 20_000, seed: n });
  const ops: Op[] = [];
  for (const k of rnd) {
    const iova = 0x1000_0000 + k * 2 * PAGE;
    ops.push({ op: 'dma.read', dev: 'r0ep1', iova, len: 8 });
    ops.push({ op: 'dma.map', root: 0, domain: 0, iova: iova + PAGE, size: PAGE, gpa: 0, perm: 'r' });
    ops.push({ op: 'dma.unmap', root: 0, domain: 0, iova: iova + PAGE, size: PAGE });
    ops.push({ op: 'cfg.read', root: 0, via: 'ecam', bdf: 1 << 3, reg: 0, size: 4 });
  }
  const times: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    const s = performance.now();
    for (const op of ops) apply(op);
    times.push(performance.now() - s);
  }
  return (Math.min(...times) * 1e6) / ops.length;
}

function scaling(): void {
  const sizes = [1_000, 10_000, 100_000];
  const ns = sizes.map(perOpCost);
  const line = sizes.map((n, i) => `${n.toLocaleString('en')}: ${ns[i].toFixed(0)} ns/op`).join(', ');
  const growth = ns[2] / ns[0];
  console.log(`2. per-op cost by live IOMMU mappings: ${line}; 100x more mappings costs ${growth.toFixed(2)}x (log2 ratio ${(Math.log2(100_000) / Math.log2(1_000)).toFixed(2)}x)`);
}

function streaming(): void {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-bench-'));
  const file = join(dir, 'million.jsonl');
  const target = new Model(t);
  const w = new TraceWriter(file, {
    format: 'isoroot-trace',
    version: 1,
    topology: t,
    target: { name: 'model', version: ISOROOT_VERSION, observes: OBSERVES },
    seed: 2,
    isoroot: ISOROOT_VERSION,
    time: new Date().toISOString(),
  });
  let n = 0;
  for (const s of generate(200_000, 2)) for (const op of s) {
    if (n >= 1_000_000) break;
    w.write({ op, obs: target.apply(op) });
    n++;
  }
  // Repeat the generated operations to reach a million: the checker replays them all.
  const seqs = generate(200_000, 3);
  while (n < 1_000_000) for (const s of seqs) for (const op of s) {
    if (n >= 1_000_000) break;
    w.write({ op, obs: target.apply(op) });
    n++;
  }
  w.close();
  const mb = (statSync(file).size / 2 ** 20).toFixed(0);
  const child = spawnSync(process.execPath, ['--import', join(import.meta.dirname, '../bin/register.mjs'), join(import.meta.dirname, 'check-rss.ts'), file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (child.status !== 0 && child.status !== 1) throw new Error(`check failed: ${child.stderr}`);
  const m = /rss=(\d+) ms=(\d+)/.exec(child.stdout);
  if (m === null) throw new Error(`no measurement in: ${child.stdout}`);
  console.log(`3. check of a ${n.toLocaleString('en')}-op trace (${mb} MB) streamed from disk: peak RSS ${Math.round(Number(m[1]) / 1024)} MB (goal < 300 MB), ${(Number(m[2]) / 1000).toFixed(1)} s`);
}

const only = process.argv.find((a) => a.startsWith('--case='))?.slice('--case='.length);
if (only === 'stream' || only === 'fresh') throughputCase(only);
else {
  console.log(`isoroot ${ISOROOT_VERSION} bench:model on node ${process.version}, one core`);
  throughput();
  scaling();
  streaming();
}
