/**
 * npm run bench:vfio-user — vfio-user speed and memory (issue: vfio-user, Bench):
 *  1. messages/s between isoroot's client and the reference server (in its
 *     own process): 4-byte REGION_READs of config space, lockstep (one in
 *     flight) and pipelined (--window in flight);
 *  2. the same 4-byte reads from the guest side through QEMU's client
 *     (vfio-user-pci, QEMU >= 10.1, from ISOROOT_QEMU or --qemu), as qtest
 *     readl of the device's BAR: lockstep and pipelined qtest commands;
 *  3. memory per session: the server's RSS with --sessions clients
 *     connected, against none; and the client's.
 * Options: --seconds S (default 3), --window N (default 64), --sessions N (default 16), --qemu PATH.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceLink } from '../harness/adapters/vfio-user/device-link.ts';
import { REGION } from '../harness/protocol/vfio-user/messages.ts';
import { startServer, DEVICES } from '../harness/serve/vfio-user/child.ts';
import { guestReads } from './vfio-user-qemu.ts';
import { arg } from './args.ts';

const SECONDS = Number(arg('seconds', '3'));
const WINDOW = Number(arg('window', '64'));
const SESSIONS = Number(arg('sessions', '16'));

const rssKb = (pid: number | 'self'): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
const fmt = (n: number): string => Math.round(n).toLocaleString('en');

async function rate(link: DeviceLink, window: number): Promise<number> {
  const until = Date.now() + SECONDS * 1000;
  let done = 0;
  const t0 = process.hrtime.bigint();
  const lane = async (): Promise<void> => {
    while (Date.now() < until) {
      await link.ask('REGION_READ', { offset: 0n, region: REGION.CONFIG, count: 4 });
      done++;
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  // A request and its reply are two messages.
  return (2 * done) / s;
}

async function main(): Promise<void> {
  console.log(`node ${process.version}; ${SECONDS} s per measurement`);
  const server = await startServer();
  try {
    const link = await DeviceLink.open(server.sockets[0]);
    const lock = await rate(link, 1);
    const pipe = await rate(link, WINDOW);
    link.close();
    console.log(`1. client <-> reference server, 4-byte REGION_READ: lockstep ${fmt(lock)} messages/s (${fmt(lock / 2)} reads/s); pipelined (${WINDOW} in flight) ${fmt(pipe)} messages/s (${fmt(pipe / 2)} reads/s)`);
  } finally {
    await server.stop();
  }

  const q = await guestReads({ seconds: SECONDS, window: WINDOW, qemu: arg('qemu', process.env.ISOROOT_QEMU ?? '') });
  if (typeof q === 'string') console.log(`2. through QEMU's client: not measured: ${q}`);
  else console.log(`2. guest readl through QEMU ${q.version}'s vfio-user-pci: lockstep ${fmt(q.lockstep)} reads/s; pipelined (${WINDOW} qtest commands in flight) ${fmt(q.pipelined)} reads/s`);

  // Memory: a topology of SESSIONS endpoints, one client on each.
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-bench-vfu-'));
  const topo = JSON.parse(readFileSync(DEVICES, 'utf8')) as { roots: { devices: unknown[] }[] };
  const ep = topo.roots[0].devices[0] as Record<string, unknown>;
  topo.roots[0].devices = Array.from({ length: SESSIONS }, (_, i) => ({ ...ep, id: `m${i}`, slot: i + 1 }));
  const file = join(dir, 'many.json');
  writeFileSync(file, JSON.stringify(topo));
  const many = await startServer({ topology: file, ids: Array.from({ length: SESSIONS }, (_, i) => `m${i}`) });
  try {
    await new Promise((r) => setTimeout(r, 500));
    const idle = rssKb(many.pid);
    const selfIdle = rssKb('self');
    const links = [];
    for (const s of many.sockets) {
      const l = await DeviceLink.open(s);
      await l.armInterrupts();
      for (let k = 0; k < 50; k++) await l.ask('REGION_READ', { offset: BigInt(4 * (k % 64)), region: REGION.CONFIG, count: 4 });
      links.push(l);
    }
    await new Promise((r) => setTimeout(r, 500));
    const busy = rssKb(many.pid);
    const selfBusy = rssKb('self');
    console.log(`3. memory per session (${SESSIONS} sessions): server ${fmt((busy - idle) / SESSIONS)} KiB (RSS ${fmt(idle)} -> ${fmt(busy)} KiB); client ${fmt((selfBusy - selfIdle) / SESSIONS)} KiB`);
    for (const l of links) l.close();
  } finally {
    await many.stop();
  }
}

await main();
