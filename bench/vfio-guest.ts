/**
 * npm run bench:vfio-guest — Linux's VFIO in a guest (issue 16):
 *  1. boot: QEMU's start to the agent's ready line, and to the first
 *     session (a scan placing the topology's devices);
 *  2. operations per second through the target's session, lockstep (one
 *     VFIO op, one agent round trip: a config-space pread through
 *     vfio-pci), and the agent pipelined (--window requests in flight);
 *  3. the per-sequence overhead: a session's end and the next one's start
 *     on the same guest (files closed, boot drivers bound back, scan);
 *  4. a campaign (--runs sequences, one worker): sequences and ops per
 *     second, and where a sequence's time goes.
 * Options: --seconds S (default 3), --window N (default 50), --runs N (default 200), --qemu PATH.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openGuestTarget } from '../harness/adapters/vfio-guest/target.ts';
import type { GuestSession } from '../harness/adapters/vfio-guest/session.ts';
import { runQuiet } from '../harness/campaign/catch.ts';
import { campaignConfig } from '../harness/campaign/run-dir.ts';
import type { Op } from '../harness/ops/catalog.ts';
import { showPhases } from '../harness/run/phases.ts';
import type { Topology } from '../harness/topology/types.ts';
import { arg } from './args.ts';

const SECONDS = Number(arg('seconds', '3'));
const WINDOW = Number(arg('window', '50'));
const RUNS = Number(arg('runs', '200'));
const QEMU = arg('qemu', 'qemu-system-x86_64');
const fmt = (n: number): string => Math.round(n).toLocaleString('en');

const TOPOLOGY: Topology = {
  roots: [
    {
      bus: 0,
      busLimit: 0x3f,
      devices: [
        { id: 'a', kind: 'root-port', slot: 3, fn: 0, children: [{ id: 'eduA', kind: 'edu', slot: 0, fn: 0 }] },
        { id: 'b', kind: 'root-port', slot: 4, fn: 0, children: [{ id: 'eduB', kind: 'edu', slot: 0, fn: 0 }] },
      ],
    },
  ],
};

const SETUP: Op[] = [
  { op: 'vfio.bind', dev: 'eduA', driver: 'vfio-pci' },
  { op: 'vfio.group.open', dev: 'eduA' },
  { op: 'vfio.container.open', container: 0 },
  { op: 'vfio.set-container', dev: 'eduA', container: 0 },
  { op: 'vfio.set-iommu', container: 0, type: 'type1v2' },
  { op: 'vfio.device.open', dev: 'eduA' },
];

async function main(): Promise<void> {
  const target = openGuestTarget({ qemu: QEMU });
  const t = target.prepare!(TOPOLOGY);
  const t0 = Date.now();
  let s = await target.open(t);
  const first = Date.now() - t0;
  console.log(`guest: ${target.image.parts.join(', ')}; QEMU ${QEMU}`);
  console.log(`1. boot: ${fmt(target.boots[0])} ms to the agent's ready line; ${fmt(first)} ms to the first session`);
  await s.run(SETUP);
  const read: Op = { op: 'vfio.region.read', dev: 'eduA', region: 7, offset: 0, size: 4, via: 'pread' };
  let n = 0;
  const until = Date.now() + SECONDS * 1000;
  const l0 = Date.now();
  while (Date.now() < until) {
    await s.apply(read);
    n++;
  }
  const lock = (n * 1000) / (Date.now() - l0);
  // The same request, WINDOW at a time, straight to the agent (what a pipelined session would send).
  const session = s as GuestSession;
  let m = 0;
  const until2 = Date.now() + SECONDS * 1000;
  const p0 = Date.now();
  while (Date.now() < until2) {
    await session.pipelined(Array.from({ length: WINDOW }, () => 'pread d-eduA 7 0 4'));
    m += WINDOW;
  }
  const pipe = (m * 1000) / (Date.now() - p0);
  const dma0 = Date.now();
  await s.run([{ op: 'vfio.dma.map', container: 0, iova: 0x100000, size: 0x1000, offset: 0, perm: 'rw' }, { op: 'vfio.dma', dev: 'eduA', iova: 0x100000, len: 64 }]);
  console.log(`2. ops through the session, lockstep: ${fmt(lock)} ops/s (${(1000 / lock).toFixed(2)} ms each); agent pipelined (${WINDOW} in flight): ${fmt(pipe)} ops/s (${(1000 / pipe).toFixed(3)} ms each); a map and an edu DMA: ${fmt(Date.now() - dma0)} ms`);
  const cycles = 10;
  const c0 = Date.now();
  for (let i = 0; i < cycles; i++) {
    await s.close();
    s = await target.open(t);
    await s.run(SETUP);
  }
  await s.close();
  const phases = target.phases!;
  console.log(`3. per sequence on one guest (close, clean, open, ${SETUP.length} setup ops): ${fmt((Date.now() - c0) / cycles)} ms; of it reset ${fmt(phases.reset / (cycles + 1))} ms, verify ${fmt(phases.verify / (cycles + 1))} ms; restarts ${target.boots.length - 1}`);
  await target.dispose();

  const base = mkdtempSync(join(tmpdir(), 'isoroot-bench-vfio-guest-'));
  const c = campaignConfig({ target: 'vfio-guest', known: 'corpora/vfio-guest', seed: 7, workers: 1, budget: { runs: RUNS }, ...(QEMU !== 'qemu-system-x86_64' ? { qemu: QEMU } : {}) });
  const r = await runQuiet(c, join(base, 'w1'));
  const sm = r.summary;
  console.log(`4. --target vfio-guest campaign, 1 worker: ${sm.sequencesPerSecond} sequences/s, ${sm.opsPerSecond.toLocaleString('en')} ops/s (${sm.runs} sequences, ${(sm.ops / Math.max(1, sm.runs)).toFixed(0)} ops each), coverage ${sm.covered}/${sm.total}, ${sm.findings.length} findings`);
  console.log(`   per sequence: ${sm.phases === undefined ? 'no phases recorded' : showPhases(sm.phases, sm.runs)}`);
}

await main();
