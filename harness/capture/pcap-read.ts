/**
 * Reads a vfio-user capture (encapsulation.ts, docs/wireshark.md) with
 * the npm package pcap-parser. Anything that is not such a capture is an
 * InputError naming the file and the byte offset or packet number, and
 * what was expected there.
 */
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { HEADER_SIZE } from '../protocol/vfio-user/messages.ts';
import { InputError } from '../util/errors.ts';
import {
  EncapsulationError,
  LINKTYPE_USER0,
  PCAPNG_MAGIC,
  PCAP_GLOBAL_HEADER_SIZE,
  PCAP_MAGIC,
  PCAP_MAGIC_NANOS,
  PCAP_RECORD_HEADER_SIZE,
  PCAP_VERSION_MAJOR,
  PCAP_VERSION_MINOR,
  PSEUDO_HEADER_SIZE,
  decodePseudoHeader,
  linkTypeName,
  type Direction,
  type RecordKind,
} from './encapsulation.ts';

/** One packet of the capture. */
export interface CaptureRecord {
  /** Packet number, from 1, as Wireshark numbers frames (frame.number). */
  index: number;
  time: Date;
  /** The timestamp as written, in microseconds since the epoch (Date keeps milliseconds). */
  micros: bigint;
  session: number;
  direction: Direction;
  kind: RecordKind;
  /** File descriptors that travelled with the message (their number only). */
  fds: number;
  /** The whole vfio-user message (header included), or the label's UTF-8 bytes. */
  payload: Buffer;
  /** A label record: its text. */
  text?: string;
  /** Byte offset of the packet's record header in the file. */
  fileOffset: number;
}

// pcap-parser 0.2.1 (CommonJS, no type declarations): the parts we use.
interface PcapGlobalHeader {
  magicNumber: number;
  majorVersion: number;
  minorVersion: number;
  gmtOffset: number;
  timestampAccuracy: number;
  snapshotLength: number;
  linkLayerType: number;
}
interface PcapPacketHeader {
  timestampSeconds: number;
  timestampMicroseconds: number;
  capturedLength: number;
  originalLength: number;
}
interface PcapPacket {
  header: PcapPacketHeader;
  data: Buffer;
}
interface PcapParser extends EventEmitter {
  on(event: 'globalHeader', f: (h: PcapGlobalHeader) => void): this;
  on(event: 'packetHeader', f: (h: PcapPacketHeader) => void): this;
  on(event: 'packet', f: (p: PcapPacket) => void): this;
  on(event: 'end', f: () => void): this;
  on(event: 'error', f: (e: Error) => void): this;
}
const pcapParser = createRequire(import.meta.url)('pcap-parser') as { parse(input: string | Readable): PcapParser };

/** Largest record accepted: anything bigger is a corrupt length, not a vfio-user message. */
const MAX_RECORD = 0x10000000;

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

/**
 * The records of a capture, in file order, as they are read. Throws
 * (rejects) InputError on the first thing that is not this encapsulation.
 */
export async function* captureRecords(file: string): AsyncGenerator<CaptureRecord, void, undefined> {
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  const queue: CaptureRecord[] = [];
  let failure: Error | null = null;
  let ended = false;
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const fail = (e: Error): void => {
    if (failure === null && !ended) failure = e;
    ended = true;
    stream.destroy();
    notify();
  };

  let total = 0; // bytes read from the file
  let consumed = 0; // bytes of the file parsed into whole headers and records
  let sawHeader = false;
  let index = 0;
  let sessions = 0;
  let pending: PcapPacketHeader | null = null;
  const utf8 = new TextDecoder('utf-8', { fatal: true });

  stream.on('data', (chunk) => {
    total += chunk.length;
  });
  // Read the magic ourselves: pcap-parser only says "unknown magic number".
  stream.once('data', (chunk) => {
    const b = chunk as Buffer;
    if (b.length < 4) return;
    const be = b.readUInt32BE(0);
    const le = b.readUInt32LE(0);
    if (be === PCAP_MAGIC || le === PCAP_MAGIC) return;
    if (be === PCAPNG_MAGIC) fail(new InputError(`${file}: byte 0`, 'a classic pcap file (magic a1b2c3d4), got a pcapng file (convert it: editcap -F pcap IN OUT)'));
    else if (be === PCAP_MAGIC_NANOS || le === PCAP_MAGIC_NANOS) fail(new InputError(`${file}: byte 0`, 'a pcap file with microsecond timestamps (magic a1b2c3d4), got nanosecond timestamps (magic a1b23c4d; convert it: editcap -F pcap IN OUT)'));
    else fail(new InputError(`${file}: byte 0`, `a pcap file (magic a1b2c3d4 or d4c3b2a1), got ${b.subarray(0, 4).toString('hex')}`));
  });
  stream.on('error', (e) => fail(new InputError(file, `a readable file (${e.message})`)));
  // Our listeners first: the magic is checked before pcap-parser complains about it.
  const parser = pcapParser.parse(stream);

  parser.on('error', (e) => {
    if (failure === null) fail(new InputError(`${file}: byte 0`, `a pcap file (${e.message})`));
  });
  parser.on('globalHeader', (h) => {
    if (ended) return;
    sawHeader = true;
    if (h.majorVersion !== PCAP_VERSION_MAJOR || h.minorVersion !== PCAP_VERSION_MINOR) {
      return fail(new InputError(`${file}: byte 4`, `pcap format version ${PCAP_VERSION_MAJOR}.${PCAP_VERSION_MINOR}, got ${h.majorVersion}.${h.minorVersion}`));
    }
    if (h.linkLayerType !== LINKTYPE_USER0) {
      return fail(
        new InputError(
          `${file}: byte 20`,
          `link type ${LINKTYPE_USER0} (LINKTYPE_USER0, isoroot's vfio-user capture), got ${h.linkLayerType} (${linkTypeName(h.linkLayerType)})`,
        ),
      );
    }
    consumed = PCAP_GLOBAL_HEADER_SIZE;
  });
  parser.on('packetHeader', (h) => {
    if (ended) return;
    const n = index + 1;
    const at = `${file}: packet ${n}`;
    if (h.capturedLength < h.originalLength) {
      return fail(new InputError(at, `a whole packet (captured length = length), got ${plural(h.capturedLength, 'byte')} of ${h.originalLength} (record at byte ${consumed})`));
    }
    if (h.capturedLength > h.originalLength) {
      return fail(new InputError(at, `a captured length at most the packet length, got ${h.capturedLength} > ${h.originalLength} (record at byte ${consumed})`));
    }
    if (h.capturedLength > MAX_RECORD) {
      return fail(new InputError(at, `a packet of at most ${MAX_RECORD} bytes, got ${h.capturedLength} (record at byte ${consumed})`));
    }
    pending = h;
  });
  parser.on('packet', (p) => {
    if (ended) return;
    index++;
    const fileOffset = consumed;
    consumed += PCAP_RECORD_HEADER_SIZE + p.data.length;
    pending = null;
    const dataAt = fileOffset + PCAP_RECORD_HEADER_SIZE;
    let ph;
    try {
      ph = decodePseudoHeader(p.data);
    } catch (e) {
      if (!(e instanceof EncapsulationError)) throw e;
      return fail(new InputError(`${file}: byte ${dataAt + e.offset}`, `packet ${index}: ${e.message}`));
    }
    const payload = p.data.subarray(PSEUDO_HEADER_SIZE);
    if (ph.session > sessions) {
      return fail(
        new InputError(`${file}: byte ${dataAt + 4}`, `packet ${index}: sessions numbered from 0 in order of appearance (the next new one is ${sessions}), got session ${ph.session}`),
      );
    }
    if (ph.session === sessions) sessions++;
    let text: string | undefined;
    if (ph.kind === 'message') {
      if (payload.length < HEADER_SIZE) {
        return fail(new InputError(`${file}: packet ${index}`, `a vfio-user message of at least ${HEADER_SIZE} bytes after the pseudo-header, got ${plural(payload.length, 'byte')} (record at byte ${fileOffset})`));
      }
      const size = payload.readUInt32LE(4);
      if (size !== payload.length) {
        return fail(
          new InputError(
            `${file}: packet ${index}`,
            `the vfio-user header's message size (byte ${dataAt + PSEUDO_HEADER_SIZE + 4}) to equal the message's length ${payload.length}, got ${size}`,
          ),
        );
      }
    } else {
      if (ph.fds !== 0) return fail(new InputError(`${file}: byte ${dataAt + 3}`, `packet ${index}: a session label carries no file descriptors, got ${ph.fds}`));
      try {
        text = utf8.decode(payload);
      } catch {
        return fail(new InputError(`${file}: byte ${dataAt + PSEUDO_HEADER_SIZE}`, `packet ${index}: a session label in UTF-8`));
      }
    }
    const sec = p.header.timestampSeconds;
    const usec = p.header.timestampMicroseconds;
    const micros = BigInt(sec) * 1_000_000n + BigInt(usec);
    queue.push({
      index,
      time: new Date(sec * 1000 + Math.floor(usec / 1000)),
      micros,
      session: ph.session,
      direction: ph.direction,
      kind: ph.kind,
      fds: ph.fds,
      payload,
      ...(text !== undefined ? { text } : {}),
      fileOffset,
    });
    if (queue.length >= 256) stream.pause();
    notify();
  });
  parser.on('end', () => {
    if (ended) return;
    if (!sawHeader) {
      return fail(
        new InputError(`${file}: byte ${total}`, total === 0 ? `a pcap file, got an empty file` : `a pcap file's ${PCAP_GLOBAL_HEADER_SIZE}-byte header, but the file ends after ${plural(total, 'byte')}`),
      );
    }
    if (consumed < total) {
      const rest = total - consumed;
      const n = index + 1;
      const h = pending as PcapPacketHeader | null;
      if (h === null) {
        return fail(new InputError(`${file}: byte ${consumed}`, `packet ${n}: a ${PCAP_RECORD_HEADER_SIZE}-byte record header, but the file ends after ${plural(rest, 'byte')} (truncated capture)`));
      }
      return fail(
        new InputError(
          `${file}: byte ${consumed}`,
          `packet ${n}: ${plural(h.capturedLength, 'byte')} of packet data, but the file ends after ${plural(rest - PCAP_RECORD_HEADER_SIZE, 'byte')} (truncated capture)`,
        ),
      );
    }
    ended = true;
    notify();
  });

  try {
    for (;;) {
      if (queue.length > 0) {
        const r = queue.shift()!;
        if (queue.length < 64 && stream.isPaused() && !ended) stream.resume();
        yield r;
        continue;
      }
      if (failure !== null) throw failure;
      if (ended) return;
      if (stream.isPaused()) stream.resume();
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    if (!ended) {
      ended = true;
      stream.destroy();
    }
  }
}

/** All the records of a capture. Rejects with InputError (see captureRecords). */
export async function readCapture(file: string): Promise<CaptureRecord[]> {
  const out: CaptureRecord[] = [];
  for await (const r of captureRecords(file)) out.push(r);
  return out;
}
