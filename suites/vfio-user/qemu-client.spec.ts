/**
 * QEMU's vfio-user client (-device vfio-user-pci, QEMU 10.1 and later)
 * against isoroot's reference server (`isoroot serve vfio-user`), with
 * QEMU on the qtest accelerator so that the test is the guest: isoroot
 * sees both ends of every access, what the guest did (qtest) and what
 * reached the device (the server's trace, and its capture of every
 * message). Each device of the served topology sits on a root of its
 * own, so the trace says which client an op came from: its root.
 *
 * QEMU 11 facts the tests rely on (verified on 11.1.3):
 * - vfio-user-pci's `socket` property takes only the JSON -device form;
 * - realize connects at once, so the server must be listening first;
 * - on q35 without firmware ECAM is off until PCIEXBAR (00:00.0 0x60) is set;
 * - the BAR registers are emulated by QEMU (guest reads of 0x10-0x27 never
 *   reach the server), but every config write is forwarded;
 * - BAR writes are posted (no reply), reads are synchronous.
 */
import { test, expect } from '@playwright/test';
import type { QemuProcess } from '../../harness/adapters/qemu/process.ts';
import { decodeMessage } from '../../harness/protocol/vfio-user/codec.ts';
import { decodeHeader } from '../../harness/protocol/vfio-user/header.ts';
import { COMMANDS } from '../../harness/protocol/vfio-user/messages.ts';
import { readCapture, type CaptureRecord } from '../../harness/capture/pcap-read.ts';
import { ENDPOINT_DEVICE, ENDPOINT_VENDOR } from '../../harness/model/personalities/endpoint.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import { readTrace } from '../../harness/trace/reader.ts';
import type { Step, Trace } from '../../harness/trace/format.ts';
import { Guest, requireVfioUserQemu, startQemu, startServer, vfioUserDevice, type ServerProcess } from './qemu-guest.ts';

import { DEVICES } from '../../harness/serve/vfio-user/child.ts';
/** Where the guest puts BAR0: in q35's PCI hole. */
const BASE = 0xe000_0000;
/** The slot the device is given on the q35 root bus (00:01.0). */
const SLOT = 1;
const RAM = 0x1000_0000;
const BIOS = { iova: 0xfffc_0000, size: 0x4_0000 };

test.beforeEach(() => requireVfioUserQemu());

/** The root the server gave device `id` (root i = the i-th served device), and its uid. */
function served(t: Trace, id: string): { root: number; uid: number } {
  const root = t.header.topology.roots.findIndex((r) => r.devices[0]?.id === id);
  expect(root, `${id} in the served topology`).toBeGreaterThanOrEqual(0);
  const uid = t.header.topology.roots[root].devices[0].uid;
  expect(uid, `${id}'s uid`).toEqual(expect.any(Number));
  return { root, uid: uid! };
}

const identity = (uid: number, region = 0): number => (0x1500_0000 | (uid << 8) | region) >>> 0;

/** Where an op happened: its root, or (device ops) its device. */
const whereOf = (op: Op): { root?: number; dev?: string } => ('root' in op ? { root: op.root } : 'dev' in op ? { dev: op.dev } : {});

/** Steps that happened anywhere but on `root` / device `dev`, as lines (none expected). */
function elsewhere(steps: readonly Step[], root: number, dev: string): string[] {
  return steps.flatMap((s, i) => {
    const w = whereOf(s.op);
    const to = s.obs?.to;
    const ok = (w.root === root || w.dev === dev) && (to === undefined || (to.root === root && (to.dev === undefined || to.dev === dev)));
    return ok ? [] : [`#${i} ${JSON.stringify(s, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`];
  });
}

/** A little-endian value of region data. */
const le = (b: Uint8Array | undefined): bigint | undefined => (b === undefined ? undefined : b.reduceRight((v, x) => (v << 8n) | BigInt(x), 0n));

/**
 * The region accesses the server recorded for a device (one per REGION_READ/WRITE it got),
 * as comparable records: the BARs (region < 7), or config space (region 7).
 */
const regionOps = (steps: readonly Step[], dev: string, config: boolean): object[] =>
  steps.flatMap((s) => {
    const o = s.op;
    if ((o.op !== 'region.read' && o.op !== 'region.write') || o.dev !== dev || (o.region === 7) !== config) return [];
    const size = o.op === 'region.read' ? o.count : o.data.length;
    return [{ op: o.op, region: o.region, offset: o.offset, size, value: le(o.op === 'region.write' ? o.data : s.obs?.data), status: s.obs?.status, to: s.obs?.to }];
  });

/** Kills what is left, and keeps what QEMU and the server printed with the result. */
async function stopAll(qemus: (QemuProcess | null)[], server: ServerProcess): Promise<void> {
  for (const q of qemus) await q?.kill();
  await server.stop();
  const info = test.info();
  qemus.forEach((q, i) => q !== null && info.annotations.push({ type: `qemu ${i}`, description: `${q.exit ?? 'running'}\n${q.stderr}` }));
  await info.attach('server output', { body: server.output(), contentType: 'text/plain' });
  await server.dispose();
}

test('one QEMU on one served endpoint: config reads, BAR0 scratch and identity reach ep0, and only ep0, in the server trace', async () => {
  const server = await startServer({ topology: DEVICES, pcap: true });
  let qemu: QemuProcess | null = null;
  try {
    qemu = await startQemu(['-device', vfioUserDevice(server.socket('ep0'), { id: 'vu0', addr: String(SLOT) })]);
    const g = new Guest(qemu.qtest);
    // The guest's side: IDs through CF8/CFC, then ECAM once PCIEXBAR is on.
    expect(await g.cf8Read(0, SLOT, 0x00, 2)).toBe(ENDPOINT_VENDOR);
    expect(await g.cf8Read(0, SLOT, 0x02, 2)).toBe(ENDPOINT_DEVICE);
    await g.enableEcam();
    expect(await g.ecamRead(0, SLOT, 0x00, 4)).toBe(((ENDPOINT_DEVICE << 16) | ENDPOINT_VENDOR) >>> 0);
    await g.ecamWrite(0, SLOT, 0x10, 4, BASE);
    await g.ecamWrite(0, SLOT, 0x04, 2, 0x0002); // memory decode
    expect(await g.ecamRead(0, SLOT, 0x10, 4)).toBe(BASE); // QEMU's emulated BAR register (type bits 0: mem32)
    await g.writel(BASE + 0x10, 0x5a5a_1234);
    expect(await g.readl(BASE + 0x10)).toBe(0x5a5a_1234);
    const id = await g.readl(BASE);
    await qemu.stop(5000);
    await server.waitFor(`${server.socket('ep0')}: the peer closed the connection`, 5000);
    expect(await server.stop(), server.output()).toBe(0);

    const t = await readTrace(server.trace);
    const ep0 = served(t, 'ep0');
    expect(id).toBe(identity(ep0.uid));
    // Nothing this client did landed anywhere but ep0's root.
    expect(elsewhere(t.steps, ep0.root, 'ep0')).toEqual([]);
    // The BAR accesses, as the device saw them.
    const to = (offset: number) => ({ root: ep0.root, dev: 'ep0', region: 'bar0', offset });
    expect(regionOps(t.steps, 'ep0', false)).toEqual([
      { op: 'region.write', region: 0, offset: 0x10, size: 4, value: 0x5a5a_1234n, status: 'ok', to: to(0x10) },
      { op: 'region.read', region: 0, offset: 0x10, size: 4, value: 0x5a5a_1234n, status: 'ok', to: to(0x10) },
      { op: 'region.read', region: 0, offset: 0, size: 4, value: BigInt(identity(ep0.uid)), status: 'ok', to: to(0) },
    ]);
    // The guest's config accesses, after the machine reset (QEMU's DEVICE_RESET), in order.
    const reset = t.steps.findLastIndex((s) => s.op.op === 'dev.reset' && s.op.dev === 'ep0');
    expect(reset, 'QEMU resets the device at machine reset').toBeGreaterThan(0);
    const cfg = regionOps(t.steps.slice(reset), 'ep0', true);
    const cfgTo = (reg: number) => ({ root: ep0.root, dev: 'ep0', region: 'cfg', offset: reg });
    const guest = [
      { op: 'region.read', region: 7, offset: 0x00, size: 2, value: BigInt(ENDPOINT_VENDOR), status: 'ok', to: cfgTo(0) },
      { op: 'region.read', region: 7, offset: 0x02, size: 2, value: BigInt(ENDPOINT_DEVICE), status: 'ok', to: cfgTo(2) },
      { op: 'region.read', region: 7, offset: 0x00, size: 4, value: BigInt(((ENDPOINT_DEVICE << 16) | ENDPOINT_VENDOR) >>> 0), status: 'ok', to: cfgTo(0) },
      { op: 'region.write', region: 7, offset: 0x10, size: 4, value: BigInt(BASE), status: 'ok', to: cfgTo(0x10) },
      { op: 'region.write', region: 7, offset: 0x04, size: 2, value: 2n, status: 'ok', to: cfgTo(4) },
    ];
    // QEMU's own accesses after the reset (interrupt pin, clearing the BARs) come first; nothing else reaches config space after the guest's.
    expect(cfg.slice(-guest.length), "the guest's config accesses, in order").toEqual(guest);
  } finally {
    await stopAll([qemu], server);
  }
});

test('two QEMUs on one server: BAR0 at the same guest address in both, each reaches its own device on its own root', async () => {
  const server = await startServer({ topology: DEVICES, pcap: true });
  let a: QemuProcess | null = null;
  let b: QemuProcess | null = null;
  try {
    [a, b] = await Promise.all([
      startQemu(['-device', vfioUserDevice(server.socket('ep0'), { id: 'vu0', addr: String(SLOT) })]),
      startQemu(['-device', vfioUserDevice(server.socket('ep1'), { id: 'vu0', addr: String(SLOT) })]),
    ]);
    const ga = new Guest(a.qtest);
    const gb = new Guest(b.qtest);
    // Interleaved: A's and B's accesses alternate at the server.
    for (const g of [ga, gb]) await g.cf8Write(0, SLOT, 0x10, 4, BASE);
    for (const g of [ga, gb]) await g.cf8Write(0, SLOT, 0x04, 2, 0x0002);
    await ga.writel(BASE + 0x10, 0xaaaa_0001);
    await gb.writel(BASE + 0x10, 0xbbbb_0002);
    const readA = await ga.readl(BASE + 0x10);
    const readB = await gb.readl(BASE + 0x10);
    const idA = await ga.readl(BASE);
    const idB = await gb.readl(BASE);
    await Promise.all([a.stop(5000), b.stop(5000)]);
    for (const id of ['ep0', 'ep1']) await server.waitFor(`${server.socket(id)}: the peer closed the connection`, 5000);
    expect(await server.stop(), server.output()).toBe(0);

    const t = await readTrace(server.trace);
    const ep0 = served(t, 'ep0');
    const ep1 = served(t, 'ep1');
    expect(ep0.root).not.toBe(ep1.root);
    expect([readA, readB]).toEqual([0xaaaa_0001, 0xbbbb_0002]);
    expect([idA, idB]).toEqual([identity(ep0.uid), identity(ep1.uid)]);
    // Every op is one client's: on ep0's root or ep1's, delivered there; none reached edu0.
    const on = (root: number, dev: string): Step[] => t.steps.filter((s) => whereOf(s.op).root === root || whereOf(s.op).dev === dev);
    expect(on(ep0.root, 'ep0').length + on(ep1.root, 'ep1').length).toBe(t.steps.length);
    expect(elsewhere(on(ep0.root, 'ep0'), ep0.root, 'ep0')).toEqual([]);
    expect(elsewhere(on(ep1.root, 'ep1'), ep1.root, 'ep1')).toEqual([]);
    for (const [dev, who, value] of [['ep0', ep0, 0xaaaa_0001n], ['ep1', ep1, 0xbbbb_0002n]] as const) {
      const to = (offset: number) => ({ root: who.root, dev, region: 'bar0', offset });
      expect(regionOps(t.steps, dev, false), `${dev}'s BAR accesses`).toEqual([
        { op: 'region.write', region: 0, offset: 0x10, size: 4, value, status: 'ok', to: to(0x10) },
        { op: 'region.read', region: 0, offset: 0x10, size: 4, value, status: 'ok', to: to(0x10) },
        { op: 'region.read', region: 0, offset: 0, size: 4, value: BigInt(identity(who.uid)), status: 'ok', to: to(0) },
      ]);
    }
  } finally {
    await stopAll([a, b], server);
  }
});

interface Range {
  iova: number;
  size: number;
  perm: string;
}
const rangeText = (r: Range): string => `${r.perm} 0x${r.iova.toString(16)}+0x${r.size.toString(16)}`;

/**
 * The DMA mappings of a root replayed in trace order until `end`: what
 * was live just after the last map (QEMU's final memory topology), what
 * is live at `end`, and unmaps that matched no mapping exactly.
 */
function replayDma(steps: readonly Step[], root: number, end: number): { final: Range[]; live: Range[]; stray: string[] } {
  const live = new Map<number, Range>();
  let final: Range[] = [];
  const stray: string[] = [];
  for (const s of steps.slice(0, end)) {
    const o = s.op;
    if (o.op === 'dma.map' && o.root === root) {
      expect(s.obs?.status, `dma.map ${rangeText({ iova: o.iova, size: o.size, perm: o.perm })}`).toBe('ok');
      live.set(o.iova, { iova: o.iova, size: o.size, perm: o.perm });
      final = [...live.values()];
    } else if (o.op === 'dma.unmap' && o.root === root) {
      if (live.get(o.iova)?.size === o.size) live.delete(o.iova);
      else stray.push(`0x${o.iova.toString(16)}+0x${o.size.toString(16)}`);
    }
  }
  const sort = (rs: Range[]): Range[] => rs.sort((x, y) => x.iova - y.iova);
  return { final: sort(final), live: sort([...live.values()]), stray };
}

/**
 * Checks that `maps` cover guest RAM [0, RAM) without a hole, read-write
 * outside the legacy 0xc0000-0xfffff window, and the BIOS ROM read-only.
 * QEMU 11.1.3 on q35 (256 MiB) maps all RAM and the BIOS at realize, then
 * at machine reset (PAM) unmaps RAM and maps it again in four pieces:
 * rw 0+0xc0000, r 0xc0000+0x20000, r 0xe0000+0x20000, rw 0x100000+0xff00000,
 * beside r 0xfffc0000+0x40000 (the BIOS).
 */
function expectGuestMemory(maps: readonly Range[]): void {
  let at = 0;
  for (const m of maps.filter((r) => r.iova < RAM)) {
    expect(m.iova, `RAM mapped without a hole: ${maps.map(rangeText).join(', ')}`).toBe(at);
    if (m.iova + m.size <= 0xc_0000 || m.iova >= 0x10_0000) expect(m.perm, rangeText(m)).toBe('rw');
    at = m.iova + m.size;
  }
  expect(at, 'RAM mapped to its end').toBe(RAM);
  expect(maps.filter((r) => r.iova >= RAM)).toEqual([{ ...BIOS, perm: 'r' }]);
}

/** The vfio-user messages a client sent on `socket`, decoded, from the server's capture. */
async function clientMessages(pcap: string, socket: string): Promise<{ command: string; address: bigint; size: bigint; fds: number }[]> {
  const recs: CaptureRecord[] = await readCapture(pcap);
  const session = recs.find((r) => r.kind === 'label' && r.text === socket)?.session;
  expect(session, `a session labelled ${socket} in the capture`).toBeDefined();
  return recs.flatMap((r) => {
    if (r.kind !== 'message' || r.session !== session || r.direction !== 'to-server') return [];
    const h = decodeHeader(r.payload);
    if (h.command !== COMMANDS.DMA_MAP && h.command !== COMMANDS.DMA_UNMAP) return [];
    const m = decodeMessage(r.payload, Array.from({ length: r.fds }, () => -1));
    if (m.reply || (m.command !== 'DMA_MAP' && m.command !== 'DMA_UNMAP')) return [];
    return [{ command: m.command, address: m.body.address, size: m.body.size, fds: r.fds }];
  });
}

/*
 * Hot-unplug without a guest OS: q35's ACPI hotplug would need the guest's
 * AML to eject, so ACPI hotplug on bridges is turned off and the device
 * sits behind a pcie-root-port (native PCIe hotplug). device_del presses
 * the slot's attention button; the test, as the guest would, powers the
 * slot off (Slot Control: Power Controller Control = off, power and
 * attention indicators off), and QEMU unplugs the device: it unmaps every
 * DMA region (one DMA_UNMAP each, synchronously), then closes the socket.
 * The device is ep1 (MSI, no MSI-X): QEMU 11.1.3 aborts when it unplugs a
 * vfio-user-pci device that has an MSI-X capability (ep0): "memory_region_
 * del_subregion: Assertion `subregion->container == mr' failed", inside
 * QEMU, after the last DMA_UNMAP.
 */
test('DMA maps follow QEMU memory (memfd RAM): guest RAM and BIOS mapped; after device_del and slot power-off QEMU unmaps them all before leaving', async () => {
  const server = await startServer({ topology: DEVICES, pcap: true });
  const sock = server.socket('ep1');
  let qemu: QemuProcess | null = null;
  try {
    qemu = await startQemu(
      [
        '-object', `memory-backend-memfd,id=mem,size=${RAM / 2 ** 20}M,share=on`,
        '-global', 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off',
        '-device', 'pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0,addr=1',
        '-device', vfioUserDevice(sock, { id: 'vu0', bus: 'rp1' }),
      ],
      'q35,memory-backend=mem',
    );
    const g = new Guest(qemu.qtest);
    const exp = await g.findCap(0, 1, 0x10);
    expect(exp, "the root port's PCI Express capability").toBeGreaterThan(0);
    const sltctl = await g.cf8Read(0, 1, exp + 0x18, 2);
    await qemu.qmp.execute('device_del', { id: 'vu0' }, 5000);
    await g.cf8Write(0, 1, exp + 0x18, 2, (sltctl & ~0x7c0) | 0x400 | 0x300 | 0xc0);
    await qemu.qmp.waitEvent((e) => e.event === 'DEVICE_DELETED' && e.data?.device === 'vu0', 5000, 'DEVICE_DELETED vu0');
    await server.waitFor(`${sock}: the peer closed the connection`, 5000);
    await qemu.stop(5000);
    expect(await server.stop(), server.output()).toBe(0);

    const t = await readTrace(server.trace);
    const ep1 = served(t, 'ep1');
    expect(elsewhere(t.steps, ep1.root, 'ep1')).toEqual([]);
    // The session ends where the server unplugs its device from the model (the client left).
    const end = t.steps.findIndex((s) => s.op.op === 'dev.unplug' && s.op.dev === 'ep1');
    expect(end, 'the session ended').toBeGreaterThan(0);
    const dma = replayDma(t.steps, ep1.root, end);
    test.info().annotations.push({ type: 'QEMU DMA maps (memfd RAM)', description: dma.final.map(rangeText).join(', ') });
    expectGuestMemory(dma.final);
    expect(dma.stray, 'unmaps of nothing mapped').toEqual([]);
    expect(dma.live.map(rangeText), 'mappings left when the session ended').toEqual([]);

    // And it was QEMU that unmapped them (the server drops what a departing client left: see the next test).
    const msgs = await clientMessages(server.pcap, sock);
    const lastMap = msgs.findLastIndex((m) => m.command === 'DMA_MAP');
    const unmapped = msgs.slice(lastMap + 1).filter((m) => m.command === 'DMA_UNMAP').map((m) => `0x${m.address.toString(16)}+0x${m.size.toString(16)}`);
    expect(unmapped.sort()).toEqual(dma.final.map((r) => `0x${r.iova.toString(16)}+0x${r.size.toString(16)}`).sort());
    // Guest RAM came as the memfd (one fd with each read-write RAM map); the BIOS ROM and the PAM windows without.
    const fdsOf = dma.final.map((r) => ({ range: rangeText(r), fds: msgs.findLast((m) => m.command === 'DMA_MAP' && m.address === BigInt(r.iova) && m.size === BigInt(r.size))?.fds }));
    expect(fdsOf).toEqual(dma.final.map((r) => ({ range: rangeText(r), fds: r.perm === 'rw' ? 1 : 0 })));
  } finally {
    await stopAll([qemu], server);
  }
});

test('QEMU quits without unmapping: the server drops every mapping that client left, before its device is handed on', async () => {
  const server = await startServer({ topology: DEVICES, pcap: true });
  const sock = server.socket('ep0');
  let qemu: QemuProcess | null = null;
  try {
    qemu = await startQemu(['-device', vfioUserDevice(sock, { id: 'vu0', addr: String(SLOT) })]);
    await qemu.stop(5000); // QMP quit: QEMU closes the socket, no DMA_UNMAP
    await server.waitFor(`${sock}: the peer closed the connection`, 5000);
    expect(await server.stop(), server.output()).toBe(0);

    const t = await readTrace(server.trace);
    const ep0 = served(t, 'ep0');
    expect(elsewhere(t.steps, ep0.root, 'ep0')).toEqual([]);
    const msgs = await clientMessages(server.pcap, sock);
    const lastMap = msgs.findLastIndex((m) => m.command === 'DMA_MAP');
    expect(lastMap).toBeGreaterThanOrEqual(0);
    expect(msgs.slice(lastMap + 1), 'DMA_UNMAPs QEMU sent after its last map').toEqual([]);
    const end = t.steps.findIndex((s) => s.op.op === 'dev.unplug' && s.op.dev === 'ep0');
    expect(end, 'the session ended').toBeGreaterThan(0);
    const dma = replayDma(t.steps, ep0.root, end);
    expectGuestMemory(dma.final);
    expect(dma.stray).toEqual([]);
    expect(dma.live.map(rangeText), 'mappings left when the session ended').toEqual([]);
    // The unmaps are the server's, right after the client's last request, then the device is re-plugged fresh.
    const tail = t.steps.slice(end - dma.final.length, end + 2).map((s) => s.op.op);
    expect(tail).toEqual([...dma.final.map(() => 'dma.unmap'), 'dev.unplug', 'dev.plug']);
  } finally {
    await stopAll([qemu], server);
  }
});
