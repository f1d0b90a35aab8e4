/**
 * The vfio-user capture format (harness/capture, docs/wireshark.md):
 * PcapWriter → readCapture round trips of labels and messages with their
 * sessions, directions, descriptor counts and times; the bytes on disk
 * match the documented encapsulation; and every malformed file is refused
 * with an error naming the file and the byte offset or packet.
 */
import { test, expect } from '@playwright/test';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../harness/util/errors.ts';
import {
  EncapsulationError,
  LINKTYPE_USER0,
  PCAP_SNAPLEN,
  decodePseudoHeader,
  encodePseudoHeader,
} from '../../harness/capture/encapsulation.ts';
import { PcapWriter } from '../../harness/capture/pcap-writer.ts';
import { captureRecords, readCapture } from '../../harness/capture/pcap-read.ts';

let dir: string;
test.beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'isoroot-pcap-'));
});
test.afterAll(() => rmSync(dir, { recursive: true, force: true }));

let seq = 0;
const file = (name: string): string => join(dir, `${seq++}-${name}`);

/** A vfio-user message: the 16-byte header and a body. */
function msg(id: number, command: number, flags: number, body: Uint8Array = new Uint8Array(0), errno = 0): Buffer {
  const b = Buffer.alloc(16 + body.length);
  b.writeUInt16LE(id, 0);
  b.writeUInt16LE(command, 2);
  b.writeUInt32LE(b.length, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(errno, 12);
  b.set(body, 16);
  return b;
}

/** REGION_READ request body: offset, region, count. */
function regionRead(offset: bigint, region: number, count: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(offset, 0);
  b.writeUInt32LE(region, 8);
  b.writeUInt32LE(count, 12);
  return b;
}

/** A two-message capture: label of session 0, then a REGION_READ request. */
function small(path: string): { label: string; m: Buffer } {
  const w = PcapWriter.open(path);
  const label = '/run/dev.sock';
  w.label(0, label);
  const m = msg(1, 9, 0, regionRead(0x10n, 7, 4));
  w.message(0, 'to-server', m, 0, new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)));
  w.close();
  return { label, m };
}

/** Runs readCapture and returns the InputError it must reject with. */
async function refused(path: string): Promise<InputError> {
  let err: unknown;
  try {
    await readCapture(path);
  } catch (e) {
    err = e;
  }
  expect(err, `${path} should be refused`).toBeInstanceOf(InputError);
  return err as InputError;
}

test.describe('pseudo-header', () => {
  test('encodes the documented bytes and decodes them back', () => {
    const b = encodePseudoHeader({ direction: 'to-client', kind: 'message', fds: 3, session: 0x01020304 });
    expect([...b]).toEqual([1, 1, 0, 3, 4, 3, 2, 1]);
    expect(decodePseudoHeader(b)).toEqual({ direction: 'to-client', kind: 'message', fds: 3, session: 0x01020304 });
    expect([...encodePseudoHeader({ direction: 'to-server', kind: 'label', fds: 0, session: 0 })]).toEqual([1, 0, 1, 0, 0, 0, 0, 0]);
  });

  test('refuses bad bytes, naming the offset', () => {
    const cases: [number[], number, RegExp][] = [
      [[2, 0, 0, 0, 0, 0, 0, 0], 0, /encapsulation version 1, got 2/],
      [[1, 2, 0, 0, 0, 0, 0, 0], 1, /direction 0 .* or 1 .*, got 2/],
      [[1, 0, 7, 0, 0, 0, 0, 0], 2, /record kind 0 .* or 1 .*, got 7/],
      [[1, 0, 0], 3, /8-byte pseudo-header, but the packet has 3 bytes/],
    ];
    for (const [bytes, offset, text] of cases) {
      let err: unknown;
      try {
        decodePseudoHeader(Uint8Array.from(bytes));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EncapsulationError);
      expect((err as EncapsulationError).offset).toBe(offset);
      expect((err as EncapsulationError).message).toMatch(text);
      expect((err as EncapsulationError).message).toContain(`byte ${offset}`);
    }
  });

  test('refuses values that do not fit', () => {
    expect(() => encodePseudoHeader({ direction: 'to-server', kind: 'message', fds: 256, session: 0 })).toThrow(/fds/);
    expect(() => encodePseudoHeader({ direction: 'to-server', kind: 'message', fds: 0, session: -1 })).toThrow(/session/);
    expect(() => encodePseudoHeader({ direction: 'to-server', kind: 'message', fds: 0, session: 2 ** 32 })).toThrow(/session/);
  });
});

test.describe('writer and reader', () => {
  test('round trip: labels and messages, sessions, directions, fds, times', async () => {
    const path = file('round.pcap');
    const w = PcapWriter.open(path);
    const t0 = new Date(Date.UTC(2025, 5, 1, 12, 0, 0, 0));
    const at = (ms: number): Date => new Date(t0.getTime() + ms);
    expect(w.startSession('/tmp/a.sock')).toBe(0);
    const version = msg(0, 1, 0, Buffer.from('\x01\x00\x00\x00{"capabilities":{}}\0', 'latin1'));
    const dmaMap = msg(1, 2, 0, Buffer.alloc(32, 0x11));
    const setIrqs = msg(2, 8, 0, Buffer.alloc(20, 0x22));
    const readReply = msg(3, 9, 1, Buffer.concat([regionRead(0x10n, 7, 4), Buffer.from([0xde, 0xad, 0xbe, 0xef])]));
    const errorReply = msg(4, 10, 0x21, undefined, 22);
    w.message(0, 'to-server', version, 0, at(1));
    w.label(1, 'to-client', 'second connection ☃');
    w.message(0, 'to-server', dmaMap, 1, at(2));
    w.message(1, 'to-server', setIrqs, 4, at(3));
    w.message(0, 'to-client', readReply, 0, at(4));
    w.message(1, 'to-client', errorReply, 0, at(5));
    expect(w.records).toBe(7);
    expect(w.nextSession).toBe(2);
    w.close();

    const recs = await readCapture(path);
    expect(recs.map((r) => [r.index, r.session, r.direction, r.kind, r.fds])).toEqual([
      [1, 0, 'to-server', 'label', 0],
      [2, 0, 'to-server', 'message', 0],
      [3, 1, 'to-client', 'label', 0],
      [4, 0, 'to-server', 'message', 1],
      [5, 1, 'to-server', 'message', 4],
      [6, 0, 'to-client', 'message', 0],
      [7, 1, 'to-client', 'message', 0],
    ]);
    expect(recs[0].text).toBe('/tmp/a.sock');
    expect(recs[2].text).toBe('second connection ☃');
    expect(recs[1].text).toBeUndefined();
    expect(Buffer.compare(recs[1].payload, version)).toBe(0);
    expect(Buffer.compare(recs[3].payload, dmaMap)).toBe(0);
    expect(Buffer.compare(recs[4].payload, setIrqs)).toBe(0);
    expect(Buffer.compare(recs[5].payload, readReply)).toBe(0);
    expect(Buffer.compare(recs[6].payload, errorReply)).toBe(0);
    expect(recs[1].time.getTime()).toBe(at(1).getTime());
    expect(recs[6].time.getTime()).toBe(at(5).getTime());
    expect(recs[6].micros).toBe(BigInt(at(5).getTime()) * 1000n);

    // fileOffset: 24-byte global header, then each record's 16-byte header, the pseudo-header and the payload.
    let off = 24;
    for (const r of recs) {
      expect(r.fileOffset).toBe(off);
      off += 16 + 8 + r.payload.length;
    }
    expect(off).toBe(readFileSync(path).length);
  });

  test('the bytes on disk are the documented encapsulation', () => {
    const path = file('bytes.pcap');
    const { m } = small(path);
    const b = readFileSync(path);
    expect(b.subarray(0, 4).toString('hex')).toBe('d4c3b2a1'); // 0xa1b2c3d4 little-endian: microseconds
    expect(b.readUInt16LE(4)).toBe(2);
    expect(b.readUInt16LE(6)).toBe(4);
    expect(b.readUInt32LE(16)).toBe(PCAP_SNAPLEN);
    expect(PCAP_SNAPLEN).toBeGreaterThanOrEqual(16 << 20);
    expect(b.readUInt32LE(20)).toBe(LINKTYPE_USER0);
    expect(LINKTYPE_USER0).toBe(147);
    // Record 1: the label.
    let o = 24;
    const labelLen = 8 + '/run/dev.sock'.length;
    expect(b.readUInt32LE(o + 8)).toBe(labelLen);
    expect(b.readUInt32LE(o + 12)).toBe(labelLen);
    expect([...b.subarray(o + 16, o + 24)]).toEqual([1, 0, 1, 0, 0, 0, 0, 0]);
    expect(b.subarray(o + 24, o + 16 + labelLen).toString('utf8')).toBe('/run/dev.sock');
    // Record 2: the message, with its time.
    o += 16 + labelLen;
    const t = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
    expect(b.readUInt32LE(o)).toBe(Math.floor(t / 1000));
    expect(b.readUInt32LE(o + 4)).toBe(678_000);
    expect(b.readUInt32LE(o + 8)).toBe(8 + m.length);
    expect(b.readUInt32LE(o + 12)).toBe(8 + m.length);
    expect([...b.subarray(o + 16, o + 24)]).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(Buffer.compare(b.subarray(o + 24), m)).toBe(0);
  });

  test('records without a time get increasing microsecond timestamps', async () => {
    const path = file('clock.pcap');
    const w = PcapWriter.open(path);
    const s = w.startSession('clock');
    for (let i = 0; i < 50; i++) w.message(s, i % 2 ? 'to-client' : 'to-server', msg(i, 13, i % 2), 0);
    w.close();
    const recs = await readCapture(path);
    expect(recs).toHaveLength(51);
    for (let i = 1; i < recs.length; i++) expect(recs[i].micros).toBeGreaterThan(recs[i - 1].micros);
    expect(Math.abs(recs[0].time.getTime() - Date.now())).toBeLessThan(60_000);
  });

  test('each record is on disk as soon as it is written (a crash loses nothing)', async () => {
    const path = file('live.pcap');
    const w = PcapWriter.open(path);
    const s = w.startSession('live');
    w.message(s, 'to-server', msg(7, 4, 0, Buffer.alloc(16)), 0);
    // Not closed: read what is there.
    const recs = await readCapture(path);
    expect(recs.map((r) => r.kind)).toEqual(['label', 'message']);
    w.message(s, 'to-client', msg(7, 4, 1, Buffer.alloc(16)), 0);
    expect(await readCapture(path)).toHaveLength(3);
    w.close();
    w.close(); // harmless
    expect(() => w.message(s, 'to-server', msg(8, 13, 0), 0)).toThrow(/closed/);
  });

  test('the writer refuses what the format cannot hold', () => {
    const w = PcapWriter.open(file('refuse.pcap'));
    expect(() => w.message(1, 'to-server', msg(0, 13, 0), 0)).toThrow(/order of appearance: the next new session is 0, got 1/);
    w.label(0, 'ok');
    expect(() => w.message(0, 'to-server', msg(0, 13, 0), 256)).toThrow(/fds/);
    expect(() => w.message(0, 'to-server', Buffer.alloc(8), 0)).toThrow(/16-byte header/);
    const bad = msg(0, 13, 0, Buffer.alloc(4));
    bad.writeUInt32LE(99, 4);
    expect(() => w.message(0, 'to-server', bad, 0)).toThrow(/size field \(99\) must equal its length \(20\)/);
    expect(() => w.message(0, 'sideways' as 'to-server', msg(0, 13, 0), 0)).toThrow(/direction/);
    w.close();
  });

  test('large messages stream through the async iterator, which may stop early', async () => {
    const path = file('large.pcap');
    const w = PcapWriter.open(path);
    const s = w.startSession('large');
    const big = Buffer.alloc((1 << 20) + 16);
    for (let i = 0; i < big.length; i++) big[i] = i & 0xff;
    const m = msg(1, 12, 0, big.subarray(16));
    for (let i = 0; i < 4; i++) w.message(s, 'to-client', m, 0);
    for (let i = 0; i < 2000; i++) w.message(s, 'to-server', msg(i & 0xffff, 9, 0, regionRead(BigInt(i), 0, 4)), 0);
    w.close();
    const recs = await readCapture(path);
    expect(recs).toHaveLength(1 + 4 + 2000);
    expect(Buffer.compare(recs[4].payload, m)).toBe(0);
    expect(recs[2004].payload.readBigUInt64LE(16)).toBe(1999n);
    let n = 0;
    for await (const r of captureRecords(path)) {
      if (++n === 3) {
        expect(r.index).toBe(3);
        break;
      }
    }
    expect(n).toBe(3);
  });

  test('a big-endian pcap file (another writer) is read too; the pseudo-header stays little-endian', async () => {
    const path = file('be.pcap');
    const m = msg(5, 9, 0, regionRead(0x20n, 0, 2));
    const g = Buffer.alloc(24);
    g.writeUInt32BE(0xa1b2c3d4, 0);
    g.writeUInt16BE(2, 4);
    g.writeUInt16BE(4, 6);
    g.writeUInt32BE(0x40000, 16);
    g.writeUInt32BE(147, 20);
    const r = Buffer.alloc(16);
    r.writeUInt32BE(1_700_000_000, 0);
    r.writeUInt32BE(5, 4);
    r.writeUInt32BE(8 + m.length, 8);
    r.writeUInt32BE(8 + m.length, 12);
    writeFileSync(path, Buffer.concat([g, r, encodePseudoHeader({ direction: 'to-server', kind: 'message', fds: 2, session: 0 }), m]));
    const [rec] = await readCapture(path);
    expect(rec.fds).toBe(2);
    expect(rec.micros).toBe(1_700_000_000_000_005n);
    expect(Buffer.compare(rec.payload, m)).toBe(0);
  });
});

test.describe('malformed captures', () => {
  test('a missing file', async () => {
    const path = join(dir, 'does-not-exist.pcap');
    const e = await refused(path);
    expect(e.where).toBe(path);
    expect(e.expected).toMatch(/readable file .*ENOENT/);
  });

  test('an empty file', async () => {
    const path = file('empty.pcap');
    writeFileSync(path, '');
    const e = await refused(path);
    expect(e.where).toBe(`${path}: byte 0`);
    expect(e.message).toBe(`${path}: byte 0: a pcap file, got an empty file`);
  });

  test('a file shorter than the global header', async () => {
    const path = file('short.pcap');
    small(path);
    truncateSync(path, 10);
    const e = await refused(path);
    expect(e.where).toBe(`${path}: byte 10`);
    expect(e.expected).toMatch(/24-byte header, but the file ends after 10 bytes/);
  });

  test('a wrong magic number', async () => {
    const path = file('magic.pcap');
    writeFileSync(path, Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(40)]));
    const e = await refused(path);
    expect(e.where).toBe(`${path}: byte 0`);
    expect(e.expected).toMatch(/magic a1b2c3d4 or d4c3b2a1.*got 47494638/);
  });

  test('pcapng and nanosecond pcap say how to convert', async () => {
    const ng = file('ng.pcapng');
    writeFileSync(ng, Buffer.concat([Buffer.from([0x0a, 0x0d, 0x0d, 0x0a]), Buffer.alloc(40)]));
    expect((await refused(ng)).message).toMatch(new RegExp(`^${ng}: byte 0: .*pcapng.*editcap -F pcap`));
    const ns = file('ns.pcap');
    small(ns);
    const b = readFileSync(ns);
    b.writeUInt32LE(0xa1b23c4d, 0);
    writeFileSync(ns, b);
    expect((await refused(ns)).message).toMatch(new RegExp(`^${ns}: byte 0: .*nanosecond.*editcap -F pcap`));
  });

  test('an unsupported pcap version', async () => {
    const path = file('version.pcap');
    small(path);
    const b = readFileSync(path);
    b.writeUInt16LE(3, 4);
    writeFileSync(path, b);
    const e = await refused(path);
    expect(e.where).toBe(`${path}: byte 4`);
    expect(e.expected).toBe('pcap format version 2.4, got 3.4');
  });

  test('a wrong link type, named', async () => {
    const path = file('ethernet.pcap');
    small(path);
    const b = readFileSync(path);
    b.writeUInt32LE(1, 20);
    writeFileSync(path, b);
    const e = await refused(path);
    expect(e.where).toBe(`${path}: byte 20`);
    expect(e.expected).toBe("link type 147 (LINKTYPE_USER0, isoroot's vfio-user capture), got 1 (LINKTYPE_ETHERNET)");
  });

  test('a truncated record: data cut short, or only part of a record header', async () => {
    const path = file('cut.pcap');
    small(path);
    const full = readFileSync(path).length;
    const second = 24 + 16 + 8 + '/run/dev.sock'.length; // where the second record starts
    truncateSync(path, full - 5);
    let e = await refused(path);
    expect(e.where).toBe(`${path}: byte ${second}`);
    expect(e.expected).toBe(`packet 2: 40 bytes of packet data, but the file ends after 35 bytes (truncated capture)`);
    truncateSync(path, second + 6);
    e = await refused(path);
    expect(e.where).toBe(`${path}: byte ${second}`);
    expect(e.expected).toBe(`packet 2: a 16-byte record header, but the file ends after 6 bytes (truncated capture)`);
  });

  test('a truncated packet (caplen < len)', async () => {
    const path = file('snap.pcap');
    small(path);
    const b = readFileSync(path);
    const second = 24 + 16 + 8 + '/run/dev.sock'.length;
    b.writeUInt32LE(b.readUInt32LE(second + 12) + 100, second + 12); // len, beyond caplen
    writeFileSync(path, b);
    const e = await refused(path);
    expect(e.where).toBe(`${path}: packet 2`);
    expect(e.expected).toBe(`a whole packet (captured length = length), got 40 bytes of 140 (record at byte ${second})`);
  });

  test('a bad pseudo-header: version, direction, kind, a packet too short for it', async () => {
    const second = 24 + 16 + 8 + '/run/dev.sock'.length;
    const cases: [number, number, RegExp][] = [
      [0, 9, /^packet 2: pseudo-header byte 0: encapsulation version 1, got 9$/],
      [1, 5, /^packet 2: pseudo-header byte 1: direction 0 \(client to server\) or 1 \(server to client\), got 5$/],
      [2, 2, /^packet 2: pseudo-header byte 2: record kind 0 \(vfio-user message\) or 1 \(session label\), got 2$/],
    ];
    for (const [byte, value, text] of cases) {
      const path = file(`pseudo-${byte}.pcap`);
      small(path);
      const b = readFileSync(path);
      b[second + 16 + byte] = value;
      writeFileSync(path, b);
      const e = await refused(path);
      expect(e.where).toBe(`${path}: byte ${second + 16 + byte}`);
      expect(e.expected).toMatch(text);
    }
    // A 3-byte packet: the pseudo-header itself is cut.
    const path = file('pseudo-short.pcap');
    small(path);
    const g = readFileSync(path).subarray(0, 24);
    const r = Buffer.alloc(16);
    r.writeUInt32LE(3, 8);
    r.writeUInt32LE(3, 12);
    writeFileSync(path, Buffer.concat([g, r, Buffer.from([1, 0, 0])]));
    const e = await refused(path);
    expect(e.where).toBe(`${path}: byte ${24 + 16 + 3}`);
    expect(e.expected).toBe('packet 1: pseudo-header byte 3: an 8-byte pseudo-header, but the packet has 3 bytes');
  });

  test("a message whose header's size field disagrees with the packet length", async () => {
    const path = file('size.pcap');
    small(path);
    const b = readFileSync(path);
    const second = 24 + 16 + 8 + '/run/dev.sock'.length;
    const sizeAt = second + 16 + 8 + 4;
    b.writeUInt32LE(64, sizeAt);
    writeFileSync(path, b);
    const e = await refused(path);
    expect(e.where).toBe(`${path}: packet 2`);
    expect(e.expected).toBe(`the vfio-user header's message size (byte ${sizeAt}) to equal the message's length 32, got 64`);
  });

  test('a message shorter than the vfio-user header', async () => {
    const path = file('tiny.pcap');
    small(path);
    const b = readFileSync(path);
    const g = b.subarray(0, 24);
    const r = Buffer.alloc(16);
    r.writeUInt32LE(8 + 10, 8);
    r.writeUInt32LE(8 + 10, 12);
    writeFileSync(path, Buffer.concat([g, r, encodePseudoHeader({ direction: 'to-server', kind: 'message', fds: 0, session: 0 }), Buffer.alloc(10)]));
    const e = await refused(path);
    expect(e.where).toBe(`${path}: packet 1`);
    expect(e.expected).toMatch(/at least 16 bytes after the pseudo-header, got 10 bytes \(record at byte 24\)/);
  });

  test('sessions out of order, a label with fds, a label that is not UTF-8', async () => {
    const second = 24 + 16 + 8 + '/run/dev.sock'.length;
    let path = file('order.pcap');
    small(path);
    let b = readFileSync(path);
    b.writeUInt32LE(2, second + 16 + 4); // session 2 before session 1 appeared
    writeFileSync(path, b);
    let e = await refused(path);
    expect(e.where).toBe(`${path}: byte ${second + 16 + 4}`);
    expect(e.expected).toMatch(/packet 2: sessions numbered from 0 in order of appearance \(the next new one is 1\), got session 2/);

    path = file('labelfds.pcap');
    small(path);
    b = readFileSync(path);
    b[24 + 16 + 3] = 1;
    writeFileSync(path, b);
    e = await refused(path);
    expect(e.where).toBe(`${path}: byte ${24 + 16 + 3}`);
    expect(e.expected).toMatch(/packet 1: a session label carries no file descriptors, got 1/);

    path = file('utf8.pcap');
    small(path);
    b = readFileSync(path);
    b[24 + 16 + 8] = 0xff;
    writeFileSync(path, b);
    e = await refused(path);
    expect(e.where).toBe(`${path}: byte ${24 + 16 + 8}`);
    expect(e.expected).toMatch(/packet 1: a session label in UTF-8/);
  });

  test('records before the error still come out of the iterator', async () => {
    const path = file('partial.pcap');
    small(path);
    truncateSync(path, readFileSync(path).length - 1);
    const seen: number[] = [];
    let err: unknown;
    try {
      for await (const r of captureRecords(path)) seen.push(r.index);
    } catch (e) {
      err = e;
    }
    expect(seen).toEqual([1]);
    expect(err).toBeInstanceOf(InputError);
  });
});
