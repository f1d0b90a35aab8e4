/**
 * The Wireshark dissector (tools/wireshark/vfio-user.lua), run by the real
 * tshark on captures PcapWriter writes: a realistic session built with the
 * codec's encodeMessage (VERSION, DEVICE_GET_INFO, a region with a sparse
 * mmap capability, IRQs with eventfds, region and DMA accesses, an error
 * reply, …), checked field by field per packet, plus malformed messages
 * the dissector must flag without a Lua error.
 */
import { test, expect } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeMessage } from '../../harness/protocol/vfio-user/codec.ts';
import {
  COMMANDS,
  COMMAND_NAMES,
  DEVICE_FLAG_PCI,
  DEVICE_FLAG_RESET,
  DMA_READ_FLAG,
  DMA_WRITE_FLAG,
  FEATURE_GET,
  IRQ,
  IRQ_INFO_EVENTFD,
  IRQ_INFO_NORESIZE,
  IRQ_SET_ACTION_TRIGGER,
  IRQ_SET_DATA_EVENTFD,
  REGION,
  REGION_FLAG_CAPS,
  REGION_FLAG_MMAP,
  REGION_FLAG_READ,
  REGION_FLAG_WRITE,
  type Message,
} from '../../harness/protocol/vfio-user/messages.ts';
import { PSEUDO_HEADER_SIZE, encodePseudoHeader, pcapGlobalHeader } from '../../harness/capture/encapsulation.ts';
import { PcapWriter } from '../../harness/capture/pcap-writer.ts';
import { requireProgram } from '../require.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const LUA = join(ROOT, 'tools', 'wireshark', 'vfio-user.lua');

test.beforeEach(() => requireProgram('tshark', 'apt-get install tshark'));

let dir: string;
let home: string;
test.beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'isoroot-tshark-'));
  // A home of its own: no personal preferences or plugins (a copy of the dissector there would load twice).
  home = join(dir, 'home');
  mkdirSync(home);
});
test.afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs tshark with the dissector; its stdout. Fails on a tshark error or a Lua error. */
function tshark(args: string[]): string {
  const r = spawnSync('tshark', ['-n', '-X', `lua_script:${LUA}`, ...args], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config') },
  });
  if (r.error) throw r.error;
  // As root tshark warns 'Running as user "root"…' on stderr; that is all it may say.
  const stderr = r.stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^Running as user "root"/.test(l))
    .join('\n');
  if (/Some fields aren't valid/.test(stderr)) {
    throw new Error(
      `tshark does not know the vfio_user fields: the Lua dissector did not load (Lua disabled? As root, Wireshark's init.lua must allow it: run_user_scripts_when_superuser). tshark said:\n${stderr}`,
    );
  }
  if (r.status !== 0 || stderr !== '') throw new Error(`tshark ${args.join(' ')} exited ${r.status}:\n${stderr}`);
  if (/Lua Error|LuaError|Lua: Error/.test(r.stdout)) throw new Error(`the dissector raised a Lua error:\n${r.stdout}`);
  return r.stdout;
}

type Layers = Record<string, string[]>;

/** The given fields of every packet, from tshark -T json -e …: one map per packet, in order. */
function fields(file: string, names: string[]): Layers[] {
  const out = tshark(['-r', file, '-T', 'json', ...names.flatMap((n) => ['-e', n])]);
  const packets = JSON.parse(out) as { _source: { layers: Layers } }[];
  return packets.map((p) => p._source.layers);
}

/** tshark prints booleans as 1/0 (4.0) or True/False (later versions). */
const bool = (v: string[] | undefined): boolean | undefined => (v === undefined ? undefined : v[0] === '1' || v[0] === 'True');

/** A 64-bit hex field as tshark prints it (0x and 16 digits). */
const h64 = (n: number | bigint): string => '0x' + n.toString(16).padStart(16, '0');
const h32 = (n: number): string => '0x' + n.toString(16).padStart(8, '0');

/** One record of the capture under test. */
interface Rec {
  session: number;
  dir: 'to-server' | 'to-client';
  m: Message;
}

/** A request or a reply; fds are placeholders (only their number is captured). */
type Loose<M> = M extends Message ? Omit<M, 'reply' | 'noReply' | 'errno' | 'fds'> & { noReply?: boolean; errno?: number; fds?: number[] } : never;
const req = (m: Loose<Message>): Message => ({ reply: false, noReply: false, fds: [], ...m }) as Message;
const rep = (m: Loose<Message>): Message => ({ reply: true, errno: 0, fds: [], ...m }) as Message;

const C = 'to-server' as const;
const S = 'to-client' as const;
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

/** Session 0: what QEMU and a device server say; session 1: the less common commands. */
const SESSION: Rec[] = [
  { session: 0, dir: C, m: req({ command: 'VERSION', id: 0, body: { major: 1, minor: 0, caps: { maxMsgFds: 8, maxDataXferSize: 1 << 20, twinSocket: { supported: true } } } }) },
  { session: 0, dir: S, m: rep({ command: 'VERSION', id: 0, body: { major: 1, minor: 0, caps: { maxMsgFds: 1, maxDataXferSize: 1 << 20, writeMultiple: true } } }) },
  { session: 0, dir: C, m: req({ command: 'DEVICE_GET_INFO', id: 1, body: { flags: 0, numRegions: 0, numIrqs: 0 } }) },
  { session: 0, dir: S, m: rep({ command: 'DEVICE_GET_INFO', id: 1, body: { flags: DEVICE_FLAG_RESET | DEVICE_FLAG_PCI, numRegions: 9, numIrqs: 5 } }) },
  { session: 0, dir: C, m: req({ command: 'DEVICE_GET_REGION_INFO', id: 2, body: { argsz: 80, flags: 0, index: REGION.BAR0 + 2, capOffset: 0, size: 0n, offset: 0n } }) },
  {
    session: 0,
    dir: S,
    m: rep({
      command: 'DEVICE_GET_REGION_INFO',
      id: 2,
      fds: [41],
      body: {
        argsz: 80,
        flags: REGION_FLAG_READ | REGION_FLAG_WRITE | REGION_FLAG_MMAP | REGION_FLAG_CAPS,
        index: 2,
        capOffset: 32,
        size: 0x4000n,
        offset: 0x20000n,
        sparse: [
          { offset: 0x1000n, size: 0x1000n },
          { offset: 0x3000n, size: 0x1000n },
        ],
      },
    }),
  },
  { session: 0, dir: C, m: req({ command: 'DEVICE_GET_IRQ_INFO', id: 3, body: { argsz: 16, flags: 0, index: IRQ.MSIX, count: 0 } }) },
  { session: 0, dir: S, m: rep({ command: 'DEVICE_GET_IRQ_INFO', id: 3, body: { argsz: 16, flags: IRQ_INFO_EVENTFD | IRQ_INFO_NORESIZE, index: IRQ.MSIX, count: 8 } }) },
  {
    session: 0,
    dir: C,
    m: req({ command: 'DEVICE_SET_IRQS', id: 4, fds: [50, 51], body: { argsz: 20, flags: IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, index: IRQ.MSIX, start: 0, count: 2 } }),
  },
  { session: 0, dir: S, m: rep({ command: 'DEVICE_SET_IRQS', id: 4, body: null }) },
  { session: 0, dir: C, m: req({ command: 'REGION_READ', id: 5, body: { offset: 0x10n, region: REGION.CONFIG, count: 4 } }) },
  { session: 0, dir: S, m: rep({ command: 'REGION_READ', id: 5, body: { offset: 0x10n, region: REGION.CONFIG, count: 4, data: bytes(0x0c, 0x00, 0x00, 0xfe) } }) },
  { session: 0, dir: C, m: req({ command: 'REGION_WRITE', id: 6, body: { offset: 0x4n, region: REGION.CONFIG, count: 2, data: bytes(0x06, 0x01) } }) },
  { session: 0, dir: S, m: rep({ command: 'REGION_WRITE', id: 6, body: { offset: 0x4n, region: REGION.CONFIG, count: 2 } }) },
  { session: 0, dir: C, m: req({ command: 'DMA_MAP', id: 7, fds: [60], body: { flags: DMA_READ_FLAG | DMA_WRITE_FLAG, offset: 0x2000n, address: 0x100000n, size: 0x10000n } }) },
  { session: 0, dir: S, m: rep({ command: 'DMA_MAP', id: 7, body: null }) },
  { session: 0, dir: S, m: req({ command: 'DMA_READ', id: 0x8000, body: { address: 0x100010n, count: 8n } }) },
  { session: 0, dir: C, m: rep({ command: 'DMA_READ', id: 0x8000, body: { address: 0x100010n, count: 8n, data: bytes(1, 2, 3, 4, 5, 6, 7, 8) } }) },
  { session: 0, dir: S, m: req({ command: 'DMA_WRITE', id: 0x8001, body: { address: 0x100020n, count: 4n, data: bytes(0xaa, 0xbb, 0xcc, 0xdd) } }) },
  { session: 0, dir: C, m: rep({ command: 'DMA_WRITE', id: 0x8001, body: { address: 0x100020n, count: 4n } }) },
  { session: 0, dir: C, m: req({ command: 'REGION_READ', id: 8, body: { offset: 0x1000n, region: REGION.BAR5, count: 4 } }) },
  { session: 0, dir: S, m: rep({ command: 'REGION_READ', id: 8, errno: 22, body: null }) },
  { session: 0, dir: C, m: req({ command: 'DMA_UNMAP', id: 9, body: { flags: 0, address: 0x100000n, size: 0x10000n } }) },
  { session: 0, dir: S, m: rep({ command: 'DMA_UNMAP', id: 9, body: { flags: 0, address: 0x100000n, size: 0x10000n } }) },
  { session: 0, dir: C, m: req({ command: 'DEVICE_RESET', id: 10, noReply: true, body: null }) },
  // Session 1.
  {
    session: 1,
    dir: C,
    m: req({ command: 'REGION_WRITE_MULTI', id: 1, body: { writes: [{ offset: 0x40n, region: 0, count: 4, data: bytes(1, 0, 0, 0) }, { offset: 0x44n, region: 0, count: 2, data: bytes(2, 0) }] } }),
  },
  { session: 1, dir: S, m: rep({ command: 'REGION_WRITE_MULTI', id: 1, body: { wrCnt: 2n } }) },
  { session: 1, dir: C, m: req({ command: 'DEVICE_FEATURE', id: 2, body: { argsz: 16, flags: FEATURE_GET | 1, data: new Uint8Array(0) } }) },
  { session: 1, dir: S, m: rep({ command: 'DEVICE_FEATURE', id: 2, body: { argsz: 16, flags: FEATURE_GET | 1, data: bytes(1, 0, 0, 0, 0, 0, 0, 0) } }) },
  { session: 1, dir: C, m: req({ command: 'MIG_DATA_READ', id: 3, body: { argsz: 12, size: 4 } }) },
  { session: 1, dir: S, m: rep({ command: 'MIG_DATA_READ', id: 3, body: { argsz: 12, size: 4, data: bytes(9, 8, 7, 6) } }) },
  { session: 1, dir: C, m: req({ command: 'MIG_DATA_WRITE', id: 4, body: { argsz: 8, size: 3, data: bytes(5, 5, 5) } }) },
  { session: 1, dir: S, m: rep({ command: 'MIG_DATA_WRITE', id: 4, body: null }) },
  { session: 1, dir: C, m: req({ command: 'DEVICE_GET_REGION_IO_FDS', id: 5, body: { argsz: 56, flags: 0, index: 0, count: 0, entries: [] } }) },
  {
    session: 1,
    dir: S,
    m: rep({
      command: 'DEVICE_GET_REGION_IO_FDS',
      id: 5,
      fds: [70],
      body: { argsz: 56, flags: 0, index: 0, count: 1, entries: [{ offset: 0x100n, size: 4n, fdIndex: 0, type: 0, flags: 1, data: 0xcafen }] },
    }),
  },
];

/** The frame number of SESSION[i]: label of session 0 is frame 1, label of session 1 comes before its first record. */
const frameOf = (i: number): number => i + 2 + (i >= SESSION.findIndex((r) => r.session === 1) ? 1 : 0);

function writeSession(path: string): void {
  const w = PcapWriter.open(path);
  w.label(0, '/run/isoroot/vfio-user-0.sock');
  SESSION.forEach((r) => {
    if (r.session === w.nextSession) w.label(r.session, `/run/isoroot/vfio-user-${r.session}.sock`);
    w.message(r.session, r.dir, encodeMessage(r.m), r.m.fds.length);
  });
  w.close();
}

test.describe('tshark with the vfio-user dissector', () => {
  let capture: string;
  test.beforeEach(() => {
    capture = join(dir, 'session.pcap');
    writeSession(capture);
  });

  test('every packet: protocol, direction, session, command and the Info column', () => {
    const out = tshark(['-r', capture, '-T', 'fields', '-E', 'separator=,', '-e', 'frame.number', '-e', '_ws.col.Protocol', '-e', 'vfio_user.session', '-e', 'vfio_user.direction', '-e', 'vfio_user.fds', '-e', 'vfio_user.msg_id', '-e', 'vfio_user.cmd', '-e', 'vfio_user.cmd_name', '-e', 'vfio_user.flags.type', '-e', '_ws.col.Info']);
    const rows = out
      .trim()
      .split('\n')
      .map((l) => l.split(',')); // no value here holds a comma, and no field repeats in a packet
    expect(rows).toHaveLength(SESSION.length + 2);
    expect(rows[0]).toEqual(['1', 'vfio-user', '0', '0', '0', '', '', '', '', 'session 0: /run/isoroot/vfio-user-0.sock']);
    const label1 = frameOf(SESSION.findIndex((r) => r.session === 1)) - 1;
    expect(rows[label1 - 1]).toEqual([String(label1), 'vfio-user', '1', '0', '0', '', '', '', '', 'session 1: /run/isoroot/vfio-user-1.sock']);
    SESSION.forEach((r, i) => {
      const row = rows[frameOf(i) - 1];
      expect(row.slice(0, 9), `frame ${frameOf(i)}`).toEqual([
        String(frameOf(i)),
        'vfio-user',
        String(r.session),
        r.dir === 'to-server' ? '0' : '1',
        String(r.m.fds.length),
        String(r.m.id),
        String(COMMANDS[r.m.command]),
        r.m.command,
        r.m.reply ? '1' : '0',
      ]);
    });
    const info = (i: number): string => rows[frameOf(i) - 1][9];
    const at = (command: string, reply: boolean, id?: number): number =>
      SESSION.findIndex((r) => r.m.command === command && r.m.reply === reply && (id === undefined || r.m.id === id));
    expect(info(at('VERSION', false))).toBe('VERSION request id=0 version=1.0');
    expect(info(at('DEVICE_GET_INFO', true))).toBe('DEVICE_GET_INFO reply id=1 regions=9 irqs=5');
    expect(info(at('DEVICE_GET_REGION_INFO', true))).toBe('DEVICE_GET_REGION_INFO reply id=2 index=2 size=0x4000 fds=1');
    expect(info(at('DEVICE_SET_IRQS', false))).toBe('DEVICE_SET_IRQS request id=4 index=MSIX start=0 count=2 DATA_EVENTFD|ACTION_TRIGGER fds=2');
    expect(info(at('REGION_READ', false, 5))).toBe('REGION_READ request id=5 region=7 offset=0x10 count=4');
    expect(info(at('REGION_READ', true, 5))).toBe('REGION_READ reply id=5');
    expect(info(at('REGION_WRITE', false))).toBe('REGION_WRITE request id=6 region=7 offset=0x4 count=2');
    expect(info(at('DMA_MAP', false))).toBe('DMA_MAP request id=7 address=0x100000 size=0x10000 rw fd offset=0x2000 fds=1');
    expect(info(at('DMA_READ', false))).toBe('DMA_READ request id=32768 address=0x100010 count=8');
    expect(info(at('REGION_READ', true, 8))).toBe('REGION_READ reply id=8 error=EINVAL (22)');
    expect(info(at('DEVICE_RESET', false))).toBe('DEVICE_RESET request id=10 (no reply)');
    expect(info(at('DEVICE_FEATURE', false))).toBe('DEVICE_FEATURE request id=2 feature=MIGRATION GET');
    expect(info(at('REGION_WRITE_MULTI', false))).toBe('REGION_WRITE_MULTI request id=1 writes=2');
  });

  test('header and body fields, per command', () => {
    const names = [
      'frame.number',
      'vfio_user.cmd_name',
      'vfio_user.size',
      'vfio_user.flags',
      'vfio_user.flags.no_reply',
      'vfio_user.flags.error',
      'vfio_user.error',
      'vfio_user.errno_name',
      'vfio_user.argsz',
      'vfio_user.version.major',
      'vfio_user.version.minor',
      'vfio_user.version.json',
      'vfio_user.device.flags.reset',
      'vfio_user.device.flags.pci',
      'vfio_user.device.num_regions',
      'vfio_user.device.num_irqs',
      'vfio_user.region_info.index',
      'vfio_user.region_info.flags.mmap',
      'vfio_user.region_info.flags.caps',
      'vfio_user.region_info.cap_offset',
      'vfio_user.region_info.size',
      'vfio_user.region_info.offset',
      'vfio_user.region_info.cap.id',
      'vfio_user.region_info.sparse.nr_areas',
      'vfio_user.region_info.sparse.offset',
      'vfio_user.region_info.sparse.size',
      'vfio_user.irq_info.flags.eventfd',
      'vfio_user.irq_info.flags.noresize',
      'vfio_user.irq.index',
      'vfio_user.irq.start',
      'vfio_user.irq.count',
      'vfio_user.irq_set.flags.data_eventfd',
      'vfio_user.irq_set.flags.action_trigger',
      'vfio_user.region.offset',
      'vfio_user.region.index',
      'vfio_user.region.count',
      'vfio_user.region.data',
      'vfio_user.dma.flags.read',
      'vfio_user.dma.flags.write',
      'vfio_user.dma.offset',
      'vfio_user.dma.address',
      'vfio_user.dma.size',
      'vfio_user.dma.count',
      'vfio_user.dma.data',
      'vfio_user.write_multi.wr_cnt',
      'vfio_user.feature.index',
      'vfio_user.feature.flags.get',
      'vfio_user.feature.migration_flags',
      'vfio_user.mig.size',
      'vfio_user.mig.data',
      'vfio_user.io_fds.count',
      'vfio_user.io_fds.sub.offset',
      'vfio_user.io_fds.sub.type',
      'vfio_user.io_fds.sub.datamatch',
      'vfio_user.body',
      'vfio_user.trailing',
    ];
    const packets = fields(capture, names);
    expect(packets).toHaveLength(SESSION.length + 2);
    const of = (command: string, reply: boolean, id?: number): Layers => {
      const i = SESSION.findIndex((r) => r.m.command === command && r.m.reply === reply && (id === undefined || r.m.id === id));
      expect(i, `${command} ${reply ? 'reply' : 'request'}`).toBeGreaterThanOrEqual(0);
      const p = packets[frameOf(i) - 1];
      expect(p['frame.number']).toEqual([String(frameOf(i))]);
      expect(p['vfio_user.cmd_name']).toEqual([command]);
      expect(Number(p['vfio_user.size'][0])).toBe(encodeMessage(SESSION[i].m).length);
      return p;
    };

    // No packet has bytes the dissector could not place.
    for (const p of packets) {
      expect(p['vfio_user.body']).toBeUndefined();
      expect(p['vfio_user.trailing']).toBeUndefined();
    }

    let p = of('VERSION', false);
    expect(p['vfio_user.version.major']).toEqual(['1']);
    expect(p['vfio_user.version.minor']).toEqual(['0']);
    expect(JSON.parse(p['vfio_user.version.json'][0])).toEqual({ capabilities: { max_msg_fds: 8, max_data_xfer_size: 1048576, twin_socket: { supported: true } } });
    p = of('VERSION', true);
    expect(JSON.parse(p['vfio_user.version.json'][0]).capabilities.write_multiple).toBe(true);

    p = of('DEVICE_GET_INFO', false);
    expect(p['vfio_user.argsz']).toEqual(['16']);
    expect(p['vfio_user.device.num_regions']).toEqual(['0']);
    p = of('DEVICE_GET_INFO', true);
    expect(bool(p['vfio_user.device.flags.reset'])).toBe(true);
    expect(bool(p['vfio_user.device.flags.pci'])).toBe(true);
    expect(p['vfio_user.device.num_regions']).toEqual(['9']);
    expect(p['vfio_user.device.num_irqs']).toEqual(['5']);

    p = of('DEVICE_GET_REGION_INFO', false);
    expect(p['vfio_user.argsz']).toEqual(['80']);
    expect(p['vfio_user.region_info.index']).toEqual(['2']);
    expect(p['vfio_user.region_info.cap.id']).toBeUndefined();
    p = of('DEVICE_GET_REGION_INFO', true);
    expect(p['vfio_user.argsz']).toEqual(['80']);
    expect(bool(p['vfio_user.region_info.flags.mmap'])).toBe(true);
    expect(bool(p['vfio_user.region_info.flags.caps'])).toBe(true);
    expect(p['vfio_user.region_info.cap_offset']).toEqual([h32(32)]);
    expect(p['vfio_user.region_info.size']).toEqual([h64(0x4000)]);
    expect(p['vfio_user.region_info.offset']).toEqual([h64(0x20000)]);
    expect(p['vfio_user.region_info.cap.id']).toEqual(['1']);
    expect(p['vfio_user.region_info.sparse.nr_areas']).toEqual(['2']);
    expect(p['vfio_user.region_info.sparse.offset']).toEqual([h64(0x1000), h64(0x3000)]);
    expect(p['vfio_user.region_info.sparse.size']).toEqual([h64(0x1000), h64(0x1000)]);

    p = of('DEVICE_GET_IRQ_INFO', true);
    expect(bool(p['vfio_user.irq_info.flags.eventfd'])).toBe(true);
    expect(bool(p['vfio_user.irq_info.flags.noresize'])).toBe(true);
    expect(p['vfio_user.irq.index']).toEqual(['2']);
    expect(p['vfio_user.irq.count']).toEqual(['8']);

    p = of('DEVICE_SET_IRQS', false);
    expect(p['vfio_user.argsz']).toEqual(['20']);
    expect(bool(p['vfio_user.irq_set.flags.data_eventfd'])).toBe(true);
    expect(bool(p['vfio_user.irq_set.flags.action_trigger'])).toBe(true);
    expect(p['vfio_user.irq.index']).toEqual(['2']);
    expect(p['vfio_user.irq.start']).toEqual(['0']);
    expect(p['vfio_user.irq.count']).toEqual(['2']);
    p = of('DEVICE_SET_IRQS', true);
    expect(p['vfio_user.argsz']).toBeUndefined();

    p = of('REGION_READ', false, 5);
    expect(p['vfio_user.region.offset']).toEqual([h64(0x10)]);
    expect(p['vfio_user.region.index']).toEqual(['7']);
    expect(p['vfio_user.region.count']).toEqual(['4']);
    expect(p['vfio_user.region.data']).toBeUndefined();
    p = of('REGION_READ', true, 5);
    expect(p['vfio_user.region.data']).toEqual(['0c0000fe']);
    p = of('REGION_WRITE', false);
    expect(p['vfio_user.region.offset']).toEqual([h64(4)]);
    expect(p['vfio_user.region.data']).toEqual(['0601']);
    p = of('REGION_WRITE', true);
    expect(p['vfio_user.region.count']).toEqual(['2']);
    expect(p['vfio_user.region.data']).toBeUndefined();

    p = of('DMA_MAP', false);
    expect(p['vfio_user.argsz']).toEqual(['32']);
    expect(bool(p['vfio_user.dma.flags.read'])).toBe(true);
    expect(bool(p['vfio_user.dma.flags.write'])).toBe(true);
    expect(p['vfio_user.dma.offset']).toEqual([h64(0x2000)]);
    expect(p['vfio_user.dma.address']).toEqual([h64(0x100000)]);
    expect(p['vfio_user.dma.size']).toEqual([h64(0x10000)]);
    p = of('DMA_MAP', true);
    expect(p['vfio_user.dma.address']).toBeUndefined();

    p = of('DMA_READ', false);
    expect(p['vfio_user.dma.address']).toEqual([h64(0x100010)]);
    expect(p['vfio_user.dma.count']).toEqual(['8']);
    expect(p['vfio_user.dma.data']).toBeUndefined();
    p = of('DMA_READ', true);
    expect(p['vfio_user.dma.data']).toEqual(['0102030405060708']);
    p = of('DMA_WRITE', false);
    expect(p['vfio_user.dma.data']).toEqual(['aabbccdd']);
    p = of('DMA_WRITE', true);
    expect(p['vfio_user.dma.count']).toEqual(['4']);
    expect(p['vfio_user.dma.data']).toBeUndefined();

    p = of('REGION_READ', true, 8);
    expect(bool(p['vfio_user.flags.error'])).toBe(true);
    expect(p['vfio_user.flags']).toEqual([h32(0x21)]);
    expect(p['vfio_user.error']).toEqual(['22']);
    expect(p['vfio_user.errno_name']).toEqual(['EINVAL']);
    expect(p['vfio_user.region.offset']).toBeUndefined();

    p = of('DMA_UNMAP', true);
    expect(p['vfio_user.argsz']).toEqual(['24']);
    expect(p['vfio_user.dma.address']).toEqual([h64(0x100000)]);

    p = of('DEVICE_RESET', false);
    expect(bool(p['vfio_user.flags.no_reply'])).toBe(true);
    expect(bool(p['vfio_user.flags.error'])).toBe(false);

    p = of('REGION_WRITE_MULTI', false);
    expect(p['vfio_user.write_multi.wr_cnt']).toEqual(['2']);
    expect(p['vfio_user.region.offset']).toEqual([h64(0x40), h64(0x44)]);
    expect(p['vfio_user.region.count']).toEqual(['4', '2']);
    expect(p['vfio_user.region.data']).toEqual(['0100000000000000', '0200000000000000']);
    p = of('REGION_WRITE_MULTI', true);
    expect(p['vfio_user.write_multi.wr_cnt']).toEqual(['2']);

    p = of('DEVICE_FEATURE', false);
    expect(p['vfio_user.feature.index']).toEqual(['1']);
    expect(bool(p['vfio_user.feature.flags.get'])).toBe(true);
    p = of('DEVICE_FEATURE', true);
    expect(p['vfio_user.feature.migration_flags']).toEqual([h64(1)]);

    p = of('MIG_DATA_READ', false);
    expect(p['vfio_user.mig.size']).toEqual(['4']);
    expect(p['vfio_user.mig.data']).toBeUndefined();
    p = of('MIG_DATA_READ', true);
    expect(p['vfio_user.mig.data']).toEqual(['09080706']);
    p = of('MIG_DATA_WRITE', false);
    expect(p['vfio_user.mig.data']).toEqual(['050505']);

    p = of('DEVICE_GET_REGION_IO_FDS', true);
    expect(p['vfio_user.io_fds.count']).toEqual(['1']);
    expect(p['vfio_user.io_fds.sub.offset']).toEqual([h64(0x100)]);
    expect(p['vfio_user.io_fds.sub.type']).toEqual(['0']);
    expect(p['vfio_user.io_fds.sub.datamatch']).toEqual([h64(0xcafe)]);
  });

  test('the only expert note is the error reply; the tree names values', () => {
    const packets = fields(capture, ['frame.number', '_ws.expert.message', '_ws.malformed']);
    const errorFrame = frameOf(SESSION.findIndex((r) => r.m.reply && r.m.errno !== 0));
    for (const p of packets) {
      expect(p['_ws.malformed']).toBeUndefined();
      if (Number(p['frame.number'][0]) === errorFrame) expect(p['_ws.expert.message']).toEqual(['REGION_READ failed: EINVAL (22)']);
      else expect(p['_ws.expert.message'], `frame ${p['frame.number'][0]}`).toBeUndefined();
    }
    const v = tshark(['-r', capture, '-V', '-Y', `frame.number == 1 || frame.number == ${errorFrame} || vfio_user.cmd == 5 || vfio_user.cmd == 9`]);
    expect(v).toContain('Command: REGION_READ (9)');
    expect(v).toContain('Error (errno): EINVAL (22)');
    expect(v).toContain('Region: CONFIG (7)');
    expect(v).toContain('Capability ID: SPARSE_MMAP (1)');
    expect(v).toContain('Area 1: offset 0x3000 size 0x1000');
    expect(v).toContain('Direction: server to client (1)');
    expect(v).toContain('Session label: /run/isoroot/vfio-user-0.sock');
  });

  test('display filters select on the fields', () => {
    const frames = (filter: string): string[] => tshark(['-r', capture, '-Y', filter, '-T', 'fields', '-e', 'frame.number']).trim().split('\n').filter(Boolean);
    expect(frames('vfio_user.cmd_name == "REGION_READ"')).toHaveLength(4);
    expect(frames('vfio_user.flags.error == 1')).toEqual([String(frameOf(SESSION.findIndex((r) => r.m.reply && r.m.errno !== 0)))]);
    expect(frames('vfio_user.dma.address == 0x100000')).toHaveLength(3); // DMA_MAP, DMA_UNMAP request and reply
    expect(frames('vfio_user.fds > 0')).toHaveLength(SESSION.filter((r) => r.m.fds.length > 0).length);
    expect(frames('vfio_user.session == 1 && vfio_user.direction == 1')).toHaveLength(SESSION.filter((r) => r.session === 1 && r.dir === S).length);
  });
});

test('every command of messages.ts has the same number and name in the dissector', () => {
  const path = join(dir, 'commands.pcap');
  const w = PcapWriter.open(path);
  const s = w.startSession('commands');
  for (const name of COMMAND_NAMES) {
    const m = Buffer.alloc(16);
    m.writeUInt16LE(1, 0);
    m.writeUInt16LE(COMMANDS[name], 2);
    m.writeUInt32LE(16, 4);
    m.writeUInt32LE(0x21, 8); // an error reply: header only
    m.writeUInt32LE(1, 12);
    w.message(s, 'to-client', m, 0);
  }
  w.close();
  const packets = fields(path, ['vfio_user.cmd', 'vfio_user.cmd_name']).slice(1);
  expect(packets.map((p) => [Number(p['vfio_user.cmd'][0]), p['vfio_user.cmd_name'][0]])).toEqual(COMMAND_NAMES.map((n) => [COMMANDS[n], n]));
});

/** A capture file from raw records (bypassing PcapWriter's checks): each is pseudo-header fields and a payload. */
function rawCapture(path: string, records: { pseudo?: Buffer; payload: Buffer }[]): void {
  const parts: Buffer[] = [pcapGlobalHeader()];
  records.forEach((r, i) => {
    const pseudo = r.pseudo ?? encodePseudoHeader({ direction: 'to-server', kind: 'message', fds: 0, session: 0 });
    const h = Buffer.alloc(16);
    h.writeUInt32LE(1_700_000_000 + i, 0);
    h.writeUInt32LE(pseudo.length + r.payload.length, 8);
    h.writeUInt32LE(pseudo.length + r.payload.length, 12);
    parts.push(h, pseudo, r.payload);
  });
  writeFileSync(path, Buffer.concat(parts));
}

function header(id: number, cmd: number, size: number, flags = 0, errno = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(id, 0);
  b.writeUInt16LE(cmd, 2);
  b.writeUInt32LE(size, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(errno, 12);
  return b;
}

test('malformed messages are flagged, never a Lua error', () => {
  const path = join(dir, 'malformed.pcap');
  const cut = Buffer.concat([header(1, 9, 24), Buffer.alloc(8)]); // REGION_READ with half a body
  const extra = Buffer.concat([header(2, 9, 36), Buffer.alloc(16), Buffer.alloc(4, 0xee)]); // request with 4 extra bytes
  const unknown = Buffer.concat([header(3, 99, 20), Buffer.alloc(4, 0x77)]);
  const sizeLie = Buffer.concat([header(4, 13, 40)]); // says 40, is 16
  const countLie = Buffer.concat([header(5, 10, 34), Buffer.alloc(8), Buffer.from([7, 0, 0, 0, 8, 0, 0, 0]), Buffer.alloc(2)]); // count 8, 2 bytes of data
  const loop = Buffer.alloc(16 + 32 + 8);
  header(6, 5, loop.length, 1).copy(loop);
  loop.writeUInt32LE(40, 16);
  loop.writeUInt32LE(8, 20);
  loop.writeUInt32LE(32, 28); // cap_offset 32
  loop.writeUInt16LE(7, 48);
  loop.writeUInt32LE(32, 52); // next: itself
  const badVersion = Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]);
  rawCapture(path, [
    { payload: cut },
    { payload: extra },
    { payload: unknown },
    { payload: sizeLie },
    { payload: countLie },
    { payload: loop },
    { pseudo: badVersion, payload: header(7, 1, 16) },
    { pseudo: Buffer.from([1, 0, 0]), payload: Buffer.alloc(0) },
    { payload: Buffer.alloc(5) },
  ]);
  const packets = fields(path, ['frame.number', '_ws.expert.message', '_ws.col.Info', 'vfio_user.trailing', 'vfio_user.body']);
  const expert = (n: number): string => (packets[n - 1]['_ws.expert.message'] ?? []).join(' | ');
  expect(expert(1)).toMatch(/Body too short: count needs 4 bytes at body offset 12, 0 left|Body too short: region/);
  expect(expert(2)).toContain('4 bytes after the body');
  expect(packets[1]['vfio_user.trailing']).toEqual(['eeeeeeee']);
  expect(expert(3)).toContain('Unknown command 99');
  expect(packets[2]['vfio_user.body']).toEqual(['77777777']);
  expect(packets[2]['_ws.col.Info']).toEqual(['command 99 request id=3']);
  expect(expert(4)).toContain('Message size 40, but the packet holds 16 bytes');
  expect(expert(5)).toContain('data: count is 8 but 2 bytes of data follow');
  expect(expert(6)).toContain('capability chain loops at offset 0x20');
  expect(expert(7)).toContain('Encapsulation version 2, expected 1');
  expect(packets[6]['_ws.col.Info']).toEqual(['Unknown encapsulation version 2']);
  expect(expert(8)).toContain('less than the 8-byte capture pseudo-header');
  expect(expert(9)).toContain('less than the 16-byte vfio-user header');
});

test('a message just under the 262144-byte packet limit of Wireshark dissects whole', () => {
  // Wireshark (4.0) refuses pcap records over 262144 bytes for this link type (docs/wireshark.md).
  const path = join(dir, 'big.pcap');
  const w = PcapWriter.open(path);
  const s = w.startSession('big');
  const n = 262144 - PSEUDO_HEADER_SIZE - 32;
  const data = Buffer.alloc(n, 0x5a);
  w.message(s, 'to-client', encodeMessage({ command: 'DMA_WRITE', id: 1, reply: false, noReply: false, fds: [], body: { address: 0x1000n, count: BigInt(n), data } }), 0);
  w.close();
  const [, p] = fields(path, ['frame.len', 'vfio_user.dma.count', '_ws.expert.message']);
  expect(p['frame.len']).toEqual(['262144']);
  expect(p['vfio_user.dma.count']).toEqual([String(n)]);
  expect(p['_ws.expert.message']).toBeUndefined();
});
