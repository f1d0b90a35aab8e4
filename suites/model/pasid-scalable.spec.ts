/**
 * The model under VT-d scalable mode (RootSpec.scalable): RID_PASID of a
 * PASID table shared by a context's devices, binding stages, and what may
 * still translate between a PASID entry's clearing and its invalidation.
 */
import { test, expect } from '@playwright/test';
import { Model } from '../../harness/model/model.ts';
import { REFERENCE_RULES } from '../../harness/model/rules.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import { topologyProblem } from '../../harness/topology/validate.ts';
import type { ScalableStages } from '../../harness/topology/types.ts';
import { B, Poke, ep, oneRoot } from '../helpers.ts';

const t = (scalable: ScalableStages = 'both') =>
  oneRoot([ep('a', 3, { domain: 0, pasidContext: 0 }), ep('b', 4, { domain: 0, pasidContext: 0 }), ep('c', 5, { domain: 1, pasidContext: 1 }), ep('n', 6)], { iommu: true, scalable, domains: 2, pasidContexts: 2 });

const read = (dev: string, iova: number): Op => ({ op: 'dma.read', dev, iova, len: 4 });

/** Bus Master on for a, b, c and n; 0x11.. in RAM at 0x9000, 0x22.. at 0xa000; domain 0 maps 0x1000 and 0x2000 there, domain 1 0x1000 to 0xa000. */
function ready(p: Poke): void {
  for (const s of [3, 4, 5, 6]) p.wr(`00:0${s}.0`, 0x04, 0x4, 2);
  p.mw(0x9000, 0x11111111);
  p.mw(0xa000, 0x22222222);
  p.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x1000, size: 0x1000, gpa: 0x9000, perm: 'rw' });
  p.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x2000, size: 0x1000, gpa: 0xa000, perm: 'rw' });
  p.apply({ op: 'dma.map', root: 0, domain: 1, iova: 0x1000, size: 0x1000, gpa: 0xa000, perm: 'rw' });
}
const bytes = (x: number) => Uint8Array.of(x, x, x, x);

test("devices of a context share RID_PASID: one's attach, bind and detach are the others'; another context is apart", () => {
  const p = new Poke(t());
  ready(p);
  expect(p.apply(read('b', 0x1000)).data).toEqual(bytes(0x11));
  expect(p.apply(read('c', 0x1000)).data).toEqual(bytes(0x22));
  expect(p.apply({ op: 'dma.attach', dev: 'b', domain: 1 })).toEqual({ status: 'error', reason: 'busy' });
  expect(p.apply({ op: 'pasid.bind', dev: 'b', pasid: 0, domain: 1 })).toEqual({ status: 'error', reason: 'bound' });
  expect(p.apply({ op: 'dma.detach', dev: 'a' }).status).toBe('ok');
  expect(p.apply(read('b', 0x1000))).toEqual({ status: 'fault', reason: 'pasid-unbound' });
  expect(p.apply({ op: 'pasid.bind', dev: 'a', pasid: 0, domain: 1 }).status).toBe('ok');
  expect(p.apply(read('b', 0x1000)).data).toEqual(bytes(0x22));
  // A device without a context has a table of its own, and no PASID ops.
  expect(p.apply(read('n', 0x1000))).toEqual({ status: 'fault', reason: 'pasid-unbound' });
  expect(p.apply({ op: 'pasid.bind', dev: 'n', pasid: 0, domain: 0 })).toEqual({ status: 'error', reason: 'no-context' });
  expect(p.apply({ op: 'dma.attach', dev: 'n', domain: 0 }).status).toBe('ok');
  expect(p.apply(read('n', 0x1000)).data).toEqual(bytes(0x11));
});

test('PASID 0 is RID_PASID: never allocated nor freed, bound and unbound as any other; unbinding needs a binding', () => {
  const p = new Poke(t());
  expect(p.apply({ op: 'pasid.alloc', dev: 'a' }).value).toBe(1n);
  expect(p.apply({ op: 'pasid.free', dev: 'a', pasid: 0 })).toEqual({ status: 'error', reason: 'invalid-pasid' });
  expect(p.apply({ op: 'pasid.unbind', dev: 'b', pasid: 0 }).status).toBe('ok');
  expect(p.apply({ op: 'pasid.unbind', dev: 'a', pasid: 0 })).toEqual({ status: 'error', reason: 'not-bound' });
  expect(p.apply({ op: 'pasid.invalidate', dev: 'a', pasid: 0 }).status).toBe('ok');
});

test('after a clear, the cached translation is allowed until the invalidation that covers it: by page, or the whole PASID', () => {
  const p = new Poke(t());
  ready(p);
  p.apply({ op: 'pasid.unbind', dev: 'a', pasid: 0, clear: 'zero' });
  const stale = (dev: string, iova: number) => p.full(read(dev, iova)).allowed?.map((x) => [x.option, x.obs.status, x.obs.data]);
  // The model predicts the table as it is (a fault), and allows the cached translation, for every device of the context.
  const first = p.full(read('b', 0x1000));
  expect(first).toMatchObject({ status: 'fault', reason: 'pasid-unbound', choice: { id: 'translation.stale', option: 'fresh' } });
  expect(first.allowed?.map((x) => [x.option, x.obs.status, x.obs.data])).toEqual([['stale', 'ok', bytes(0x11)]]);
  p.apply({ op: 'pasid.invalidate', dev: 'a', pasid: 0, iova: 0x1000 });
  expect(stale('a', 0x1000)).toBeUndefined();
  expect(stale('a', 0x2000)).toEqual([['stale', 'ok', bytes(0x22)]]);
  // A change to the old domain's tables was invalidated with it.
  p.apply({ op: 'dma.unmap', root: 0, domain: 0, iova: 0x2000, size: 0x1000 });
  expect(stale('a', 0x2000)).toBeUndefined();
  p.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x3000, size: 0x1000, gpa: 0x9000, perm: 'rw' });
  expect(stale('a', 0x3000)).toBeUndefined();
  p.apply({ op: 'pasid.bind', dev: 'a', pasid: 0, domain: 0 });
  p.apply({ op: 'pasid.unbind', dev: 'a', pasid: 0 });
  p.apply({ op: 'pasid.invalidate', dev: 'b', pasid: 0 });
  expect(stale('a', 0x1000)).toBeUndefined();
  // A detach invalidates all of it at once.
  p.apply({ op: 'pasid.bind', dev: 'a', pasid: 0, domain: 0 });
  p.apply({ op: 'dma.detach', dev: 'b' });
  expect(stale('a', 0x1000)).toBeUndefined();
});

test('a stage the IOMMU does not offer is refused; through first-stage tables a write-only page reads, a read-only one does not take writes', () => {
  const p = new Poke(t('second'));
  ready(p);
  p.apply({ op: 'pasid.unbind', dev: 'a', pasid: 0 });
  expect(p.apply({ op: 'pasid.bind', dev: 'a', pasid: 0, domain: 0, stage: 'first' })).toEqual({ status: 'error', reason: 'unsupported' });
  const f = new Poke(t('first'));
  ready(f);
  f.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x4000, size: 0x1000, gpa: 0x9000, perm: 'w' });
  f.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x5000, size: 0x1000, gpa: 0x9000, perm: 'r' });
  expect(f.apply(read('a', 0x4000)).data).toEqual(bytes(0x11));
  expect(f.apply({ op: 'dma.write', dev: 'a', iova: 0x5000, data: bytes(1) })).toEqual({ status: 'fault', reason: 'perm' });
  expect(f.apply({ op: 'pasid.unbind', dev: 'a', pasid: 0 }).status).toBe('ok');
  expect(f.apply({ op: 'pasid.bind', dev: 'a', pasid: 0, domain: 0, stage: 'second' })).toEqual({ status: 'error', reason: 'unsupported' });
  const s = new Poke(t('second'));
  ready(s);
  s.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x4000, size: 0x1000, gpa: 0x9000, perm: 'w' });
  expect(s.apply(read('a', 0x4000))).toEqual({ status: 'fault', reason: 'perm' });
});

test('scalable mode needs an IOMMU, and the devices of one context one domain', () => {
  expect(topologyProblem(oneRoot([ep('a', 3)], { scalable: 'first' }))?.path).toBe('topology.roots[0].scalable');
  const clash = oneRoot([ep('a', 3, { domain: 0, pasidContext: 0 }), ep('b', 4, { domain: 1, pasidContext: 0 })], { iommu: true, scalable: 'both', domains: 2, pasidContexts: 1 });
  expect(topologyProblem(clash)).toMatchObject({ path: 'device b.domain', expected: expect.stringContaining('domain 0, as a') });
});

test("QEMU's known bugs as rules: a zeroed entry faults as invalid; an entry with Present cleared lingers past the invalidations", () => {
  const m = new Model(t(), { ...REFERENCE_RULES, pasidTypeBeforePresent: true, pasidPresentIgnoredWhenCached: true });
  const apply = (op: Op) => m.apply(op);
  for (const s of [3, 4, 5, 6]) apply({ op: 'cfg.write', root: 0, via: 'ecam', bdf: B(`00:0${s}.0`), reg: 4, size: 2, value: 4n });
  apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x1000, size: 0x1000, gpa: 0x9000, perm: 'rw' });
  // Never written: all zeros.
  expect(apply(read('n', 0x1000))).toMatchObject({ status: 'fault', reason: 'pasid-invalid' });
  apply({ op: 'pasid.unbind', dev: 'a', pasid: 0 });
  apply({ op: 'pasid.invalidate', dev: 'a', pasid: 0 });
  const lingering = apply(read('b', 0x1000));
  expect(lingering).toMatchObject({ status: 'fault', reason: 'pasid-unbound' });
  expect(lingering.allowed?.map((x) => x.option)).toEqual(['stale']);
  apply({ op: 'pasid.bind', dev: 'a', pasid: 0, domain: 0 });
  apply({ op: 'pasid.unbind', dev: 'a', pasid: 0, clear: 'zero' });
  apply({ op: 'pasid.invalidate', dev: 'a', pasid: 0 });
  const zeroed = apply(read('b', 0x1000));
  expect(zeroed).toMatchObject({ status: 'fault', reason: 'pasid-invalid' });
  expect(zeroed.allowed).toBeUndefined();
});
