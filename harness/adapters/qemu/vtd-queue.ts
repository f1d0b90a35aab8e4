/**
 * VT-d queued invalidation (VT-d §6.5.2) with 256-bit descriptors, the
 * only form scalable mode accepts: software writes descriptors into a ring
 * in memory and moves the tail register. Each batch ends with an
 * invalidation wait descriptor (§6.5.2.8) that writes a sequence number
 * to a status word when everything before it is done. A descriptor the
 * hardware refuses halts the queue (FSTS.IQE, §6.5.2.10): the head then
 * names it, and software clears IQE and moves the tail back to the head,
 * dropping the rest of the batch.
 */
import { Q, QtestError, parseBytes, parseValue, type QtestChannel } from './qtest.ts';
import { IQE, QIE, REG, VTD_BASE, untilBit, vtdWrite } from './vtd-regs.ts';
import { PAGE, type TableArea } from './vtd-tables.ts';

/** IQA.DW: 256-bit descriptors. */
const DW = 1n << 11n;
/** Descriptors in the ring: one page of 32-byte descriptors (IQA.QS = 0). */
const SLOTS = PAGE / 32;

export type Descriptor = readonly [bigint, bigint, bigint?, bigint?];

/** What became of a batch: done, or halted at one of its descriptors (its index in the batch; -1: the wait). */
export type QueueResult = { done: true } | { done: false; at: number; message: string };

/** Status Write (SW) with the status data in bits 63:32, status address in the high qword. */
const wait = (status: number, seq: number): Descriptor => [0x5n | (1n << 5n) | (BigInt(seq) << 32n), BigInt(status)];

export class InvalidationQueue {
  private ring = 0;
  private status = 0;
  private tail = 0;
  private seq = 0;

  constructor(
    private readonly q: QtestChannel,
    private readonly timeoutMs: number,
  ) {}

  /** Sets the ring up and turns queued invalidation on (GCMD.QIE, waiting for GSTS.QIES). */
  async enable(area: TableArea, gcmd: bigint): Promise<void> {
    const cmds: string[] = [];
    this.ring = area.page(cmds);
    this.status = area.page(cmds);
    cmds.push(vtdWrite(REG.IQT, 8, 0n), vtdWrite(REG.IQA, 8, BigInt(this.ring) | DW), vtdWrite(REG.GCMD, 4, gcmd | QIE));
    await this.q.call(cmds, this.timeoutMs);
    await untilBit(this.q, REG.GSTS, 4, QIE, true, 'turning queued invalidation on', this.timeoutMs);
  }

  /**
   * Submits `descs` and a wait, and returns once the wait's status was
   * written, or the queue halted (recovered before returning).
   */
  async submit(descs: readonly Descriptor[]): Promise<QueueResult> {
    const all = [...descs, wait(this.status, ++this.seq & 0x7fffffff)];
    const first = this.tail;
    const cmds: string[] = [];
    for (const d of all) {
      const bytes = new Uint8Array(32);
      const v = new DataView(bytes.buffer);
      d.forEach((x, i) => v.setBigUint64(8 * i, x ?? 0n, true));
      cmds.push(Q.writeBytes(this.ring + 32 * this.tail, bytes));
      this.tail = (this.tail + 1) % SLOTS;
    }
    // QEMU runs the queue when the tail moves: the status and the fault status are there to read at once.
    cmds.push(vtdWrite(REG.IQT, 8, BigInt(32 * this.tail)), Q.readBytes(this.status, 4), Q.read(VTD_BASE + REG.FSTS, 4), Q.read(VTD_BASE + REG.IQH, 8));
    const r = await this.q.call(cmds, this.timeoutMs);
    const status = new DataView(parseBytes(r[r.length - 3], 4).buffer).getUint32(0, true);
    const fsts = parseValue(r[r.length - 2]);
    if ((fsts & IQE) === 0n) {
      if (status === (this.seq & 0x7fffffff)) return { done: true };
      throw new QtestError(`intel-iommu: the invalidation wait did not write its status (read ${status}, wanted ${this.seq})`, 'hang');
    }
    const head = Number(parseValue(r[r.length - 1]) / 32n) % SLOTS;
    // Recovery: IQE cleared, the tail moved back to the head (what followed the refused descriptor is dropped).
    await this.q.call([vtdWrite(REG.FSTS, 4, IQE), vtdWrite(REG.IQT, 8, BigInt(32 * head))], this.timeoutMs);
    this.tail = head;
    const at = (head - first + SLOTS) % SLOTS;
    return { done: false, at: at === all.length - 1 ? -1 : at, message: `the invalidation queue halted (FSTS.IQE) at descriptor ${at} of the batch` };
  }
}
