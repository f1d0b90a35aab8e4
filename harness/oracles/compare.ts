/** Field-by-field comparison of observations, shared by the oracles. */
import type { Delivery, Irq, Observation } from '../ops/observation.ts';
import type { Observes } from '../ops/observation.ts';
import type { Op } from '../ops/catalog.ts';

export function sameDelivery(a: Delivery | undefined, b: Delivery | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.root === b.root && a.via === b.via && a.dev === b.dev && a.region === b.region && a.offset === b.offset;
}

const irqKey = (i: Irq): string => `${i.space}|${i.dev ?? ''}|${i.kind}|${i.vector ?? ''}|${i.addr ?? ''}|${i.data ?? ''}|${i.pin ?? ''}|${i.line ?? ''}|${i.level ?? ''}`;

export function sameIrqs(a: readonly Irq[] | undefined, b: readonly Irq[] | undefined): boolean {
  const n = a?.length ?? 0;
  if (n !== (b?.length ?? 0)) return false;
  if (n === 0) return true;
  const x = (a ?? []).map(irqKey).sort();
  const y = (b ?? []).map(irqKey).sort();
  return x.length === y.length && x.every((k, i) => k === y[i]);
}

/** The kinds of the interrupts in `a` that `b` lacks (`line`, `message+msi`), or none: a coarse class for signatures. */
function unmatchedKinds(a: readonly Irq[] | undefined, b: readonly Irq[] | undefined): string {
  const left = (b ?? []).map(irqKey);
  const kinds = new Set<string>();
  for (const i of a ?? []) {
    const k = left.indexOf(irqKey(i));
    if (k >= 0) left.splice(k, 1);
    else kinds.add(i.kind);
  }
  return kinds.size === 0 ? 'none' : [...kinds].sort().join('+');
}

/** Equal bytes; with `mask`, only the bits it sets are compared (a prediction's knownData). */
export function sameData(a: Uint8Array | undefined, b: Uint8Array | undefined, mask?: Uint8Array): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (((a[i] ^ b[i]) & (mask === undefined ? 0xff : mask[i])) !== 0) return false;
  return true;
}

/** Where two byte strings first differ in a bit the mask keeps, and the bytes there; null when they agree or differ in length. */
export function firstDataDifference(observed: Uint8Array, predicted: Uint8Array, mask?: Uint8Array): { at: number; observed: number; predicted: number } | null {
  if (observed.length !== predicted.length) return null;
  for (let i = 0; i < observed.length; i++) if (((observed[i] ^ predicted[i]) & (mask === undefined ? 0xff : mask[i])) !== 0) return { at: i, observed: observed[i], predicted: predicted[i] };
  return null;
}

/**
 * The prediction as a target that sees only what `observes` says would
 * report it: an abort it cannot tell completes with the value read; a
 * fault it cannot see completes silently (a DMA read gets zeros).
 */
export function visible(op: Op, p: Observation, observes: Observes): Observation {
  if ((p.status === 'ur' || p.status === 'ma') && !observes.aborts) {
    const { reason: _, ...rest } = p;
    return { ...rest, status: 'ok' };
  }
  if (p.status === 'fault' && observes.faults !== 'all' && !(observes.faults as readonly string[]).includes(p.reason ?? '')) {
    const q: Observation = { status: 'ok' };
    // What the op reports besides the fault still holds (Linux VFIO: which containers' memory a DMA changed).
    if (p.value !== undefined) q.value = p.value;
    if (p.to !== undefined) q.to = p.to;
    if (p.irqs !== undefined) q.irqs = p.irqs;
    if (op.op === 'dma.read') q.data = new Uint8Array(op.len);
    return q;
  }
  return p;
}

/** A field that differs, with the classes of the predicted and observed values where it has them. */
export interface Difference {
  field: 'status' | 'reason' | 'value' | 'data' | 'delivery' | 'irqs';
  /** For status: the statuses; for value and data: zeros, ones, other or none. */
  predicted?: string;
  observed?: string;
}

/** zeros, ones (all bits set in `bytes`), other, or none: a coarse class of a value, for signatures. */
export function valueClass(v: bigint | undefined, bytes: number): string {
  if (v === undefined) return 'none';
  if (v === 0n) return 'zeros';
  return v === (1n << BigInt(8 * bytes)) - 1n ? 'ones' : 'other';
}

export function dataClass(d: Uint8Array | undefined): string {
  if (d === undefined) return 'none';
  if (d.every((b) => b === 0)) return 'zeros';
  return d.every((b) => b === 0xff) ? 'ones' : 'other';
}

/**
 * How an observation differs from the prediction, limited to what the
 * target observes. A prediction marked unknown says nothing of value or data.
 * seenIrqs: the predicted interrupts as a target with a view of them sees them.
 */
export function differences(op: Op, observed: Observation, predicted: Observation, observes: Observes, seenIrqs?: readonly Irq[]): Difference[] {
  // A fault the target cannot see in general, which it saw this time (iommu-testdev's RESULT shows a write that missed memory, edu's engine does not).
  const seen = observed.status === 'fault' && predicted.status === 'fault' && observed.reason === predicted.reason;
  const p = seen ? predicted : visible(op, predicted, observes);
  const out: Difference[] = [];
  const bytes = 'size' in op ? op.size : 8;
  if (observed.status !== p.status) out.push({ field: 'status', predicted: p.status, observed: observed.status });
  else if (observed.reason !== undefined && p.reason !== undefined && observed.reason !== p.reason) out.push({ field: 'reason' });
  if (p.unknown !== true) {
    const sameValue = p.known === undefined || observed.value === undefined || p.value === undefined ? observed.value === p.value : ((observed.value ^ p.value) & p.known) === 0n;
    if (!sameValue) out.push({ field: 'value', predicted: valueClass(p.value, bytes), observed: valueClass(observed.value, bytes) });
    if (!sameData(observed.data, p.data, p.knownData)) out.push({ field: 'data', predicted: dataClass(p.data), observed: dataClass(observed.data) });
  }
  if (observes.delivery && !sameDelivery(observed.to, p.to)) out.push({ field: 'delivery' });
  const irqs = typeof observes.irqs === 'object' ? seenIrqs : p.irqs;
  if (observes.irqs !== false && !sameIrqs(observed.irqs, irqs)) out.push({ field: 'irqs', predicted: unmatchedKinds(irqs, observed.irqs), observed: unmatchedKinds(observed.irqs, irqs) });
  return out;
}

/** `value(ones>zeros)`, `delivery`: one difference as it appears in a signature. */
export const showDifference = (d: Difference): string => (d.predicted === undefined ? d.field : `${d.field}(${d.predicted}>${d.observed})`);
