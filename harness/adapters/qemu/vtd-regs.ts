/**
 * intel-iommu's registers as q35 maps them (VT-d §10.4), and what both
 * VT-d drivers (vtd.ts, legacy; vtd-scalable.ts, scalable mode) do with
 * them alike: wait for a status bit, take the fault record.
 */
import { Q, QtestError, parseValue, type QtestChannel } from './qtest.ts';

/** Where q35 maps intel-iommu's registers. */
export const VTD_BASE = 0xfed90000;

export const REG = {
  GCMD: 0x18,
  GSTS: 0x1c,
  RTADDR: 0x20,
  CCMD: 0x28,
  FSTS: 0x34,
  FECTL: 0x38,
  IQH: 0x80,
  IQT: 0x88,
  IQA: 0x90,
  IOTLB: 0xf8,
  /** The high qword of the one fault recording register (CAP.FRO = 0x22, in 16-byte units). */
  FRCD_HI: 0x228,
} as const;

/** GCMD / GSTS bits. */
export const TE = 1n << 31n;
export const SRTP = 1n << 30n;
export const QIE = 1n << 26n;
/** FSTS bits: primary fault overflow, invalidation queue error. */
export const PFO = 1n;
export const IQE = 1n << 4n;
/** FECTL: interrupt mask (faults are read, not signalled). */
export const FECTL_IM = 0x80000000n;

const FAULT = 1n << 63n;

export const vtdWrite = (off: number, size: 4 | 8, v: bigint): string => Q.write(VTD_BASE + off, size, v);

/** Waits until a register's bit reads `want`; past `timeoutMs` QEMU is hung. */
export async function untilBit(q: QtestChannel, off: number, size: 4 | 8, bit: bigint, want: boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await q.value(Q.read(VTD_BASE + off, size), timeoutMs);
    if (((v & bit) !== 0n) === want) return;
    if (Date.now() > deadline) throw new QtestError(`intel-iommu: ${what} did not complete in ${timeoutMs} ms`, 'hang');
  }
}

/**
 * The fault reason code of the last DMA's fault record, if any (the record
 * and FSTS cleared after), and the zero page wiped in the same batch.
 */
export async function takeFaultCode(q: QtestChannel, zero: number, page: number, timeoutMs: number): Promise<number | null> {
  const [hi] = await q.call([Q.read(VTD_BASE + REG.FRCD_HI, 8), Q.memset(zero, page, 0)], timeoutMs);
  const v = parseValue(hi);
  if ((v & FAULT) === 0n) return null;
  await q.call([Q.write(VTD_BASE + REG.FRCD_HI, 8, FAULT), vtdWrite(REG.FSTS, 4, PFO)], timeoutMs);
  return Number((v >> 32n) & 0xffn);
}
