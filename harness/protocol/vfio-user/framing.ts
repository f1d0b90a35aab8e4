/**
 * Framing: a byte stream with its fds, split into whole messages.
 */
import { DEFAULT_LIMITS, HEADER_SIZE, ProtocolViolation, type Limits } from './messages.ts';

/**
 * Splits a byte stream into whole messages. Chunks are pushed with the fds
 * that arrived with them; a chunk's fds belong to the last message that
 * starts in that chunk (none starting there: the next one to start). That
 * is where an AF_UNIX stream socket puts them: one recvmsg(2) may return
 * several sendmsg(2)s glued together, but it stops right after the one
 * that carried fds, so with one message per sendmsg (QEMU, libvfio-user,
 * isoroot) the fds came with the chunk's last message (QEMU pipelines a
 * DMA_UNMAP and the DMA_MAP that carries a memfd). The size field of every header is
 * checked as soon as it arrives: a size below 16 or above limits.maxMessage
 * stops the reader there (nothing after it is buffered; fds after it are
 * dropped, to be closed by the owner of the stream), and next() throws the
 * violation once the messages before it are taken.
 */
export class FrameReader {
  private buf = Buffer.alloc(256);
  private start = 0; // first buffered byte in buf
  private end = 0; // one past the last buffered byte in buf
  private pos = 0; // stream offset of buf[start]
  private scan = 0; // stream offset of the next header whose size is unchecked
  private scanned = -1; // stream offset of the last header whose size was checked
  private fdq: { at: number; fds: number[] }[] = [];
  private failure: { at: number; v: ProtocolViolation } | null = null;

  /** The limits in force; raise them after VERSION negotiation (negotiatedLimits). */
  constructor(public limits: Limits = DEFAULT_LIMITS) {}

  /** Bytes held, not yet returned by next(). */
  get buffered(): number {
    return this.end - this.start;
  }

  push(chunk: Uint8Array, fds: readonly number[] = []): void {
    if (this.failure) return;
    const streamEnd = this.pos + this.buffered;
    if (chunk.length === 0) {
      if (fds.length) this.fdq.push({ at: streamEnd, fds: [...fds] });
      return;
    }
    if (this.end + chunk.length > this.buf.length) {
      const need = this.buffered + chunk.length;
      const next = need > this.buf.length / 2 ? Buffer.alloc(Math.max(need * 2, 256)) : this.buf;
      this.buf.copy(next, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      this.buf = next;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
    this.checkSizes();
    if (fds.length) {
      // The last message start among the bytes now held: the next header if any of it is here, else the one before.
      const last = this.scan < this.pos + this.buffered ? this.scan : this.scanned;
      this.fdq.push({ at: Math.max(last, streamEnd), fds: [...fds] });
    }
  }

  /** Checks the size field of each header as it becomes visible. */
  private checkSizes(): void {
    const streamEnd = this.pos + this.buffered;
    while (this.scan + 8 <= streamEnd) {
      const size = this.buf.readUInt32LE(this.start + (this.scan - this.pos) + 4);
      if (size < HEADER_SIZE || size > this.limits.maxMessage) {
        const v = new ProtocolViolation('header', 'msg_size', 4, size < HEADER_SIZE ? `at least ${HEADER_SIZE} (the header is included)` : `at most ${this.limits.maxMessage}`, `${size}`);
        v.message += ` (message at stream offset ${this.scan})`;
        this.failure = { at: this.scan, v };
        this.end = this.start + (this.scan - this.pos); // drop the broken message and all after it
        return;
      }
      this.scanned = this.scan;
      this.scan += size;
    }
  }

  next(): { bytes: Buffer; fds: number[] } | null {
    const avail = this.buffered;
    if (this.failure && this.pos === this.failure.at) throw this.failure.v;
    if (avail < 8) return null;
    const size = this.buf.readUInt32LE(this.start + 4);
    if (avail < size) return null;
    const bytes = Buffer.from(this.buf.subarray(this.start, this.start + size));
    const fds: number[] = [];
    while (this.fdq.length && this.fdq[0].at <= this.pos) fds.push(...this.fdq.shift()!.fds);
    this.start += size;
    this.pos += size;
    if (this.start === this.end) this.start = this.end = 0;
    return { bytes, fds };
  }
}
