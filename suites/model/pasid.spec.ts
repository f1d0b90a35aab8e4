/** PASID contexts (seeds/004): allocation on a shared namespace, bind/unbind per device, free tears down bindings. */
import { test, expect } from '@playwright/test';
import { Poke, ep, oneRoot } from '../helpers.ts';

const caps = { caps: ['pcie', 'pasid'] as ('pcie' | 'pasid')[], domain: 0, pasidContext: 0 };
const t = oneRoot([ep('a', 3, caps), ep('b', 4, caps), ep('c', 5, { ...caps, pasidContext: 1 }), ep('n', 6, { caps: ['pcie', 'pasid'] })], { iommu: true, domains: 2, pasidContexts: 2 });

function ready(p: Poke, bdf: string): void {
  p.wr(bdf, 0x04, 0x4, 2);
  p.wr(bdf, 0x106, 1, 2);
}

test('alloc hands out the lowest free PASID of the context, from 1; devices of one context share it', () => {
  const p = new Poke(t);
  expect(p.apply({ op: 'pasid.alloc', dev: 'a' }).value).toBe(1n);
  expect(p.apply({ op: 'pasid.alloc', dev: 'b' }).value).toBe(2n);
  expect(p.apply({ op: 'pasid.alloc', dev: 'c' }).value).toBe(1n); // another context
  expect(p.apply({ op: 'pasid.free', dev: 'b', pasid: 1 }).status).toBe('ok'); // freed through another device of the context
  expect(p.apply({ op: 'pasid.alloc', dev: 'a' }).value).toBe(1n);
  expect(p.apply({ op: 'pasid.alloc', dev: 'n' })).toEqual({ status: 'error', reason: 'no-context' });
});

test('bind needs an allocated PASID and binds once; unbind needs a binding', () => {
  const p = new Poke(t);
  expect(p.apply({ op: 'pasid.bind', dev: 'a', pasid: 1, domain: 0 })).toEqual({ status: 'error', reason: 'invalid-pasid' });
  p.apply({ op: 'pasid.alloc', dev: 'a' });
  expect(p.apply({ op: 'pasid.bind', dev: 'a', pasid: 1, domain: 0 }).status).toBe('ok');
  expect(p.apply({ op: 'pasid.bind', dev: 'a', pasid: 1, domain: 1 })).toEqual({ status: 'error', reason: 'bound' });
  expect(p.apply({ op: 'pasid.bind', dev: 'b', pasid: 1, domain: 1 }).status).toBe('ok');
  expect(p.apply({ op: 'pasid.bind', dev: 'a', pasid: 1, domain: 9 }).status).toBe('error');
  expect(p.apply({ op: 'pasid.unbind', dev: 'a', pasid: 2 })).toEqual({ status: 'error', reason: 'not-bound' });
});

test('tagged DMA translates through the bound domain; unbind and free make it fault', () => {
  const p = new Poke(t);
  ready(p, '00:03.0');
  ready(p, '00:04.0');
  p.mw(0x9000, 0x77);
  p.apply({ op: 'pasid.alloc', dev: 'a' });
  p.apply({ op: 'pasid.bind', dev: 'a', pasid: 1, domain: 1 });
  p.apply({ op: 'pasid.bind', dev: 'b', pasid: 1, domain: 1 });
  p.apply({ op: 'dma.map', root: 0, domain: 1, iova: 0x1000, size: 0x1000, gpa: 0x9000, perm: 'rw' });
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0x1000, len: 1, pasid: 1 }).data).toEqual(Uint8Array.of(0x77));
  // Without PASID the device uses its own domain (0), where nothing is mapped.
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0x1000, len: 1 })).toEqual({ status: 'fault', reason: 'iova-unmapped' });
  p.apply({ op: 'pasid.unbind', dev: 'a', pasid: 1 });
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0x1000, len: 1, pasid: 1 })).toEqual({ status: 'fault', reason: 'pasid-unbound' });
  expect(p.apply({ op: 'dma.read', dev: 'b', iova: 0x1000, len: 1, pasid: 1 }).status).toBe('ok');
  // Freeing the PASID while b still has it bound tears b's binding down too.
  p.apply({ op: 'pasid.free', dev: 'a', pasid: 1 });
  expect(p.apply({ op: 'dma.read', dev: 'b', iova: 0x1000, len: 1, pasid: 1 })).toEqual({ status: 'fault', reason: 'pasid-freed' });
});

test('the largest 20-bit PASID is within Max PASID Width: it faults only for being unbound', () => {
  const p = new Poke(t);
  ready(p, '00:03.0');
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0, len: 1, pasid: 0xfffff }).reason).toBe('pasid-unbound');
});

test('invalidate is accepted for a live PASID and refused for a freed one', () => {
  const p = new Poke(t);
  p.apply({ op: 'pasid.alloc', dev: 'a' });
  expect(p.apply({ op: 'pasid.invalidate', dev: 'a', pasid: 1 }).status).toBe('ok');
  p.apply({ op: 'pasid.free', dev: 'a', pasid: 1 });
  expect(p.apply({ op: 'pasid.invalidate', dev: 'a', pasid: 1 })).toEqual({ status: 'error', reason: 'invalid-pasid' });
});
