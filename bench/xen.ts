/**
 * npm run bench:xen — operations per second through Xen's vPCI (issue 14):
 *  1. xen-vpci-agent alone: 4-byte config reads through the hardware
 *     domain's MMCFG region (vpci_mmcfg_read -> vpci_read -> the host
 *     device), lockstep (one command in flight) and pipelined (--window
 *     commands per batch);
 *  2. the target: a fuzz campaign on `--target xen-vpci` (hwdom), one and
 *     two workers, sequences and operations per second, and where a
 *     sequence's time goes (agent start and domain build, the run, the
 *     check).
 * Options: --seconds S (default 3), --window N (default 256), --runs N (default 2000).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureXenAgent, findXenTree, xenVersion, X, XenAgent } from '../harness/adapters/xen/agent.ts';
import { runQuiet } from '../harness/campaign/catch.ts';
import { campaignConfig } from '../harness/campaign/run-dir.ts';
import { showPhases } from '../harness/run/phases.ts';
import { arg } from './args.ts';

const SECONDS = Number(arg('seconds', '3'));
const WINDOW = Number(arg('window', '256'));
const RUNS = Number(arg('runs', '2000'));
const fmt = (n: number): string => Math.round(n).toLocaleString('en');

async function agentRate(binary: string, window: number): Promise<number> {
  const a = XenAgent.start(binary);
  try {
    await a.run([X.domainNew('hwdom', 0x800_0000), X.mmcfg(0, 0, 0xb000_0000, 0, 0xff), X.devAddRaw(0, '0000:00:03.0', 'bar0=0x4000 msi=1'), X.devAssign(0, '0000:00:03.0')]);
    const batch = Array.from({ length: window }, () => X.memRead(0, 0xb001_8000, 4));
    const until = Date.now() + SECONDS * 1000;
    let done = 0;
    const t0 = process.hrtime.bigint();
    while (Date.now() < until) {
      await a.run(batch);
      done += window;
    }
    return done / (Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    await a.dispose();
  }
}

async function main(): Promise<void> {
  const found = findXenTree();
  if ('why' in found) throw new Error(`no Xen tree: ${found.why} (scripts/xen-source.sh fetches Debian's)`);
  const binary = await ensureXenAgent({ tree: found.tree });
  console.log(`node ${process.version}; Xen ${xenVersion(found.tree)} from ${found.tree}; ${SECONDS} s per rate`);
  const lock = await agentRate(binary, 1);
  const pipe = await agentRate(binary, WINDOW);
  console.log(`1. xen-vpci-agent, 4-byte MMCFG config reads: lockstep ${fmt(lock)} reads/s; pipelined (${WINDOW} per batch) ${fmt(pipe)} reads/s`);

  const base = mkdtempSync(join(tmpdir(), 'isoroot-bench-xen-'));
  for (const workers of [1, 2]) {
    const c = campaignConfig({ target: 'xen-vpci', known: 'corpora/xen', seed: 5, workers, budget: { runs: RUNS } });
    const r = await runQuiet(c, join(base, `w${workers}`));
    const s = r.summary;
    console.log(`2. --target xen-vpci, ${workers} worker${workers > 1 ? 's' : ''}: ${s.sequencesPerSecond} sequences/s, ${s.opsPerSecond.toLocaleString('en')} ops/s (${s.runs} sequences, ${(s.ops / Math.max(1, s.runs)).toFixed(0)} ops each)`);
    if (workers === 1) console.log(`   per sequence: ${s.phases === undefined ? 'no phases recorded' : showPhases(s.phases, s.runs)}`);
  }
}

await main();
