/**
 * dma.write on QEMU's iommu-testdev (hw/misc/iommu-testdev.c), driven as
 * the model's IommuTestdev.driverWrite says a driver drives it: its BAR0
 * registers found in QEMU's flat view, the device's context entry pointed
 * at its own tables (no harness transfer in between: what intel-iommu
 * cached stays cached), the registers the driver changes saved, the
 * transfer set up and triggered, RESULT read, the registers put back.
 * Every command of the transfer goes in one qtest batch.
 *
 * RESULT 0 or 0xdead0004 (the read-back, pointed at the harness's scratch
 * RAM, differs): the write landed. 0xdead0002: it failed; the IOMMU's
 * fault record names the reason, and without one it missed memory.
 * Anything else is QEMU's, and the op says so (an error with the value).
 */
import type { Op, OpOf } from '../../ops/catalog.ts';
import type { Observation } from '../../ops/observation.ts';
import { ITD, ITD_RESULT, overreachingLength } from '../../model/personalities/iommu-testdev.ts';
import { locate, faulted, type DmaContext } from './dma.ts';
import type { Iommu } from './iommu.ts';
import { flatViews, ownerAt } from './mtree.ts';
import { Q, parseValue } from './qtest.ts';

const OFFSETS = Object.values(ITD);
/** Registers a driver changes and puts back, in the order they are read. */
const SAVED = [ITD.iovaLo, ITD.iovaHi, ITD.len, ITD.gpaLo, ITD.gpaHi, ITD.attrs] as const;
/** ATTRS as reset leaves them: non-secure, not marked valid. */
const ATTRS_DEFAULT = 2n;

export async function testdevDma(x: DmaContext, id: string, op: OpOf<'dma.write'>, iommu: Iommu | null): Promise<Observation> {
  const me = (await locate(x, [id], OFFSETS)).get(id);
  if (me === undefined) return { status: 'error', reason: 'unreachable', source: 'harness' };
  const tr = iommu?.translation(id) ?? null;
  if (tr !== null) {
    await tr.real(me.rid);
    await tr.fault();
  }
  const b = me.base;
  const { qtest } = x.q;
  const saved = (await qtest.call([...SAVED, ITD.result].map((off) => Q.read(b + off, 4)), x.timeoutMs)).map(parseValue);
  const w = (off: number, v: bigint | number): string => Q.write(b + off, 4, BigInt(v));
  const iova = BigInt(op.iova);
  const replies = await qtest.call(
    [
      w(ITD.iovaLo, iova & 0xffffffffn),
      w(ITD.iovaHi, iova >> 32n),
      w(ITD.len, op.data.length),
      w(ITD.gpaLo, x.scratch),
      w(ITD.gpaHi, 0),
      w(ITD.attrs, ATTRS_DEFAULT),
      w(ITD.doorbell, 1),
      Q.read(b + ITD.trigger, 4),
      Q.read(b + ITD.result, 4),
      ...SAVED.map((off, i) => w(off, saved[i])),
      w(ITD.result, saved[SAVED.length]),
    ],
    x.timeoutMs,
  );
  const result = Number(parseValue(replies[8]));
  if (result === 0 || result === ITD_RESULT.mismatch) return { status: 'ok' };
  if (result === ITD_RESULT.txFail) {
    const f = tr === null ? null : await tr.fault();
    return f === null ? { status: 'fault', reason: 'no-memory', evidence: { events: ['iommu-testdev RESULT 0xdead0002 without an IOMMU fault record'] } } : faulted(f);
  }
  return { status: 'error', reason: 'unsupported', evidence: { events: [`iommu-testdev RESULT 0x${result.toString(16)} after a transfer isoroot armed with a length and default ATTRS`] } };
}

/** An MMIO write that may set an iommu-testdev's length beyond what isoroot drives (rule harness.itd-length), if BAR0 is where it lands. */
export function mayOverreachLength(op: Op): boolean {
  return op.op === 'mmio.write' && overreachingLength(op.addr % 0x1000, op.size, op.value) !== null;
}

/** Whether QEMU's flat view puts one of `ids`' BAR0 at `addr` (the BAR is 4 KiB: the write's offset in it is the address's). */
export async function isTestdevLength(x: DmaContext, addr: number, ids: readonly string[]): Promise<boolean> {
  const owner = ownerAt((await flatViews(x.q.qmp, [], x.timeoutMs)).memory, addr)?.owner;
  return owner !== undefined && ids.includes(owner);
}
