/**
 * Writes vfio-user traffic as a pcap capture (encapsulation.ts,
 * docs/wireshark.md). Every record is written with a synchronous write
 * as it comes, so a crash of the harness loses nothing already recorded
 * and the file can be opened in Wireshark while the session runs.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { HEADER_SIZE } from '../protocol/vfio-user/messages.ts';
import {
  MAX_SESSION,
  PCAP_RECORD_HEADER_SIZE,
  PCAP_SNAPLEN,
  PSEUDO_HEADER_SIZE,
  encodePseudoHeader,
  pcapGlobalHeader,
  type Direction,
  type RecordKind,
} from './encapsulation.ts';

/** Microseconds since the epoch, from the high-resolution clock: consecutive records keep their order. */
function nowMicros(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
}

export class PcapWriter {
  private fd: number | null;
  /** Sessions that have appeared so far; the next new one must be this index. */
  private sessions = 0;
  private lastMicros = 0n;
  private written = 0;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Creates (or truncates) the file and writes the pcap global header. */
  static open(path: string): PcapWriter {
    const fd = openSync(path, 'w');
    const w = new PcapWriter(path, fd);
    try {
      w.write(pcapGlobalHeader());
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return w;
  }

  /** Records written so far (labels and messages). */
  get records(): number {
    return this.written;
  }

  /** The index the next new session gets; sessions are numbered from 0 in order of appearance. */
  get nextSession(): number {
    return this.sessions;
  }

  /**
   * Writes the label of a session (e.g. the socket path), once, when the
   * session starts. Direction defaults to client to server.
   */
  label(session: number, text: string): void;
  label(session: number, direction: Direction, text: string): void;
  label(session: number, a: Direction | string, b?: string): void {
    const [direction, text] = b === undefined ? (['to-server', a] as const) : ([a as Direction, b] as const);
    this.record(session, direction, 'label', Buffer.from(text, 'utf8'), 0, undefined);
  }

  /** Starts a new session: allocates the next index and writes its label. */
  startSession(text: string): number {
    const s = this.sessions;
    this.label(s, text);
    return s;
  }

  /**
   * Writes one whole vfio-user message (header included) and the number
   * of file descriptors that travelled with it.
   */
  message(session: number, direction: Direction, bytes: Uint8Array, fds: number, time?: Date): void {
    if (bytes.length < HEADER_SIZE) throw new RangeError(`a vfio-user message has at least its ${HEADER_SIZE}-byte header, got ${bytes.length} bytes`);
    const size = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
    if (size !== bytes.length) throw new RangeError(`the message's size field (${size}) must equal its length (${bytes.length})`);
    this.record(session, direction, 'message', bytes, fds, time);
  }

  /** Closes the file. Further writes throw; closing twice is harmless. */
  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    closeSync(fd);
  }

  private record(session: number, direction: Direction, kind: RecordKind, payload: Uint8Array, fds: number, time: Date | undefined): void {
    if (this.fd === null) throw new Error(`${this.path}: the capture is closed`);
    if (!Number.isInteger(session) || session < 0 || session > MAX_SESSION) throw new RangeError(`session must be a u32, got ${session}`);
    if (session > this.sessions) throw new RangeError(`sessions are numbered in order of appearance: the next new session is ${this.sessions}, got ${session}`);
    const len = PSEUDO_HEADER_SIZE + payload.length;
    if (len > PCAP_SNAPLEN) throw new RangeError(`a record of ${len} bytes exceeds the capture's snapshot length ${PCAP_SNAPLEN}`);
    const pseudo = encodePseudoHeader({ direction, kind, fds, session });
    let micros = time === undefined ? nowMicros() : BigInt(time.getTime()) * 1000n;
    if (time === undefined && micros <= this.lastMicros) micros = this.lastMicros + 1n;
    if (micros < 0n || micros / 1_000_000n > 0xffffffffn) throw new RangeError(`time ${time?.toISOString()} does not fit a pcap timestamp`);
    const rec = Buffer.alloc(PCAP_RECORD_HEADER_SIZE + len);
    rec.writeUInt32LE(Number(micros / 1_000_000n), 0);
    rec.writeUInt32LE(Number(micros % 1_000_000n), 4);
    rec.writeUInt32LE(len, 8); // caplen
    rec.writeUInt32LE(len, 12); // len: never truncated
    pseudo.copy(rec, PCAP_RECORD_HEADER_SIZE);
    rec.set(payload, PCAP_RECORD_HEADER_SIZE + PSEUDO_HEADER_SIZE);
    this.write(rec);
    if (micros > this.lastMicros) this.lastMicros = micros;
    if (session === this.sessions) this.sessions++;
    this.written++;
  }

  private write(b: Buffer): void {
    let off = 0;
    while (off < b.length) off += writeSync(this.fd!, b, off, b.length - off);
  }
}
