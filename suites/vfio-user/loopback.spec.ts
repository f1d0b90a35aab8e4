/**
 * The vfio-user client target against isoroot's reference server (in its
 * own process): discovery, interrupts as eventfds, DMA through the memfd
 * and through DMA_READ/DMA_WRITE messages, refusals, protocol violations,
 * and campaigns that find nothing on the reference and the mutant on a
 * mutated server.
 */
import { test, expect } from '@playwright/test';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openVfioUserTarget, type VfioUserTarget } from '../../harness/adapters/vfio-user/target.ts';
import { DeviceLink } from '../../harness/adapters/vfio-user/device-link.ts';
import { FdServer } from '../../harness/protocol/vfio-user/fd-socket.ts';
import { encodeMessage } from '../../harness/protocol/vfio-user/codec.ts';
import { ERRNO } from '../../harness/spec/errno.ts';
import { HEADER_SIZE, REGION } from '../../harness/protocol/vfio-user/messages.ts';
import { EDU_DMA_BASE } from '../../harness/model/personalities/edu.ts';
import { Model } from '../../harness/model/model.ts';
import { execute } from '../../harness/run/execute.ts';
import { checkRun, judgeOf } from '../../harness/run/check.ts';
import { readCapture } from '../../harness/capture/pcap-read.ts';
import { decodeHeader } from '../../harness/protocol/vfio-user/header.ts';
import { commandName } from '../../harness/protocol/vfio-user/messages.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import type { Observation } from '../../harness/ops/observation.ts';
import { isoroot } from '../cli-run.ts';
import { readTrace } from '../../harness/trace/reader.ts';
import { startServer, type ServerProcess } from '../../harness/serve/vfio-user/child.ts';

test.describe.configure({ mode: 'serial' });

let server: ServerProcess;
let target: VfioUserTarget;

test.beforeAll(async () => {
  server = await startServer();
  target = await openVfioUserTarget(server.sockets);
});

test.afterAll(async () => {
  await target?.dispose();
  expect(await server?.stop()).toBe(0);
  expect(server.output()).toMatch(/closed; no client broke the protocol/);
  await server?.dispose();
});

const cfgw = (root: number, reg: number, size: number, value: bigint): Op => ({ op: 'cfg.write', root, via: 'ecam', bdf: 0, reg, size, value });
const MEM_MASTER = 0x6n;

/** Runs ops in a fresh session and returns the observations, after checking them against the model. */
async function run(ops: Op[]): Promise<Observation[]> {
  const t = target.fixedTopology!;
  const ex = await execute(target, t, ops);
  expect(ex.failure).toBeUndefined();
  // Judged by the reference server's profile (its errnos), which the target declares from the sockets' descriptions.
  expect(target.profile?.name).toBe('isoroot-server');
  const findings = checkRun(t, judgeOf(target), ex.steps, ex.failure, ops);
  expect(findings.map((f) => f.message)).toEqual([]);
  return ex.steps.map((s) => s.obs!);
}

test('the client describes the devices behind the sockets: one root each, isolated, with the served uids', () => {
  const t = target.fixedTopology!;
  expect(t.roots.map((r) => r.devices.map((d) => [d.id, d.kind, d.uid]))).toEqual([[['ep0', 'endpoint', 1]], [['ep1', 'endpoint', 2]], [['edu0', 'edu', 3]]]);
  expect(t.roots.every((r) => r.share === undefined && r.iommu === true)).toBe(true);
  expect(target.capabilities.contract).toEqual({ memory: 'isolated', io: 'isolated', dma: 'isolated', irq: 'isolated', pasid: 'isolated', config: 'isolated' });
  expect(t.roots[0].devices[0].bars).toEqual([{ kind: 'mem32', size: 8192 }, { kind: 'io', size: 256 }, { kind: 'mem64', size: 16384, prefetch: true }]);
});

test('a device whose reset is its power-on state is reset on its open connection between sessions; edu, which keeps its registers, is connected to anew', async () => {
  const connections = (sock: string): number => server.output().split('\n').filter((l) => l.startsWith(`${sock}: client connected`)).length;
  const before = server.sockets.map(connections);
  // A session that leaves state behind on every device: BARs placed and enabled, a DMA mapping, guest memory written.
  await run([cfgw(0, 0x10, 4, 0xc0000000n), cfgw(0, 0x04, 2, MEM_MASTER), { op: 'dma.map', root: 0, domain: 0, iova: 0x10000, size: 0x1000, gpa: 0x2000, perm: 'rw' }, { op: 'mmio.write', root: 0, addr: 0x2000, size: 4, value: 0x55n }, cfgw(2, 0x10, 4, 0xc0000000n), cfgw(2, 0x04, 2, MEM_MASTER)]);
  // The next session meets every device as after reset, and guest memory as at power-on.
  const obs = await run([{ op: 'cfg.read', root: 0, via: 'ecam', bdf: 0, reg: 0x04, size: 2 }, { op: 'cfg.read', root: 0, via: 'ecam', bdf: 0, reg: 0x10, size: 4 }, { op: 'mmio.read', root: 0, addr: 0x2000, size: 4 }, { op: 'dma.unmap', root: 0, domain: 0, iova: 0x10000, size: 0x1000 }]);
  expect(obs[0].value).toBe(0n);
  expect(obs[2].value).toBe(0n);
  expect(obs[3].status).toBe('error');
  const after = server.sockets.map(connections);
  // ep0 and ep1 (generic endpoints) kept their connections; edu0 was connected to once per session.
  expect(after[0] - before[0]).toBeLessThanOrEqual(1);
  expect(after[1] - before[1]).toBeLessThanOrEqual(1);
  expect(after[2] - before[2]).toBe(2);
});

test('BARs decode where config space puts them; each root reaches its own device at the same address', async () => {
  const obs = await run([
    cfgw(0, 0x10, 4, 0xc0000000n),
    cfgw(1, 0x10, 4, 0xc0000000n),
    cfgw(0, 0x04, 2, MEM_MASTER),
    cfgw(1, 0x04, 2, MEM_MASTER),
    { op: 'mmio.write', root: 0, addr: 0xc0000010, size: 4, value: 0xa0n },
    { op: 'mmio.write', root: 1, addr: 0xc0000010, size: 4, value: 0xb1n },
    { op: 'mmio.read', root: 0, addr: 0xc0000000, size: 4 },
    { op: 'mmio.read', root: 1, addr: 0xc0000000, size: 4 },
    { op: 'mmio.read', root: 0, addr: 0xc0000010, size: 4 },
    { op: 'mmio.read', root: 1, addr: 0xc0000010, size: 4 },
    { op: 'mmio.read', root: 0, addr: 0xc0002000, size: 4 },
  ]);
  expect(obs.slice(6).map((o) => [o.status, o.value])).toEqual([
    ['ok', 0x15000100n],
    ['ok', 0x15000200n],
    ['ok', 0xa0n],
    ['ok', 0xb1n],
    ['ma', 0xffffffffn],
  ]);
});

test('interrupts arrive as eventfds: MSI by vector, INTx on assertion', async () => {
  const msi = new Model(target.fixedTopology!).fnOf('ep0')!.caps.msi!;
  const obs = await run([
    cfgw(0, 0x10, 4, 0xc0000000n),
    cfgw(0, 0x04, 2, MEM_MASTER),
    { op: 'mmio.write', root: 0, addr: 0xc0000004, size: 4, value: 0n },
    { op: 'mmio.write', root: 0, addr: 0xc0000008, size: 4, value: 0n },
    cfgw(0, msi.off + 4, 4, 0xfee00000n),
    cfgw(0, msi.data, 2, 0x4021n),
    cfgw(0, msi.off + 2, 2, 0x21n),
    { op: 'mmio.write', root: 0, addr: 0xc0000004, size: 4, value: 1n },
  ]);
  expect(obs[2].irqs).toEqual([{ space: 0, dev: 'ep0', kind: 'intx', level: 1 }]);
  expect(obs[7].irqs).toEqual([{ space: 0, dev: 'ep0', kind: 'msi', vector: 1 }]);
});

/** edu's engine moves 8 bytes from `iova` into its buffer and back out to the next page (hw/misc/edu.c's registers; the buffer is not CPU-visible). */
function eduDma(iova: number, gpa: number, back: number): Op[] {
  const bar = 0xd0000000;
  const w = (off: number, value: bigint): Op => ({ op: 'mmio.write', root: 2, addr: bar + off, size: 8, value });
  return [
    cfgw(2, 0x10, 4, BigInt(bar)),
    cfgw(2, 0x04, 2, MEM_MASTER),
    { op: 'dma.map', root: 2, domain: 0, iova, size: 0x2000, gpa, perm: 'rw' },
    { op: 'mmio.write', root: 2, addr: gpa, size: 8, value: 0x1122334455667788n },
    w(0x80, BigInt(iova)),
    w(0x88, BigInt(EDU_DMA_BASE)),
    w(0x90, 8n),
    w(0x98, 1n),
    w(0x80, BigInt(EDU_DMA_BASE)),
    w(0x88, BigInt(iova + 0x1000)),
    w(0x98, 3n),
    { op: 'mmio.read', root: 2, addr: back, size: 8 },
  ];
}

test('device DMA reaches guest memory through the memfd (lower half of RAM) and through DMA_READ/DMA_WRITE (upper half)', async () => {
  const ram = target.fixedTopology!.roots[2].ram!;
  for (const gpa of [0x10000, ram / 2 + 0x10000]) {
    const obs = await run(eduDma(0x100000, gpa, gpa + 0x1000));
    expect(obs[11].value).toBe(0x1122334455667788n);
  }
});

test('refusals follow VFIO type-1: overlapping maps, unmapping what was never mapped, unaligned maps', async () => {
  const obs = await run([
    { op: 'dma.map', root: 0, domain: 0, iova: 0x10000, size: 0x2000, gpa: 0x1000, perm: 'rw' },
    { op: 'dma.map', root: 0, domain: 0, iova: 0x11000, size: 0x1000, gpa: 0x1000, perm: 'r' },
    { op: 'dma.unmap', root: 0, domain: 0, iova: 0x80000, size: 0x1000 },
    { op: 'dma.unmap', root: 0, domain: 0, iova: 0x10000, size: 0x1000 },
    { op: 'dma.map', root: 1, domain: 0, iova: 0x10800, size: 0x1000, gpa: 0x1000, perm: 'rw' },
    { op: 'dma.map', root: 1, domain: 0, iova: 0x10000, size: 0x1000, gpa: 0x1000, perm: 'rw' },
  ]);
  // A refusal is the server's errno; the reference server's profile says which refusal each is.
  expect(obs.map((o) => o.errno ?? o.status)).toEqual(['ok', 'EEXIST', 'ENOENT', 'EBUSY', 'EINVAL', 'ok']);
});

test('region accesses, hostile ones included, are answered as the model says a conforming server must', async () => {
  const rr = (region: number, offset: number, count: number): Op => ({ op: 'region.read', dev: 'ep0', region, offset, count });
  const obs = await run([
    rr(7, 0, 4),
    rr(0, 0, 4),
    cfgw(0, 0x10, 4, 0xc0000000n),
    cfgw(0, 0x04, 2, MEM_MASTER),
    { op: 'region.write', dev: 'ep0', region: 0, offset: 0x10, data: Uint8Array.of(1, 2, 3, 4) },
    { op: 'mmio.read', root: 0, addr: 0xc0000010, size: 4 },
    rr(0, 0x1ffc, 8),
    rr(7, 0, 4097),
    rr(8, 0, 4),
    rr(3, 0, 4),
    { op: 'region.write', dev: 'ep0', region: 6, offset: 0, data: Uint8Array.of(1) },
  ]);
  expect(obs.map((o) => o.errno ?? o.status)).toEqual(['ok', 'EIO', 'ok', 'ok', 'ok', 'ok', 'EINVAL', 'E2BIG', 'ENOENT', 'ENOENT', 'ENOENT']);
  expect(obs[0].data).toEqual(Uint8Array.of(0x36, 0x1b, 0x00, 0x11));
  expect(obs[5].value).toBe(0x04030201n);
});

test('the server refuses hostile requests and drops a client that breaks the protocol', async () => {
  const own = await startServer();
  const link = await DeviceLink.open(own.sockets[0]);
  try {
    expect(await link.tryAsk('REGION_READ', { offset: 0x1ffcn, region: REGION.BAR0, count: 8 })).toBe(ERRNO.EINVAL);
    expect(await link.tryAsk('REGION_READ', { offset: 0n, region: 12, count: 4 })).toBe(ERRNO.ENOENT);
    expect(await link.tryAsk('REGION_READ', { offset: 0n, region: REGION.CONFIG, count: 4097 })).toBe(ERRNO.E2BIG);
    expect(await link.tryAsk('DMA_READ', { address: 0n, count: 4n })).toBe(ERRNO.EINVAL);
    // BAR0 does not decode yet: vfio-pci answers EIO.
    expect(await link.tryAsk('REGION_READ', { offset: 0n, region: REGION.BAR0, count: 4 })).toBe(ERRNO.EIO);
    // A message larger than the negotiated limit: the server must not take it.
    const big = encodeMessage({ command: 'REGION_WRITE', id: 999, reply: false, noReply: false, body: { offset: 0x10n, region: REGION.CONFIG, count: 4 << 20, data: new Uint8Array(4 << 20) }, fds: [] });
    link.conn.socket.send(big);
    await expect(link.ask('DEVICE_GET_INFO', { flags: 0, numRegions: 0, numIrqs: 0 })).rejects.toThrow(/closed|failed/);
  } finally {
    link.close();
  }
  await expect.poll(() => own.output()).toMatch(/ep0\.sock: the client broke the protocol: .*msg_size/);
  // The server says so when it stops, and exits 1.
  expect(await own.stop()).toBe(1);
  expect(own.output()).toMatch(/closed; 1 protocol violations by clients/);
  await own.dispose();
});

test('a server reply that breaks the protocol is a violation naming the field and its byte offset', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-bad-'));
  const path = join(dir, 'bad.sock');
  const bad = FdServer.listen(path, (s) => {
    s.onData = (chunk) => {
      const h = decodeHeader(chunk.subarray(0, HEADER_SIZE));
      // A VERSION reply whose size field claims more than it carries.
      const r = encodeMessage({ command: 'VERSION', id: h.id, reply: true, errno: 0, body: { major: 0, minor: 1, caps: {} }, fds: [] });
      r.writeUInt16LE(9, 16); // major 9: a version isoroot does not speak
      r.writeUInt32LE(7, 8); // flags: reserved bits set
      s.send(r);
    };
  });
  try {
    const e = await DeviceLink.open(path).then(
      () => null,
      (x: unknown) => x as { violation?: { field: string; offset: number } },
    );
    expect(e?.violation).toMatchObject({ field: 'flags', offset: 8 });
  } finally {
    bad.close();
  }
});

test('a campaign against the reference server finds nothing', () => {
  const out = mkdtempSync(join(tmpdir(), 'isoroot-vfu-run-'));
  const r = isoroot('fuzz', '--target', `vfio-user:${server.sockets.join(',')}`, '--runs', '300', '--seed', '5', '--out', out);
  expect(r.out).toContain('no findings');
  expect(r.code).toBe(0);
});

test('a campaign against a server with the shared-io-space mutant finds it', async () => {
  const bad = await startServer({ mutant: 'shared-io-space' });
  try {
    const out = mkdtempSync(join(tmpdir(), 'isoroot-vfu-run-'));
    const r = isoroot('fuzz', '--target', `vfio-user:${bad.sockets.join(',')}`, '--runs', '2000', '--seed', '2', '--out', out);
    expect(r.code).toBe(1);
    const findings = readdirSync(join(out, 'findings')).filter((f) => f.endsWith('.jsonl'));
    expect(findings.length).toBeGreaterThan(0);
    // The shrunk trace replays: on the model it predicts what a conforming server answers, and the recorded answers differ.
    expect(isoroot('check', join(out, 'findings', findings[0])).code).toBe(1);
    // Runs go in batches of 16 between resets, the budget still counts runs, and a finding is shrunk from the
    // batch's run it lies in, not from the batch's hundreds of ops.
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { runs: number };
    expect(summary.runs).toBe(2000);
    const trace = await readTrace(join(out, 'findings', findings[0]));
    expect(trace.steps.length).toBeLessThanOrEqual(12);
  } finally {
    expect(await bad.stop()).toBe(0);
    await bad.dispose();
  }
});

test('a proxy records a session as a capture that imports into a trace the model agrees with', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-proxy-'));
  const listen = join(dir, 'front.sock');
  const pcap = join(dir, 'session.pcap');
  const { spawn } = await import('node:child_process');
  const { BIN } = await import('../cli-run.ts');
  const proxy = spawn(process.execPath, [BIN, 'proxy', '--listen', listen, '--connect', server.sockets[2], '--pcap', pcap], { stdio: 'ignore' });
  try {
    await expect.poll(() => existsSync(listen), { timeout: 10_000 }).toBe(true);
    const t = await openVfioUserTarget([listen]);
    const topo = t.fixedTopology!;
    expect(topo.roots[0].devices[0].kind).toBe('edu');
    const ram = topo.roots[0].ram!;
    const ops = eduDma(0x100000, ram / 2 + 0x10000, ram / 2 + 0x11000).map((o) => ('root' in o ? { ...o, root: 0 } : o)) as Op[];
    const ex = await execute(t, topo, ops);
    expect(checkRun(topo, t.capabilities.observes, ex.steps, ex.failure, ops)).toEqual([]);
  } finally {
    proxy.kill('SIGTERM');
    await new Promise((r) => proxy.once('exit', r));
  }
  const records = await readCapture(pcap);
  const commands = records.filter((r) => r.kind === 'message').map((r) => commandName(decodeHeader(r.payload).command));
  // The DMA by messages went both ways through the proxy: edu read and wrote the upper half of RAM.
  expect(commands).toContain('DMA_READ');
  expect(commands).toContain('DMA_WRITE');
  expect(commands).toContain('DMA_MAP');
  const trace = join(dir, 'session.jsonl');
  const imp = isoroot('import', 'pcap', pcap, '--out', trace);
  expect(imp.code).toBe(0);
  const check = isoroot('check', trace);
  expect(check.out + check.err).not.toMatch(/DIVERGENCE|MISROUTE|COLLISION|LEAK/);
  expect(check.code).toBe(0);
});
