/**
 * xen-vpci-agent: Xen's own vPCI code (built by scripts/build-xen-vpci.sh
 * against isoroot's shim) behind a line protocol, driven through
 * harness/adapters/xen/agent.ts as a PVH hardware domain would: BAR sizing
 * and placement, memory decoding mapping the BARs in the p2m, accesses
 * reaching the host device behind the mapping, a moved BAR, pipelining,
 * malformed commands and crashes. The TypeScript side's own failure reports
 * (hang, bad reply line, exit) are checked against stand-in programs.
 * Without a Xen tree or gcc the Xen suites fail in CI and are skipped loudly
 * elsewhere (suites/require.ts).
 */
import { expect, test } from '@playwright/test';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureXenAgent, findXenTree, X, XenAgent, XenAgentError, type Cmd } from '../../harness/adapters/xen/agent.ts';
import { missing, requireProgram } from '../require.ts';

const BUILD_TIMEOUT = 300_000;
const D3 = '0000:00:03.0';
const D4 = '0000:00:04.0';
const PCI_COMMAND = 0x04;
const PCI_BAR0 = 0x10;
const CMD_MEMORY = 0x2;
/** The identity dword at the start of each page of a host BAR (the model endpoint's): 0x15000000 | uid << 8 | bar. */
const identity = (uid: number, bar: number): bigint => BigInt((0x15000000 | (uid << 8) | bar) >>> 0);

/** The agent binary, built into the cache when missing or stale; no tree or gcc: a failure in CI, a loud skip elsewhere. */
async function agentBinary(): Promise<string> {
  requireProgram('gcc', 'apt-get install build-essential');
  const found = findXenTree();
  if ('why' in found) {
    const user = process.env.ISOROOT_XEN_SRC;
    return missing(user ? `ISOROOT_XEN_SRC=${user} cannot be built from (${found.why}); the Xen suites cannot run` : `no Xen source tree (${found.why}; for the suites, ISOROOT_XEN_SRC names a checkout); the Xen suites cannot run without one`);
  }
  return ensureXenAgent({ tree: found.tree, timeoutMs: BUILD_TIMEOUT });
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
  const err = await a.one(X.domainNew('guest')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(XenAgentError);
  expect((err as XenAgentError).trouble).toBe('refused');
  expect((err as XenAgentError).command).toBe('domain new guest');
  // Xen 4.17 has no vPCI for guest domains; newer trees may accept one.
  if ((err as XenAgentError).line?.includes('unsupported')) expect((err as XenAgentError).message).toMatch(/hardware domain only/);
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
