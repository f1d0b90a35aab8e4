/**
 * xen-vpci-agent: Xen's own vPCI code (built by scripts/build-xen-vpci.sh
 * against isoroot's shim) behind a line protocol, driven through
 * harness/adapters/xen/agent.ts as a PVH hardware domain would: BAR sizing
 * and placement, memory decoding mapping the BARs in the p2m, accesses
 * reaching the host device behind the mapping, a moved BAR, 64-bit BARs
 * above 4 GiB, MSI-X tables trapped by vPCI inside a mapped BAR, IO BARs
 * (not vPCI's business in 4.17), device descriptions refused, pipelining,
 * malformed commands and crashes. With a Xen 4.21 or later tree
 * (ISOROOT_XEN_SRC), guest mode too: domUs with their own virtual bus, BARs
 * at guest addresses mapped onto the host BARs in each guest's p2m. The
 * TypeScript side's own failure reports (hang, bad reply line, exit) are
 * checked against stand-in programs. Without a Xen tree or gcc the Xen
 * suites fail in CI and are skipped loudly elsewhere (suites/require.ts).
 */
import { expect, test } from '@playwright/test';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureXenAgent, X, XenAgent, XenAgentError, type Cmd } from '../../harness/adapters/xen/agent.ts';
import { describeGuestMode, guestsHaveVpci, xenTree } from './xen-tree.ts';

const BUILD_TIMEOUT = 300_000;
const D3 = '0000:00:03.0';
const D4 = '0000:00:04.0';
const PCI_COMMAND = 0x04;
const PCI_BAR0 = 0x10;
const CMD_MEMORY = 0x2;
/** The identity dword at the start of each page of a host BAR (the model endpoint's): 0x15000000 | uid << 8 | bar. */
const identity = (uid: number, bar: number): bigint => BigInt((0x15000000 | (uid << 8) | bar) >>> 0);

/** The Xen tree the suite builds from; no tree or gcc: a failure in CI, a loud skip elsewhere. */

/** The agent binary, built into the cache when missing or stale. */
async function agentBinary(): Promise<string> {
  return ensureXenAgent({ tree: xenTree(), timeoutMs: BUILD_TIMEOUT });
}

let agent: XenAgent | undefined;
test.beforeEach(() => test.setTimeout(BUILD_TIMEOUT + 60_000));
test.afterEach(async () => {
  await agent?.dispose();
  agent = undefined;
});

/** A hardware domain (d0) with two endpoints, 1b36:1100 with 16 KiB BAR0 and MSI at 00:03.0 and abcd:1234 with 4 KiB BAR0 at 00:04.0, both assigned. */
async function twoEndpoints(): Promise<{ a: XenAgent; hostBar: [number, number]; uid: [number, number] }> {
  const a = (agent = XenAgent.start(await agentBinary()));
  const [dom, e3, e4, rc3, rc4] = await a.run([
    X.domainNew('hwdom'),
    X.devAdd(0, D3, { bar0: 0x4000, msi: 1 }),
    X.devAdd(0, D4, { bar0: 0x1000, id: [0xabcd, 0x1234] }),
    X.devAssign(0, D3),
    X.devAssign(0, D4),
  ] as const);
  expect(dom).toBe(0);
  expect([rc3, rc4], 'vpci_add_handlers').toEqual([0, 0]);
  // Firmware placed the host BARs apart, naturally aligned.
  expect(e3.bar0 % 0x4000).toBe(0);
  expect(e4.bar0 % 0x1000).toBe(0);
  expect(e3.bar0 + 0x4000 <= e4.bar0 || e4.bar0 + 0x1000 <= e3.bar0, `host BARs ${e3.bar0.toString(16)} and ${e4.bar0.toString(16)} overlap`).toBe(true);
  expect(e3.uid).not.toBe(e4.uid);
  return { a, hostBar: [e3.bar0, e4.bar0], uid: [e3.uid, e4.uid] };
}

test('a hardware domain with two endpoints: IDs through vPCI, BAR0 sized and placed apart, memory decoding maps both in the p2m, and a read at each BAR reaches that device', async () => {
  const { a, hostBar, uid } = await twoEndpoints();
  const [id3, id4, bar3] = await a.run([X.cfgRead(0, D3, 0, 4), X.cfgRead(0, D4, 0, 4), X.cfgRead(0, D3, PCI_BAR0, 4)] as const);
  expect(id3).toEqual({ value: 0x11001b36n, rejected: false });
  expect(id4).toEqual({ value: 0x1234abcdn, rejected: false });
  // vPCI shows the host BAR as firmware placed it (hardware domain: identity).
  expect(bar3.value).toBe(BigInt(hostBar[0]));

  // Sizing: all ones written, the size mask (32-bit, non-prefetchable memory) read back.
  const sized = await a.run([
    X.cfgWrite(0, D3, PCI_BAR0, 4, 0xffffffff),
    X.cfgRead(0, D3, PCI_BAR0, 4),
    X.cfgWrite(0, D4, PCI_BAR0, 4, 0xffffffff),
    X.cfgRead(0, D4, PCI_BAR0, 4),
  ] as const);
  expect(sized[1].value).toBe(0xffffc000n);
  expect(sized[3].value).toBe(0xfffff000n);

  // Placement at distinct addresses; nothing is mapped while decoding is off.
  const A3 = 0xfe000000;
  const A4 = 0xfe100000;
  const placed = await a.run([X.cfgWrite(0, D3, PCI_BAR0, 4, A3), X.cfgWrite(0, D4, PCI_BAR0, 4, A4), X.cfgRead(0, D3, PCI_BAR0, 4), X.cfgRead(0, D4, PCI_BAR0, 4), X.p2m(0)] as const);
  expect([placed[2].value, placed[3].value]).toEqual([BigInt(A3), BigInt(A4)]);
  expect(placed[4]).toEqual([]);

  const [cmd3, cmd4] = await a.run([X.cfgRead(0, D3, PCI_COMMAND, 2), X.cfgRead(0, D4, PCI_COMMAND, 2)] as const);
  const on = await a.run([
    X.cfgWrite(0, D3, PCI_COMMAND, 2, cmd3.value | BigInt(CMD_MEMORY)),
    X.cfgWrite(0, D4, PCI_COMMAND, 2, cmd4.value | BigInt(CMD_MEMORY)),
    X.cfgRead(0, D3, PCI_COMMAND, 2),
    X.p2m(0),
  ] as const);
  expect(on[0].rounds).toBeGreaterThanOrEqual(1);
  expect(on[2].value & BigInt(CMD_MEMORY)).toBe(BigInt(CMD_MEMORY));
  // Both BARs, identity mapped (the hardware domain's BARs are the host's): 4 pages and 1 page.
  expect(on[3]).toEqual([
    { gfn: A3 >>> 12, mfn: A3 >>> 12, nr: 4 },
    { gfn: A4 >>> 12, mfn: A4 >>> 12, nr: 1 },
  ]);

  // Each BAR reaches its own device: the identity dwords differ.
  const [r3, r4, r3last, w, back, beyond] = await a.run([
    X.memRead(0, A3, 4),
    X.memRead(0, A4, 4),
    X.memRead(0, A3 + 0x3000, 4),
    X.memWrite(0, A4 + 0x10, 4, 0xcafef00d),
    X.memRead(0, A4 + 0x10, 4),
    X.memRead(0, A4 + 0x1000, 4),
  ] as const);
  expect(r3).toEqual({ value: identity(uid[0], 0), where: { kind: 'bar', sbdf: D3, bar: 0, offset: 0 } });
  expect(r4).toEqual({ value: identity(uid[1], 0), where: { kind: 'bar', sbdf: D4, bar: 0, offset: 0 } });
  expect(r3.value).not.toBe(r4.value);
  expect(r3last).toEqual({ value: identity(uid[0], 0), where: { kind: 'bar', sbdf: D3, bar: 0, offset: 0x3000 } });
  expect(w.where).toEqual({ kind: 'bar', sbdf: D4, bar: 0, offset: 0x10 });
  expect(back.value).toBe(0xcafef00dn);
  // Past the 4 KiB BAR: nothing mapped, all ones.
  expect(beyond).toEqual({ value: 0xffffffffn, where: { kind: 'unmapped' } });
});

test('moving BAR0 of one device (decoding off, new address, decoding on) leaves the old address unmapped and the other device in place', async () => {
  const { a, uid } = await twoEndpoints();
  const A3 = 0xfe000000;
  const A4 = 0xfe100000;
  const MOVED = 0xfe200000;
  await a.run([
    X.cfgWrite(0, D3, PCI_BAR0, 4, A3),
    X.cfgWrite(0, D4, PCI_BAR0, 4, A4),
    X.cfgWrite(0, D3, PCI_COMMAND, 2, CMD_MEMORY),
    X.cfgWrite(0, D4, PCI_COMMAND, 2, CMD_MEMORY),
  ] as const);
  const [ignored, off, , on, bar, p2m, old, moved, other] = await a.run([
    // A BAR write while decoding is on is ignored by vPCI.
    X.cfgWrite(0, D4, PCI_BAR0, 4, MOVED),
    X.cfgWrite(0, D4, PCI_COMMAND, 2, 0),
    X.cfgWrite(0, D4, PCI_BAR0, 4, MOVED),
    X.cfgWrite(0, D4, PCI_COMMAND, 2, CMD_MEMORY),
    X.cfgRead(0, D4, PCI_BAR0, 4),
    X.p2m(0),
    X.memRead(0, A4, 4),
    X.memRead(0, MOVED, 4),
    X.memRead(0, A3, 4),
  ] as const);
  expect(ignored.rejected).toBe(false);
  expect(off.rounds).toBeGreaterThanOrEqual(1);
  expect(on.rounds).toBeGreaterThanOrEqual(1);
  expect(bar.value).toBe(BigInt(MOVED));
  expect(p2m).toEqual([
    { gfn: A3 >>> 12, mfn: A3 >>> 12, nr: 4 },
    { gfn: MOVED >>> 12, mfn: MOVED >>> 12, nr: 1 },
  ]);
  expect(old).toEqual({ value: 0xffffffffn, where: { kind: 'unmapped' } });
  expect(moved).toEqual({ value: identity(uid[1], 0), where: { kind: 'bar', sbdf: D4, bar: 0, offset: 0 } });
  expect(other).toEqual({ value: identity(uid[0], 0), where: { kind: 'bar', sbdf: D3, bar: 0, offset: 0 } });
  // The log shows the unmap of the old page before the map of the new one.
  const log = await a.one(X.p2mLog(0));
  const unmapOld = log.findIndex((r) => r.op === 'unmap' && r.gfn === A4 >>> 12);
  const mapNew = log.findIndex((r) => r.op === 'map' && r.gfn === MOVED >>> 12);
  expect(unmapOld).toBeGreaterThanOrEqual(0);
  expect(mapNew).toBeGreaterThan(unmapOld);
});

const D5 = '0000:00:05.0';
const pfn = (a: number): number => Math.floor(a / 0x1000);

test('64-bit BARs: sized through both registers, placed by firmware above 4 GiB, moved by the hardware domain, mapped at the right gfn and reached there (not at the 32-bit alias)', async () => {
  const a = (agent = XenAgent.start(await agentBinary()));
  const [, dev, rc] = await a.run([X.domainNew('hwdom'), X.devAddRaw(0, D5, 'bar0=0x200000000,mem64,pref bar2=0x10000,mem64'), X.devAssign(0, D5)] as const);
  expect(rc, 'vpci_add_handlers').toBe(0);
  expect(Object.keys(dev.bars)).toEqual(['0', '2']);
  for (const [slot, size] of [[0, 0x200000000], [2, 0x10000]] as const) {
    expect(dev.bars[slot], `bar${slot} above 4 GiB`).toBeGreaterThanOrEqual(2 ** 32);
    expect(dev.bars[slot] % size, `bar${slot} naturally aligned`).toBe(0);
  }
  expect(dev.bars[0] + 0x200000000 <= dev.bars[2] || dev.bars[2] + 0x10000 <= dev.bars[0]).toBe(true);
  const lo = (x: number): number => x % 2 ** 32;
  const hi = (x: number): number => Math.floor(x / 2 ** 32);
  // vPCI shows firmware's placement: lower dword with the type bits (64-bit, prefetchable for BAR0), upper dword.
  const shown = await a.run([X.cfgRead(0, D5, 0x10, 4), X.cfgRead(0, D5, 0x14, 4), X.cfgRead(0, D5, 0x18, 4), X.cfgRead(0, D5, 0x1c, 4)] as const);
  expect(shown.map((r) => r.value)).toEqual([BigInt(lo(dev.bars[0]) | 0xc), BigInt(hi(dev.bars[0])), BigInt(lo(dev.bars[2]) | 0x4), BigInt(hi(dev.bars[2]))]);

  // Sizing: all ones into both halves reads back the size mask with the type bits.
  const sized = await a.run([
    ...[0x10, 0x14, 0x18, 0x1c].map((r) => X.cfgWrite(0, D5, r, 4, 0xffffffff)),
    ...[0x10, 0x14, 0x18, 0x1c].map((r) => X.cfgRead(0, D5, r, 4)),
  ]);
  expect(sized.slice(4).map((r) => (r as { value: bigint }).value)).toEqual([0xcn, 0xfffffffen, 0xffff0004n, 0xffffffffn]);

  // The hardware domain places them elsewhere above 4 GiB and turns decoding on.
  const A0 = 0x800000000; // 32 GiB, 8 GiB aligned
  const A2 = 0x123450000;
  const [, , , , back0, back1, back2, back3, , p2m, r0, rEnd, r2, alias] = await a.run([
    X.cfgWrite(0, D5, 0x10, 4, lo(A0)),
    X.cfgWrite(0, D5, 0x14, 4, hi(A0)),
    X.cfgWrite(0, D5, 0x18, 4, lo(A2)),
    X.cfgWrite(0, D5, 0x1c, 4, hi(A2)),
    X.cfgRead(0, D5, 0x10, 4),
    X.cfgRead(0, D5, 0x14, 4),
    X.cfgRead(0, D5, 0x18, 4),
    X.cfgRead(0, D5, 0x1c, 4),
    X.cfgWrite(0, D5, PCI_COMMAND, 2, CMD_MEMORY),
    X.p2m(0),
    X.memRead(0, A0, 4),
    X.memRead(0, A0 + 0x200000000 - 0x1000, 4),
    X.memRead(0, A2 + 0x8, 4),
    X.memRead(0, lo(A2), 4),
  ] as const);
  expect([back0, back1, back2, back3].map((r) => r.value)).toEqual([0xcn, BigInt(hi(A0)), BigInt(lo(A2) | 0x4), BigInt(hi(A2))]);
  expect(p2m).toEqual([
    { gfn: pfn(A2), mfn: pfn(A2), nr: 0x10 },
    { gfn: pfn(A0), mfn: pfn(A0), nr: 0x200000 },
  ]);
  expect(r0).toEqual({ value: identity(dev.uid, 0), where: { kind: 'bar', sbdf: D5, bar: 0, offset: 0 } });
  expect(rEnd).toEqual({ value: identity(dev.uid, 0), where: { kind: 'bar', sbdf: D5, bar: 0, offset: 0x200000000 - 0x1000 } });
  expect(r2).toEqual({ value: 0n, where: { kind: 'bar', sbdf: D5, bar: 2, offset: 8 } });
  expect(alias).toEqual({ value: 0xffffffffn, where: { kind: 'unmapped' } });
});

test('MSI-X in a 64-bit BAR: the p2m mapping of that BAR leaves out the table page, table entries written through memory are trapped by vPCI and read back through it, the rest of the BAR reaches the device', async () => {
  const a = (agent = XenAgent.start(await agentBinary()));
  const [, dev, rc, capPtr, cap] = await a.run([
    X.domainNew('hwdom'),
    X.devAddRaw(0, D5, 'bar0=0x1000 bar2=0x4000,mem64 msix=8@bar2'),
    X.devAssign(0, D5),
    X.cfgRead(0, D5, 0x34, 1),
    X.cfgRead(0, D5, 0x60, 4),
  ] as const);
  expect(rc, 'vpci_add_handlers').toBe(0);
  // Table at offset 0 of BAR2, PBA (8 vectors: one qword) right after the 8 16-byte entries.
  expect(dev.msix).toEqual({ bar: 2, pba: 0x80 });
  expect(capPtr.value).toBe(0x60n);
  // MSI-X capability (ID 0x11, last), table size - 1 = 7 in the control word (msix.c's control_read).
  expect(cap.value).toBe(0x00070011n);
  const [B0, B2] = [dev.bars[0], dev.bars[2]];

  const [on, p2m, log] = await a.run([X.cfgWrite(0, D5, PCI_COMMAND, 2, CMD_MEMORY), X.p2m(0), X.p2mLog(0)] as const);
  expect(on.rounds).toBeGreaterThanOrEqual(1);
  // header.c removes the table and PBA pages (both page 0 of BAR2) from what it maps.
  expect(p2m).toEqual([
    { gfn: pfn(B0), mfn: pfn(B0), nr: 1 },
    { gfn: pfn(B2) + 1, mfn: pfn(B2) + 1, nr: 3 },
  ].sort((x, y) => x.gfn - y.gfn));
  expect(log.some((r) => r.op === 'map' && r.gfn <= pfn(B2) && r.gfn + r.nr > pfn(B2))).toBe(false);

  const entry = (i: number, field: number): number => B2 + 16 * i + field;
  const [wAddr, wData, wCtl, rAddr, rData, rCtl, rCtl5, pba, adjW, adjR, devW, devR, devId] = await a.run([
    X.memWrite(0, entry(3, 0), 4, 0xfee01000),
    X.memWrite(0, entry(3, 8), 4, 0x4041),
    X.memWrite(0, entry(3, 12), 4, 0),
    X.memRead(0, entry(3, 0), 4),
    X.memRead(0, entry(3, 8), 4),
    X.memRead(0, entry(3, 12), 4),
    X.memRead(0, entry(5, 12), 4),
    X.memRead(0, B2 + 0x80, 8),
    // On the table's page but outside table and PBA: msix.c's adjacent access, to the device through its mapping.
    X.memWrite(0, B2 + 0x800, 4, 0x600dcafe),
    X.memRead(0, B2 + 0x800, 4),
    // Elsewhere in the BAR: the p2m, then the device.
    X.memWrite(0, B2 + 0x1010, 4, 0xdeadbeef),
    X.memRead(0, B2 + 0x1010, 4),
    X.memRead(0, B2 + 0x3000, 4),
  ] as const);
  for (const w of [wAddr, wData, wCtl]) expect(w.where).toEqual({ kind: 'vpci-mmio' });
  expect(rAddr).toEqual({ value: 0xfee01000n, where: { kind: 'vpci-mmio' } });
  expect(rData).toEqual({ value: 0x4041n, where: { kind: 'vpci-mmio' } });
  expect(rCtl).toEqual({ value: 0n, where: { kind: 'vpci-mmio' } });
  // Entries start masked (msix.c's init_msix).
  expect(rCtl5).toEqual({ value: 1n, where: { kind: 'vpci-mmio' } });
  expect(pba).toEqual({ value: 0n, where: { kind: 'vpci-mmio' } });
  expect(adjW.where).toEqual({ kind: 'vpci-mmio' });
  expect(adjR).toEqual({ value: 0x600dcafen, where: { kind: 'vpci-mmio' } });
  expect(devW.where).toEqual({ kind: 'bar', sbdf: D5, bar: 2, offset: 0x1010 });
  expect(devR).toEqual({ value: 0xdeadbeefn, where: { kind: 'bar', sbdf: D5, bar: 2, offset: 0x1010 } });
  expect(devId).toEqual({ value: identity(dev.uid, 2), where: { kind: 'bar', sbdf: D5, bar: 2, offset: 0x3000 } });

  // Decoding off: vPCI unmaps the BAR and its handler no longer claims the table.
  const [, off, gone] = await a.run([X.cfgWrite(0, D5, PCI_COMMAND, 2, 0), X.p2m(0), X.memRead(0, entry(3, 0), 4)] as const);
  expect(off).toEqual([]);
  expect(gone).toEqual({ value: 0xffffffffn, where: { kind: 'unmapped' } });
});

test('IO BARs: sized like memory ones (0xffffffe1), placed in the port window, not mapped by vPCI (4.17 leaves them alone), port accesses reach the device when Command.IO is set', async () => {
  const a = (agent = XenAgent.start(await agentBinary()));
  const [, dev, rc] = await a.run([X.domainNew('hwdom'), X.devAddRaw(0, D5, 'bar1=0x20,io bar4=0x100,mem32,pref'), X.devAssign(0, D5)] as const);
  expect(rc).toBe(0);
  const port = dev.bars[1];
  expect(port).toBeGreaterThanOrEqual(0xc000);
  expect(port + 0x20).toBeLessThanOrEqual(0x10000);
  expect(port % 0x20).toBe(0);
  const sized = await a.exchange([
    `cfg read 0 ${D5} 0x14 4`,
    `cfg write 0 ${D5} 0x14 4 0xffffffff`,
    `cfg read 0 ${D5} 0x14 4`,
    `cfg write 0 ${D5} 0x14 4 ${'0x' + port.toString(16)}`,
    `cfg write 0 ${D5} 0x20 4 0xffffffff`,
    `cfg read 0 ${D5} 0x20 4`,
    `cfg write 0 ${D5} 0x20 4 ${'0x' + dev.bars[4].toString(16)}`,
    `cfg read 0 ${D5} 0x10 4`,
  ]);
  expect(sized).toEqual([`OK 0x${(port | 1).toString(16)}`, 'OK 1', 'OK 0xffffffe1', 'OK 1', 'OK 1', 'OK 0xffffff08', 'OK 1', 'OK 0x0']);
  const hx = (n: number): string => '0x' + n.toString(16);
  // Command.IO off: nothing decodes the port.
  expect(await a.exchange([`io read 0 ${hx(port)} 4`])).toEqual(['OK 0xffffffff no-decode']);
  const io = await a.exchange([
    `cfg write 0 ${D5} 0x4 2 0x1`,
    `p2m 0`,
    `io read 0 ${hx(port)} 4`,
    `io write 0 ${hx(port + 4)} 2 0xbeef`,
    `io read 0 ${hx(port + 4)} 4`,
    `io read 0 ${hx(port + 0x20)} 1`,
    `io write 0 0x10000 1 0`,
  ]);
  expect(io.slice(0, 6)).toEqual([
    'OK 1',
    'OK',
    `OK ${hx(Number(identity(dev.uid, 1)))} ${D5} bar1 +0x0`,
    `OK ${D5} bar1 +0x4`,
    `OK 0xbeef ${D5} bar1 +0x4`,
    'OK 0xff no-decode',
  ]);
  expect(io[6]).toMatch(/^ERR /);
});

test('device descriptions the shim cannot build are refused with a reason', async () => {
  const a = (agent = XenAgent.start(await agentBinary()));
  await a.one(X.domainNew('hwdom'));
  const bad = [
    'bar5=0x1000,mem64',
    'bar0=0x1000,mem64 bar1=0x1000',
    'bar0=0x1000 bar0=0x2000',
    'bar0=0x200,io',
    'bar0=0x20,io,pref',
    'bar0=0x1000,mem16',
    'bar0=0x1000 msix=8@bar1',
    'bar0=0x20,io msix=1',
    'bar0=0x40 msix=8',
    'bar0=0x1000 msix=4096',
    'bar0=0x100000000',
  ];
  const replies = await a.exchange(bad.map((o) => `dev add 0 ${D5} endpoint ${o}`));
  for (let i = 0; i < bad.length; i++) expect(replies[i], bad[i]).toMatch(/^ERR \S/);
  // Nothing half-added: the SBDF is still free and firmware's windows were not used up.
  const ok = await a.one(X.devAddRaw(0, D5, 'bar0=0x1000 bar1=0x20,io'));
  expect(ok.bars).toEqual({ 0: 0xe0000000, 1: 0xc000 });
});

test('1 000 pipelined config reads return 1 000 replies, in order', async () => {
  const { a } = await twoEndpoints();
  const ids = [0x11001b36, 0x1234abcd];
  const cmds: Cmd<{ value: bigint; rejected: boolean }>[] = [];
  const want: bigint[] = [];
  for (let i = 0; i < 1000; i++) {
    const dev = i % 2;
    const byte = (i >> 1) % 4;
    cmds.push(X.cfgRead(0, dev === 0 ? D3 : D4, byte, 1));
    want.push(BigInt((ids[dev] >>> (8 * byte)) & 0xff));
  }
  const t0 = Date.now();
  const got = await a.run(cmds);
  test.info().annotations.push({ type: 'timing', description: `1 000 pipelined config reads in ${Date.now() - t0} ms` });
  expect(got).toHaveLength(1000);
  expect(got.map((r) => r.value)).toEqual(want);
  expect(got.every((r) => !r.rejected)).toBe(true);
});

test('malformed commands get ERR with a reason, not a crash, and the agent goes on answering', async () => {
  const { a } = await twoEndpoints();
  const bad = [
    'bogus',
    '',
    'cfg read',
    'cfg read 0 0000:00:03.0 0x10',
    'cfg read 0 zz:zz 0 4',
    'cfg read 0 0000:00:03.0 0 3',
    'cfg read 7 0000:00:03.0 0 4',
    'cfg write 0 0000:00:03.0 0x10 2 0x10000',
    'mem read 0 0xzz 4',
    'mem read 0 0xfe000ffe 4',
    'dev add 0 0000:00:05.0 endpoint bar0=3',
    'dev add 0 0000:00:03.0 endpoint bar0=0x1000',
    'dev assign 0 0000:00:09.0',
    'knob nonsense 1',
    'domain new hwdom',
    'p2m',
  ];
  const replies = await a.exchange([...bad, X.cfgRead(0, D3, 0, 4).text]);
  expect(replies).toHaveLength(bad.length + 1);
  for (let i = 0; i < bad.length; i++) expect(replies[i], `reply to ${JSON.stringify(bad[i])}`).toMatch(/^ERR \S.*$/);
  expect(replies[bad.length]).toBe('OK 0x11001b36');
  expect(a.crash).toBeNull();
  expect(a.alive).toBe(true);
  // A refused typed command throws 'refused', naming the command and Xen's reason.
  const err = await a.one(X.domainNew('hwdom')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(XenAgentError);
  expect((err as XenAgentError).trouble).toBe('refused');
  expect((err as XenAgentError).command).toBe('domain new hwdom');
  expect((err as XenAgentError).message).toMatch(/hardware domain already/);
  // Xen 4.17 has no vPCI for guest domains; 4.21 and later do.
  const guest = await a.one(X.domainNew('guest')).catch((e: unknown) => e);
  if (guestsHaveVpci(xenTree())) expect(guest).toBe(1);
  else expect((guest as XenAgentError).message).toMatch(/unsupported: .*hardware domain only/);
});

test('an OK reply that does not parse as its command\'s is a protocol error naming the command and the line', async () => {
  const { a } = await twoEndpoints();
  const wrong: Cmd<number> = { text: X.cfgRead(0, D3, 0, 4).text, parse: X.domainNew('hwdom').parse };
  const err = await a.one(wrong).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(XenAgentError);
  expect((err as XenAgentError).trouble).toBe('protocol');
  expect((err as XenAgentError).message).toContain('"cfg read 0 0000:00:03.0 0x0 4"');
  expect((err as XenAgentError).message).toContain('"OK 0x11001b36"');
  // The framing was fine: the agent is still usable.
  expect((await a.one(X.cfgRead(0, D4, 0, 4))).value).toBe(0x1234abcdn);
});

test('a failed Xen assertion is reported as a crash with its message and exit status 3', async () => {
  const a = (agent = XenAgent.start(await agentBinary()));
  const err = await a.exchange(['domain new hwdom', 'debug crash', 'p2m 0']).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(XenAgentError);
  const e = err as XenAgentError;
  expect(e.trouble).toBe('crash');
  expect(e.command).toBe('debug crash');
  expect(e.line).toMatch(/^CRASH Assertion 'debug crash requested' failed at .*agent\.c:\d+$/);
  expect(e.exit).toBe('exited with status 3');
  expect(a.exitCode).toBe(3);
  expect(a.alive).toBe(false);
  const after = await a.exchange(['p2m 0']).catch((x: unknown) => x);
  expect((after as XenAgentError).trouble).toBe('gone');
});

test("dev reset: the device's registers go back to what firmware left and its BAR contents are lost; vPCI starts again from them where the version can be told (PHYSDEVOP_pci_device_reset, 4.18 and later), and 4.17, which cannot, keeps MSI enabled and the BAR mapped", async () => {
  const { a, hostBar, uid } = await twoEndpoints();
  const MSI_CTL = 0x42;
  const r = await a.run([
    X.cfgWrite(0, D3, PCI_COMMAND, 2, CMD_MEMORY),
    X.cfgWrite(0, D3, MSI_CTL, 2, 1),
    X.memWrite(0, hostBar[0] + 0x10, 4, 0x5a5a),
    X.devReset(0, D3),
    X.cfgRead(0, D3, PCI_COMMAND, 2),
    X.cfgRead(0, D3, MSI_CTL, 2),
    X.cfgWrite(0, D3, PCI_COMMAND, 2, CMD_MEMORY),
    X.memRead(0, hostBar[0], 4),
    X.memRead(0, hostBar[0] + 0x10, 4),
  ] as const);
  const told = guestsHaveVpci(xenTree());
  expect(r[3]).toEqual({ rc: told ? 0 : -38 });
  expect(r[4].value, 'Command after the reset (the device\'s)').toBe(0n);
  expect(Number(r[5].value) & 1, "MSI Enable as vPCI shows it: 4.17 keeps its own copy").toBe(told ? 0 : 1);
  expect(r[7]).toEqual({ value: identity(uid[0], 0), where: { kind: 'bar', sbdf: D3, bar: 0, offset: 0 } });
  expect(r[8].value, 'the BAR storage was cleared by the reset').toBe(0n);
});

test("each reset of the hardware domain's only MSI-X device takes another of its 32 I/O handler slots (init_msix registers vPCI's MSI-X handler whenever the domain's table list is empty): from 4.18 the 25th reset crashes the domain; 4.17, which has no reset hypercall, does not re-register", async () => {
  const a = (agent = XenAgent.start(await agentBinary()));
  const D = '0000:00:03.0';
  await a.run([X.domainNew('hwdom'), X.mmcfg(0, 0, 0xb000_0000, 0, 0xff), X.devAddRaw(0, D, 'bar0=0x4000 msix=4'), X.devAssign(0, D)] as const);
  const told = guestsHaveVpci(xenTree());
  // 6 builder handlers + MMCFG + the first MSI-X registration: 8 of 32 taken; each reset takes one more.
  const ok = await a.run(Array.from({ length: 24 }, () => X.devReset(0, D)));
  expect(ok.every((r) => r.rc === (told ? 0 : -38))).toBe(true);
  const last = a.run([X.devReset(0, D)]);
  if (!told) {
    expect((await last)[0].rc).toBe(-38);
    return;
  }
  const e = await last.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(XenAgentError);
  expect((e as XenAgentError).message).toContain('d0 crashed by domain_crash() at xen/arch/x86/hvm/intercept.c:259');
});

test("ioreq servers (Xen's own common/ioreq.c): a range overlapping the server's own is refused (-EEXIST) and one overlapping another server's taken; part of a claim can be unmapped (-ENOENT beyond it); the newest enabled server containing the whole access receives it, a disabled one nothing", async () => {
  const a = (agent = XenAgent.start(await agentBinary()));
  const M = 0x2000_0000;
  const r = await a.run([
    X.domainNew('hwdom', 0x100000),
    X.ioreqCreate(0),
    X.ioreqCreate(0),
    X.ioreqRange('map', 0, 0, 'mem', M, M + 0xfff),
    X.ioreqRange('map', 0, 0, 'mem', M + 0x800, M + 0x17ff),
    X.ioreqRange('map', 0, 1, 'mem', M + 0x800, M + 0x17ff),
    X.memRead(0, M + 0x900, 4),
    X.ioreqState(0, 0, true),
    X.memRead(0, M + 0x900, 4),
    X.ioreqState(0, 1, true),
    X.memRead(0, M + 0x900, 4),
    X.memRead(0, M + 0x100, 4),
    X.memRead(0, M + 0x17fe, 4),
    X.ioreqRange('unmap', 0, 1, 'mem', M + 0x900, M + 0x9ff),
    X.memRead(0, M + 0x900, 4),
    X.ioreqRange('unmap', 0, 1, 'mem', M + 0x900, M + 0x9ff),
    X.ioreqRange('map', 0, 0, 'mem', M + 0x10, M + 0xf),
    X.ioreqRange('map', 0, 7, 'mem', M, M),
  ] as const);
  expect(r[1]).toEqual({ rc: 0, id: 0 });
  expect(r[2]).toEqual({ rc: 0, id: 1 });
  expect([r[3], r[4], r[5]], 'map: ok, own overlap -EEXIST, another server\'s overlap ok').toEqual([0, -17, 0]);
  expect(r[6], 'no server enabled: the null handler').toEqual({ value: 0xffffffffn, where: { kind: 'unmapped' } });
  expect(r[8].where).toEqual({ kind: 'ioreq', server: 0 });
  expect(r[10].where, 'both claim it: the newest server').toEqual({ kind: 'ioreq', server: 1 });
  expect(r[10].value, "its device model hosts no device").toBe(0xffffffffn);
  expect(r[11].where, "only server 0's range").toEqual({ kind: 'ioreq', server: 0 });
  expect(r[12].where, 'an access across the end of a range is not contained in it').toEqual({ kind: 'unmapped' });
  expect(r[13], 'part of a claim unmapped').toBe(0);
  expect(r[14].where, 'server 1 gave that part up: server 0 still holds it').toEqual({ kind: 'ioreq', server: 0 });
  expect(r[15], 'no longer held: -ENOENT').toBe(-2);
  expect(r[16], 'start past end: -EINVAL').toBe(-22);
  expect(r[17], 'no such server: -ENOENT').toBe(-2);
});

test('ioreq routing in the hardware domain: vPCI takes every config access first, so a BDF registered by a server is passed over (the reply names it); with CONFIG_ADDRESS disabled CONFIG_DATA reaches the server claiming the port; a BAR vPCI mapped is reached directly though a server claims its range; other ports are the domain\'s own', async () => {
  const { a, hostBar, uid } = await twoEndpoints();
  const latch = (0x8000_0000 | (3 << 11)) >>> 0;
  const r = await a.run([
    X.ioreqCreate(0),
    X.ioreqRange('map', 0, 0, 'pci', 0x18, 0x18),
    X.ioreqRange('map', 0, 0, 'port', 0xcfc, 0xcff),
    X.ioreqRange('map', 0, 0, 'mem', hostBar[0], hostBar[0] + 0x3fff),
    X.ioreqRange('map', 0, 0, 'port', 0x80, 0x80),
    X.ioreqState(0, 0, true),
    X.ioWrite(0, 0xcf8, 4, latch),
    X.ioRead(0, 0xcfc, 4),
    X.ioWrite(0, 0xcf8, 4, latch & 0x7fffffff),
    X.ioRead(0, 0xcfc, 4),
    X.ioRead(0, 0xcf9, 1),
    X.cfgWrite(0, D3, PCI_COMMAND, 2, CMD_MEMORY),
    X.memRead(0, hostBar[0], 4),
    X.cfgWrite(0, D3, PCI_COMMAND, 2, 0),
    X.memRead(0, hostBar[0], 4),
    X.ioRead(0, 0x80, 1),
  ] as const);
  expect(r[0]).toEqual({ rc: 0, id: 0 });
  expect([r[1], r[2], r[3], r[4], r[5]]).toEqual([0, 0, 0, 0, 0]);
  expect(r[7], "00:03.0's IDs through vPCI, not the server").toEqual({ value: 0x11001b36n, where: { kind: 'cf8', over: 0 } });
  expect(r[9], 'CONFIG_ADDRESS disabled: a port access the server claims').toEqual({ value: 0xffffffffn, where: { kind: 'ioreq', server: 0 } });
  expect(r[10].where, 'a byte of CONFIG_ADDRESS is not vPCI\'s and no server claims it').toEqual({ kind: 'unclaimed' });
  expect(r[12], 'decoding: mapped in the p2m, no exit').toEqual({ value: identity(uid[0], 0), where: { kind: 'bar', sbdf: D3, bar: 0, offset: 0 } });
  expect(r[14].where, 'not decoding: unmapped, so the claim takes it').toEqual({ kind: 'ioreq', server: 0 });
  expect(r[15].where, "the domain's own port").toEqual({ kind: 'no-decode' });
});

describeGuestMode('guest mode (Xen 4.21 and later)', () => {
  /** Where assign_virtual_sbdf puts a guest's first device: segment 0, bus 0, slot 0, function 0. */
  const G = '0000:00:00.0';
  const D6 = '0000:00:06.0';
  const GBAR = 0xc0000000;

  /** An agent built from a tree whose guests have vPCI; an older tree: skipped, saying why. */
  async function guestAgent(): Promise<XenAgent> {
    const tree = xenTree();
    return (agent = XenAgent.start(await ensureXenAgent({ tree, timeoutMs: BUILD_TIMEOUT })));
  }

  test("two guests each get a device at virtual SBDF 0000:00:00.0, place BAR0 at the same guest address, and each guest's accesses there reach its own host device", async () => {
    const a = await guestAgent();
    const [hw, g1, g2, e3, e4, as3, as4] = await a.run([
      X.domainNew('hwdom'),
      X.domainNew('guest'),
      X.domainNew('guest'),
      X.devAdd(0, D3, { bar0: 0x4000, msi: 1 }),
      X.devAdd(0, D4, { bar0: 0x1000, id: [0xabcd, 0x1234] }),
      X.devAssignGuest(1, D3),
      X.devAssignGuest(2, D4),
    ] as const);
    expect([hw, g1, g2]).toEqual([0, 1, 2]);
    // Each guest has its own virtual bus, so both devices are at slot 0 of theirs.
    expect(as3).toEqual({ rc: 0, vsbdf: G });
    expect(as4).toEqual({ rc: 0, vsbdf: G });
    const r = await a.run([
      // A guest's BAR starts at the host address, sized as on the host.
      X.cfgRead(1, G, PCI_BAR0, 4),
      X.cfgWrite(1, G, PCI_BAR0, 4, 0xffffffff),
      X.cfgRead(1, G, PCI_BAR0, 4),
      X.cfgWrite(2, G, PCI_BAR0, 4, 0xffffffff),
      X.cfgRead(2, G, PCI_BAR0, 4),
      // Both at the same guest address, then decoding on.
      X.cfgWrite(1, G, PCI_BAR0, 4, GBAR),
      X.cfgWrite(2, G, PCI_BAR0, 4, GBAR),
      X.cfgRead(1, G, PCI_BAR0, 4),
      X.cfgRead(2, G, PCI_BAR0, 4),
      X.cfgWrite(1, G, PCI_COMMAND, 2, CMD_MEMORY),
      X.cfgWrite(2, G, PCI_COMMAND, 2, CMD_MEMORY),
      X.cfgRead(1, G, PCI_COMMAND, 2),
      X.p2m(1),
      X.p2m(2),
      X.p2m(0),
      // The host BARs did not move (the hardware domain reads the devices directly).
      X.cfgRead(0, D3, PCI_BAR0, 4),
      X.cfgRead(0, D4, PCI_BAR0, 4),
    ] as const);
    expect(r[0].value).toBe(BigInt(e3.bar0));
    expect([r[2].value, r[4].value]).toEqual([0xffffc000n, 0xfffff000n]);
    expect([r[7].value, r[8].value]).toEqual([BigInt(GBAR), BigInt(GBAR)]);
    expect(r[9].rounds).toBeGreaterThanOrEqual(1);
    expect(r[11].value).toBe(BigInt(CMD_MEMORY));
    // Each guest's p2m maps the same guest frames onto its own device's host BAR; the hardware domain's maps nothing.
    expect(r[12]).toEqual([{ gfn: pfn(GBAR), mfn: pfn(e3.bar0), nr: 4 }]);
    expect(r[13]).toEqual([{ gfn: pfn(GBAR), mfn: pfn(e4.bar0), nr: 1 }]);
    expect(r[14]).toEqual([]);
    expect([r[15].value, r[16].value]).toEqual([BigInt(e3.bar0), BigInt(e4.bar0)]);

    const m = await a.run([
      X.memRead(1, GBAR, 4),
      X.memRead(2, GBAR, 4),
      X.memRead(1, GBAR + 0x3000, 4),
      X.memRead(2, GBAR + 0x1000, 4),
      X.memWrite(1, GBAR + 0x10, 4, 0x11111111),
      X.memWrite(2, GBAR + 0x10, 4, 0x22222222),
      X.memRead(1, GBAR + 0x10, 4),
      X.memRead(2, GBAR + 0x10, 4),
      X.memRead(0, GBAR, 4),
    ] as const);
    expect(m[0]).toEqual({ value: identity(e3.uid, 0), where: { kind: 'bar', sbdf: D3, bar: 0, offset: 0 } });
    expect(m[1]).toEqual({ value: identity(e4.uid, 0), where: { kind: 'bar', sbdf: D4, bar: 0, offset: 0 } });
    expect(m[2]).toEqual({ value: identity(e3.uid, 0), where: { kind: 'bar', sbdf: D3, bar: 0, offset: 0x3000 } });
    // Past guest 2's 4 KiB BAR: nothing.
    expect(m[3]).toEqual({ value: 0xffffffffn, where: { kind: 'unmapped' } });
    expect(m[4].where).toEqual({ kind: 'bar', sbdf: D3, bar: 0, offset: 0x10 });
    expect(m[5].where).toEqual({ kind: 'bar', sbdf: D4, bar: 0, offset: 0x10 });
    expect([m[6].value, m[7].value]).toEqual([0x11111111n, 0x22222222n]);
    expect(m[8]).toEqual({ value: 0xffffffffn, where: { kind: 'unmapped' } });
  });

  test('a guest BAR write is ignored while decoding is on; with decoding off the BAR moves in guest space only, and decoding on maps the new guest address (the old one is unmapped)', async () => {
    const a = await guestAgent();
    const [, , e3] = await a.run([X.domainNew('hwdom'), X.domainNew('guest'), X.devAdd(0, D3, { bar0: 0x4000 }), X.devAssignGuest(1, D3)] as const);
    const MOVED = 0xd0000000;
    const r = await a.run([
      X.cfgWrite(1, G, PCI_BAR0, 4, GBAR),
      X.cfgWrite(1, G, PCI_COMMAND, 2, CMD_MEMORY),
      X.cfgWrite(1, G, PCI_BAR0, 4, MOVED),
      X.cfgRead(1, G, PCI_BAR0, 4),
      X.p2m(1),
      X.cfgWrite(1, G, PCI_COMMAND, 2, 0),
      X.p2m(1),
      X.cfgWrite(1, G, PCI_BAR0, 4, MOVED),
      X.cfgWrite(1, G, PCI_COMMAND, 2, CMD_MEMORY),
      X.cfgRead(1, G, PCI_BAR0, 4),
      X.p2m(1),
      X.memRead(1, GBAR, 4),
      X.memRead(1, MOVED, 4),
      X.cfgRead(0, D3, PCI_BAR0, 4),
      X.p2mLog(1),
    ] as const);
    expect(r[3].value, 'the write while decoding was ignored').toBe(BigInt(GBAR));
    expect(r[4]).toEqual([{ gfn: pfn(GBAR), mfn: pfn(e3.bar0), nr: 4 }]);
    expect(r[6]).toEqual([]);
    expect(r[9].value).toBe(BigInt(MOVED));
    expect(r[10]).toEqual([{ gfn: pfn(MOVED), mfn: pfn(e3.bar0), nr: 4 }]);
    expect(r[11]).toEqual({ value: 0xffffffffn, where: { kind: 'unmapped' } });
    expect(r[12]).toEqual({ value: identity(e3.uid, 0), where: { kind: 'bar', sbdf: D3, bar: 0, offset: 0 } });
    expect(r[13].value, 'the host BAR').toBe(BigInt(e3.bar0));
    expect(r[14].map((o) => `${o.op}:${o.gfn.toString(16)}:${o.mfn.toString(16)}:${o.nr}`)).toEqual([
      `map:${pfn(GBAR).toString(16)}:${pfn(e3.bar0).toString(16)}:4`,
      `unmap:${pfn(GBAR).toString(16)}:${pfn(e3.bar0).toString(16)}:4`,
      `map:${pfn(MOVED).toString(16)}:${pfn(e3.bar0).toString(16)}:4`,
    ]);
  });

  test('a guest is shown MSI and MSI-X only, reads all ones from the registers vPCI does not emulate (vendor ID among them) and zero from extended space; its writes there are dropped; the host SBDF means nothing to it', async () => {
    const a = await guestAgent();
    const desc = 'bar0=0x1000 bar2=0x4000,mem64 msi=1 msix=8@bar2 cap=0x1';
    const [, , e5, , as5] = await a.run([X.domainNew('hwdom'), X.domainNew('guest'), X.devAddRaw(0, D5, desc), X.devAddRaw(0, D6, desc), X.devAssignGuest(1, D5), X.devAssign(0, D6)] as const);
    expect(as5).toEqual({ rc: 0, vsbdf: G });
    const byte = (d: number, s: string, reg: number): Cmd<{ value: bigint; rejected: boolean }> => X.cfgRead(d, s, reg, 1);
    const [hwList, hwPm, hwNext] = await a.run([byte(0, D6, 0x34), byte(0, D6, 0x70), byte(0, D6, 0x71)] as const);
    // The hardware domain sees the whole list: 0x70 (power management) -> 0x40 (MSI) -> 0x60 (MSI-X).
    expect([hwList.value, hwPm.value, hwNext.value]).toEqual([0x70n, 0x01n, 0x40n]);
    const r = await a.run([
      byte(1, G, 0x34),
      byte(1, G, 0x40),
      byte(1, G, 0x41),
      byte(1, G, 0x60),
      byte(1, G, 0x61),
      X.cfgRead(1, G, 0x70, 4),
      X.cfgRead(1, G, 0x06, 2),
      X.cfgRead(1, G, 0x00, 4),
      byte(1, G, 0x0e),
      X.cfgRead(1, G, 0x2c, 4),
      X.cfgRead(1, G, 0x3c, 4),
      X.cfgRead(1, G, 0x100, 4),
      X.cfgRead(1, G, 0x14, 4),
      X.cfgRead(1, G, 0x18, 4),
      X.cfgRead(1, G, 0x30, 4),
      X.cfgRead(1, G, 0x62, 2),
      X.cfgRead(1, G, 0x64, 4),
      X.cfgWrite(1, G, 0x3c, 1, 0x0b),
      byte(0, D5, 0x3c),
      X.cfgRead(1, D5, 0x00, 4),
    ] as const);
    // Capability list: MSI at 0x40, then MSI-X at 0x60, then the end; the power management capability is skipped.
    expect([r[0], r[1], r[2], r[3], r[4]].map((x) => x.value)).toEqual([0x40n, 0x05n, 0x60n, 0x11n, 0x00n]);
    expect(r[5].value, 'the hidden capability').toBe(0xffffffffn);
    expect(r[6].value, 'Status: capability list').toBe(0x10n);
    expect(r[7].value, 'vendor and device ID are not emulated for guests').toBe(0xffffffffn);
    expect(r[8].value, 'header type').toBe(0xffn);
    expect(r[9].value, 'subsystem IDs').toBe(0xffffffffn);
    expect(r[10].value, 'interrupt line and pin').toBe(0xffffffffn);
    expect(r[11].value, 'extended capabilities read as zero').toBe(0n);
    expect(r[12].value, 'the unused BAR1').toBe(0n);
    expect(r[13].value, 'BAR2 (64-bit) at the host address').toBe(BigInt((e5.bars[2] % 2 ** 32) | 0x4));
    expect(r[14].value, 'no ROM for guests').toBe(0n);
    // MSI-X control (table size 8 - 1) is vPCI's; msix.c registers nothing for the table and PBA offset registers, so a guest reads all ones there.
    expect(r[15].value).toBe(0x7n);
    expect(r[16].value).toBe(0xffffffffn);
    expect(r[18].value, 'the guest wrote 0x0b to the interrupt line: dropped').toBe(0n);
    expect(r[19].value, 'the host SBDF from the guest').toBe(0xffffffffn);
  });

  test('the virtual bus: function 0 only (-95), 32 slots (a 33rd device: -28), the first free slot taken, a slot freed by dev deassign reused', async () => {
    const a = await guestAgent();
    await a.run([X.domainNew('hwdom'), X.domainNew('guest')] as const);
    const fn1 = await a.run([X.devAddRaw(0, '0000:02:00.1', 'bar0=0x1000'), X.devAssignGuest(1, '0000:02:00.1')] as const);
    expect(fn1[1]).toEqual({ rc: -95 });
    const slot = (n: number): string => `0000:01:${n.toString(16).padStart(2, '0')}.0`;
    const cmds: Cmd<unknown>[] = [];
    for (let n = 0; n < 32; n++) cmds.push(X.devAddRaw(0, slot(n), 'bar0=0x1000'), X.devAssignGuest(1, slot(n)));
    const got = (await a.run(cmds)) as unknown[];
    for (let n = 0; n < 32; n++) expect(got[2 * n + 1]).toEqual({ rc: 0, vsbdf: `0000:00:${n.toString(16).padStart(2, '0')}.0` });
    const full = await a.run([X.devAddRaw(0, '0000:03:00.0', 'bar0=0x1000'), X.devAssignGuest(1, '0000:03:00.0')] as const);
    expect(full[1]).toEqual({ rc: -28 });
    // Slot 5 freed, then taken by the next device.
    const again = await a.run([X.devDeassign(1, slot(5)), X.devAssignGuest(1, '0000:03:00.0'), X.cfgRead(1, '0000:00:05.0', 0x10, 4)] as const);
    expect(again[1]).toEqual({ rc: 0, vsbdf: '0000:00:05.0' });
    expect(again[2].value, "the new device's BAR0 at its virtual SBDF").not.toBe(0xffffffffn);
  });

  test("MSI-X in a guest's 64-bit BAR: the table page is left out of the guest's p2m and trapped at the guest address; the rest of the BAR maps onto the host BAR", async () => {
    const a = await guestAgent();
    const [, , dev, as] = await a.run([X.domainNew('hwdom'), X.domainNew('guest'), X.devAddRaw(0, D5, 'bar2=0x4000,mem64 msix=8@bar2'), X.devAssignGuest(1, D5)] as const);
    expect(as).toEqual({ rc: 0, vsbdf: G });
    const G2 = 0xc0010000;
    const B2 = dev.bars[2];
    const r = await a.run([
      X.cfgWrite(1, G, 0x18, 4, G2),
      X.cfgWrite(1, G, 0x1c, 4, 0),
      X.cfgWrite(1, G, PCI_COMMAND, 2, CMD_MEMORY),
      X.p2m(1),
      X.memWrite(1, G2 + 16 * 3, 4, 0xfee01000),
      X.memRead(1, G2 + 16 * 3, 4),
      X.memRead(1, G2 + 16 * 5 + 12, 4),
      X.memRead(1, G2 + 0x1000, 4),
      X.memRead(0, G2, 4),
    ] as const);
    expect(r[3]).toEqual([{ gfn: pfn(G2) + 1, mfn: pfn(B2) + 1, nr: 3 }]);
    expect(r[4].where).toEqual({ kind: 'vpci-mmio' });
    expect(r[5]).toEqual({ value: 0xfee01000n, where: { kind: 'vpci-mmio' } });
    // Entries start masked.
    expect(r[6]).toEqual({ value: 1n, where: { kind: 'vpci-mmio' } });
    expect(r[7]).toEqual({ value: identity(dev.uid, 2), where: { kind: 'bar', sbdf: D5, bar: 2, offset: 0x1000 } });
    expect(r[8]).toEqual({ value: 0xffffffffn, where: { kind: 'unmapped' } });
  });

  test('a guest whose BAR cannot be mapped is crashed (the hardware domain is not): the agent says CRASH with where domain_crash() was called, and ends', async () => {
    const a = await guestAgent();
    await a.run([X.domainNew('hwdom'), X.domainNew('guest'), X.devAdd(0, D3, { bar0: 0x4000 }), X.devAssignGuest(1, D3)] as const);
    await a.run([X.cfgWrite(1, G, PCI_BAR0, 4, GBAR), X.knob('p2m_error', -12)] as const);
    // vpci_process_pending calls domain_crash() for a domU whose map failed (header.c); a dead guest ends the session.
    const e = await a.run([X.cfgWrite(1, G, PCI_COMMAND, 2, CMD_MEMORY)] as const).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(XenAgentError);
    expect((e as XenAgentError).trouble).toBe('crash');
    expect((e as XenAgentError).message).toMatch(/d1 crashed by domain_crash\(\) at xen\/drivers\/vpci\/header\.c:\d+/);
    expect(a.exitCode).toBe(3);
    expect(a.stderr).toContain('Domain 1 reported crashed');
  });

  test("dev deassign takes vPCI and the iomem permissions away but leaves the guest's p2m as vPCI left it: the old guest address still reaches the device", async () => {
    const a = await guestAgent();
    const [, , e3] = await a.run([X.domainNew('hwdom'), X.domainNew('guest'), X.devAdd(0, D3, { bar0: 0x4000 }), X.devAssignGuest(1, D3)] as const);
    const r = await a.run([
      X.cfgWrite(1, G, PCI_BAR0, 4, GBAR),
      X.cfgWrite(1, G, PCI_COMMAND, 2, CMD_MEMORY),
      X.devDeassign(1, D3),
      X.cfgRead(1, G, PCI_BAR0, 4),
      X.p2m(1),
      X.memRead(1, GBAR, 4),
    ] as const);
    expect(r[3].value, 'no device at the virtual SBDF any more').toBe(0xffffffffn);
    expect(r[4]).toEqual([{ gfn: pfn(GBAR), mfn: pfn(e3.bar0), nr: 4 }]);
    expect(r[5]).toEqual({ value: identity(e3.uid, 0), where: { kind: 'bar', sbdf: D3, bar: 0, offset: 0 } });
  });

  test('dev reset of a guest device: vpci_reset_device assigns it again at the first free virtual slot (it moves when a lower one is free) and shows the host BAR address again; the old p2m entry stays', async () => {
    const a = await guestAgent();
    const [, , e3, e4, s3, s4] = await a.run([X.domainNew('hwdom'), X.domainNew('guest'), X.devAdd(0, D3, { bar0: 0x4000 }), X.devAdd(0, D4, { bar0: 0x1000 }), X.devAssignGuest(1, D3), X.devAssignGuest(1, D4)] as const);
    expect([s3.vsbdf, s4.vsbdf]).toEqual([G, '0000:00:01.0']);
    const r = await a.run([
      X.cfgWrite(1, '0000:00:01.0', PCI_BAR0, 4, GBAR),
      X.cfgWrite(1, '0000:00:01.0', PCI_COMMAND, 2, CMD_MEMORY),
      X.devDeassign(1, D3),
      X.devReset(1, D4),
      X.cfgRead(1, G, PCI_BAR0, 4),
      X.cfgRead(1, '0000:00:01.0', PCI_BAR0, 4),
      X.p2m(1),
    ] as const);
    expect(r[3]).toEqual({ rc: 0, vsbdf: G });
    expect(r[4].value, 'the guest is shown the host address again (init_header)').toBe(BigInt(e4.bar0));
    expect(r[5].value, 'nothing at its former number').toBe(0xffffffffn);
    expect(r[6]).toEqual([{ gfn: pfn(GBAR), mfn: pfn(e4.bar0), nr: 1 }]);
    expect(e3.uid).not.toBe(e4.uid);
  });

  test("a reset while vPCI holds a mapping of the MSI-X table page (msix.c ioremaps the table's page for what lies past the entries): the page's contents are lost, the mapping stays valid, and vPCI lets go of it when it sets the device up again", async () => {
    const a = await guestAgent();
    const [, , e] = await a.run([X.domainNew('hwdom'), X.domainNew('guest'), X.devAddRaw(0, D3, 'bar0=0x4000 msix=8'), X.devAssignGuest(1, D3)] as const);
    expect(e.msix).toEqual({ bar: 0, pba: 0x80 });
    const r = await a.run([
      X.cfgWrite(1, G, PCI_BAR0, 4, GBAR),
      X.cfgWrite(1, G, PCI_COMMAND, 2, CMD_MEMORY),
      X.memWrite(1, GBAR + 0x108, 4, 0x4042), // past the 8 entries and the PBA: the device's, through vPCI's mapping
      X.memRead(1, GBAR + 0x108, 4),
      X.devReset(1, D3),
      X.cfgWrite(1, G, PCI_BAR0, 4, GBAR),
      X.cfgWrite(1, G, PCI_COMMAND, 2, CMD_MEMORY),
      X.memRead(1, GBAR + 0x108, 4),
    ] as const);
    expect(r[3]).toEqual({ value: 0x4042n, where: { kind: 'vpci-mmio' } });
    expect(r[4]).toEqual({ rc: 0, vsbdf: G });
    expect(r[7]).toEqual({ value: 0n, where: { kind: 'vpci-mmio' } });
  });

  test("ioreq servers are per domain: a guest's server claims a range and its own virtual BDF; the guest's ECAM accesses still go to vPCI, another guest's accesses at the same address to nobody, and the guest's mapped BAR is reached there directly", async () => {
    const a = await guestAgent();
    const ECAM = 0xb000_0000;
    const [, g1, g2, , as3] = await a.run([X.domainNew('hwdom'), X.domainNew('guest'), X.domainNew('guest'), X.devAdd(0, D3, { bar0: 0x4000, msi: 1 }), X.devAssignGuest(1, D3)] as const);
    expect([g1, g2, as3]).toEqual([1, 2, { rc: 0, vsbdf: G }]);
    const r = await a.run([
      X.mmcfg(1, 0, ECAM, 0, 0),
      X.ioreqCreate(1),
      X.ioreqRange('map', 1, 0, 'pci', 0, 0),
      X.ioreqRange('map', 1, 0, 'mem', GBAR, GBAR + 0x3fff),
      X.ioreqState(1, 0, true),
      X.memRead(1, ECAM + PCI_BAR0, 4),
      X.memRead(1, GBAR, 4),
      X.memRead(2, GBAR, 4),
      X.cfgWrite(1, G, PCI_BAR0, 4, GBAR),
      X.cfgWrite(1, G, PCI_COMMAND, 2, CMD_MEMORY),
      X.memRead(1, GBAR, 4),
    ] as const);
    expect(r[1]).toEqual({ rc: 0, id: 0 });
    expect([r[2], r[3], r[4]]).toEqual([0, 0, 0]);
    expect(r[5].where, 'config through the ECAM window: vPCI').toEqual({ kind: 'mmcfg' });
    expect(r[6], 'unmapped in d1: its server').toEqual({ value: 0xffffffffn, where: { kind: 'ioreq', server: 0 } });
    expect(r[7].where, 'd2 has no server').toEqual({ kind: 'unmapped' });
    expect(r[10].where, 'decoding: the p2m maps the guest address onto the host BAR').toMatchObject({ kind: 'bar', sbdf: D3, bar: 0 });
  });
});

test.describe('the TypeScript side against stand-in programs', () => {
  let dir = '';
  test.beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'isoroot-xen-agent-'));
  });
  test.afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const script = (name: string, body: string): string => {
    const f = join(dir, name);
    writeFileSync(f, `#!/bin/sh\n${body}\n`);
    chmodSync(f, 0o755);
    return f;
  };

  test('no reply in time is a hang, and the process is killed', async () => {
    const a = (agent = XenAgent.start(script('mute', 'read line; echo OK 0; sleep 60'), { timeoutMs: 300 }));
    const err = await a.exchange(['domain new hwdom', 'p2m 0']).catch((e: unknown) => e);
    expect((err as XenAgentError).trouble).toBe('hang');
    expect((err as XenAgentError).command).toBe('p2m 0');
    expect((err as XenAgentError).message).toContain('1 of 2 replies in');
    await a.dispose();
    expect(a.exit).toBe('killed by SIGKILL');
  });

  test('a reply line that is neither OK nor ERR is a protocol error naming the command and the line', async () => {
    const a = (agent = XenAgent.start(script('echo', 'exec cat')));
    const err = await a.exchange(['p2m 0']).catch((e: unknown) => e);
    expect((err as XenAgentError).trouble).toBe('protocol');
    expect((err as XenAgentError).message).toBe('protocol error: the reply to "p2m 0" is neither "OK ..." nor "ERR <reason>": "p2m 0"');
    // The stream is out of step: later calls fail at once.
    expect(((await a.exchange(['p2m 0']).catch((e: unknown) => e)) as XenAgentError).trouble).toBe('protocol');
  });

  test('an exit without a CRASH line is reported with its status', async () => {
    const a = (agent = XenAgent.start(script('quits', 'read line; echo oops >&2; exit 7')));
    const err = await a.exchange(['p2m 0']).catch((e: unknown) => e);
    expect((err as XenAgentError).trouble).toBe('gone');
    expect((err as XenAgentError).exit).toBe('exited with status 7');
    expect((err as XenAgentError).stderr).toContain('oops');
  });
});
