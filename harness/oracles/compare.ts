/** Field-by-field comparison of observations, shared by the oracles. */
import type { Delivery, Irq, Observation } from '../ops/observation.ts';
import type { Observes } from '../ops/observation.ts';

export function sameDelivery(a: Delivery | undefined, b: Delivery | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.root === b.root && a.via === b.via && a.dev === b.dev && a.region === b.region && a.offset === b.offset;
}

const irqKey = (i: Irq): string => `${i.space}|${i.dev}|${i.kind}|${i.vector ?? ''}|${i.addr ?? ''}|${i.data ?? ''}|${i.pin ?? ''}|${i.level ?? ''}`;

export function sameIrqs(a: readonly Irq[] | undefined, b: readonly Irq[] | undefined): boolean {
  const x = (a ?? []).map(irqKey).sort();
  const y = (b ?? []).map(irqKey).sort();
  return x.length === y.length && x.every((k, i) => k === y[i]);
}

export function sameData(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The fields in which an observation differs from the prediction, limited to what the target observes. */
export function differences(observed: Observation, predicted: Observation, observes: Observes): string[] {
  const out: string[] = [];
  if (observed.status !== predicted.status) out.push('status');
  else if (observed.reason !== undefined && predicted.reason !== undefined && observed.reason !== predicted.reason) out.push('reason');
  if (observed.value !== predicted.value) out.push('value');
  if (!sameData(observed.data, predicted.data)) out.push('data');
  if (observes.delivery && !sameDelivery(observed.to, predicted.to)) out.push('delivery');
  if (observes.irqs && !sameIrqs(observed.irqs, predicted.irqs)) out.push('irqs');
  return out;
}
