/**
 * DMA and PASID fragments: IOMMU map, unmap, attach, detach; device DMA with
 * and without PASID; and deep chains on purpose (mapped before used, bound
 * before tagged), optionally torn down and tried again.
 */
import fc from 'fast-check';
import type { Op } from '../../harness/ops/catalog.ts';
import * as H from '../../harness/model/header.ts';
import { ownerOf } from '../../harness/topology/types.ts';
import { GPAS, IOVAS, cfg, pick, scope, type FragmentContext, type Weighted } from './context.ts';
import type { DevicePlan } from '../plan.ts';
import { bringUp } from './config.ts';
import { itdPattern } from '../../harness/model/personalities/iommu-testdev.ts';

/** A dma.write of `data` by `d`; iommu-testdev writes only its pattern, so it writes that, as long. */
function dmaWrite(d: DevicePlan, iova: number, data: Uint8Array, pasid?: number): Op {
  const bytes = d.spec.kind === 'iommu-testdev' ? itdPattern(data.length) : data;
  return { op: 'dma.write', dev: d.spec.id, iova, data: bytes, ...(pasid !== undefined ? { pasid } : {}) };
}

/** Devices whose registers a driver must reach before their DMA: bring them up first. */
const driven = (d: DevicePlan): boolean => d.spec.kind === 'edu' || d.spec.kind === 'iommu-testdev';

export function dmaFragments(x: FragmentContext): Weighted[] {
  const out: Weighted[] = [];
  const { has, via, withCap } = scope(x);
  const devs = x.devices;
  const iommuRoots = x.t.roots.map((_, r) => r).filter((r) => x.t.roots[ownerOf(x.t, r, 'dma')].iommu === true);
  if (has('dma-map') && iommuRoots.length > 0) {
    out.push({
      // IOVAs on a grid, so a domain can hold many mappings; one GPA lies beyond RAM.
      arb: fc.tuple(pick(iommuRoots), fc.nat(2), fc.nat(2), fc.nat(7), fc.constantFrom(...GPAS, ...GPAS, 0x1000_0000), fc.constantFrom(0x1000, 0x2000), fc.constantFrom('r', 'w', 'rw', 'rw')).map(([r, dom, i, k, gpa, size, perm]): Op[] => [
        { op: 'dma.map', root: r, domain: dom, iova: IOVAS[i] + k * 0x2000, size, gpa, perm: perm as 'r' | 'w' | 'rw' },
      ]),
      weight: 5,
    });
    out.push({ arb: fc.tuple(pick(iommuRoots), fc.nat(2), fc.nat(2), fc.nat(7), fc.constantFrom(0x1000, 0x2000)).map(([r, dom, i, k, size]): Op[] => [{ op: 'dma.unmap', root: r, domain: dom, iova: IOVAS[i] + k * 0x2000, size }]), weight: 2 });
  }
  if (has('dma-attach') && iommuRoots.length > 0) {
    out.push({ arb: fc.tuple(pick(devs), fc.nat(2)).map(([d, dom]): Op[] => [{ op: 'dma.attach', dev: d.spec.id, domain: dom }]), weight: 1 });
    out.push({ arb: pick(devs).map((d): Op[] => [{ op: 'dma.detach', dev: d.spec.id }]), weight: 1 });
  }
  const dmaDevs = devs.filter((d) => d.spec.kind === 'endpoint' || d.spec.kind === 'edu' || d.spec.kind === 'iommu-testdev');
  if (has('dma') && dmaDevs.length > 0) {
    out.push({
      arb: fc
        .tuple(pick(dmaDevs), fc.constantFrom(...IOVAS, ...GPAS), fc.nat(0xff0), fc.constantFrom(4, 8, 16), fc.option(fc.uint8Array({ minLength: 4, maxLength: 4 })), fc.option(fc.constantFrom(1, 2, 3), { freq: 3 }))
        .map(([d, base, off, len, data, pasid]): Op[] => {
          const iova = base + (off & ~0xf);
          const p = has('pasid-dma') && pasid !== null && d.spec.kind !== 'iommu-testdev' ? pasid : undefined;
          const bytes = data === null ? null : data.some((b) => b !== 0) ? data : Uint8Array.of(1, 2, 3, 4);
          // iommu-testdev only writes; now and then a whole page's worth, which crosses a page where the IOVA is not aligned.
          const dma: Op = d.spec.kind === 'iommu-testdev' ? dmaWrite(d, iova, new Uint8Array(off % 5 === 0 ? 0x1000 : len)) : bytes === null ? { op: 'dma.read', dev: d.spec.id, iova, len, ...(p !== undefined ? { pasid: p } : {}) } : dmaWrite(d, iova, bytes, p);
          // edu's engine and iommu-testdev's registers are driven through BAR0: a driver maps it first.
          return driven(d) && has('config') ? [...bringUp(x, d), dma] : [dma];
        }),
      weight: 6,
    });
  }
  // Deep DMA on purpose: Bus Master on, the IOVA mapped in the device's domain, then DMA;
  // optionally torn down (unmap, detach) and tried again: a stale mapping must fault.
  const dmaOwnerOf = (d: DevicePlan): number => ownerOf(x.t, d.root, 'dma');
  const translated = dmaDevs.filter((d) => d.spec.domain !== undefined && x.t.roots[dmaOwnerOf(d)].iommu === true);
  if (has('dma') && has('dma-map') && has('config') && translated.length > 0) {
    out.push({
      arb: fc.tuple(pick(translated), via, fc.nat(2), fc.constantFrom(...GPAS, 0x1000_0000), fc.constantFrom(...(has('dma-attach') ? (['none', 'none', 'unmap', 'detach'] as const) : (['none', 'none', 'unmap'] as const))), fc.constantFrom('rw', 'rw', 'r')).map(([d, v, i, gpa, teardown, perm]) => {
        const dev = d.spec.id;
        const ops: Op[] = [
          ...(driven(d) ? bringUp(x, d) : [cfg(d, v, H.COMMAND, 2, BigInt(H.CMD_MEMORY | H.CMD_IO | H.CMD_MASTER))]),
          { op: 'dma.map', root: d.root, domain: d.spec.domain!, iova: IOVAS[i], size: 0x1000, gpa, perm: perm as 'r' | 'rw' },
          dmaWrite(d, IOVAS[i], Uint8Array.of(0xa5, i + 1, 0x5a)),
        ];
        if (teardown === 'unmap') ops.push({ op: 'dma.unmap', root: d.root, domain: d.spec.domain!, iova: IOVAS[i], size: 0x1000 });
        if (teardown === 'detach') ops.push({ op: 'dma.detach', dev });
        if (teardown !== 'none') ops.push(d.spec.kind === 'iommu-testdev' ? dmaWrite(d, IOVAS[i], new Uint8Array(4)) : { op: 'dma.read', dev, iova: IOVAS[i], len: 4 });
        return ops;
      }),
      weight: 4,
    });
  }
  // Deep PASID on purpose: PASID Enable, alloc, bind to a domain, map there, tagged DMA;
  // optionally the PASID is freed or unbound and used again: it must fault.
  const pasidReady = withCap('pasid').filter((d) => d.spec.pasidContext !== undefined && (d.spec.kind === 'endpoint') && x.t.roots[dmaOwnerOf(d)].iommu === true);
  if (has('pasid-dma') && has('dma') && has('dma-map') && has('config') && pasidReady.length > 0) {
    out.push({
      arb: fc.tuple(pick(pasidReady), fc.nat(2), fc.nat(2), fc.constantFrom('none', 'free', 'free', 'unbind', 'unmap', 'invalidate'), fc.constantFrom('rw', 'rw', 'r')).map(([d, domain, i, teardown, perm]) => {
        const dev = d.spec.id;
        const pasid = 1;
        const ops: Op[] = [
          cfg(d, 'ecam', H.COMMAND, 2, BigInt(H.CMD_MEMORY | H.CMD_IO | H.CMD_MASTER)),
          cfg(d, 'ecam', x.caps.get(dev)!.pasid!.off + 6, 2, 1n),
          { op: 'pasid.alloc', dev },
          { op: 'pasid.bind', dev, pasid, domain },
          { op: 'dma.map', root: d.root, domain, iova: IOVAS[i], size: 0x1000, gpa: GPAS[i], perm },
          perm === 'r' ? { op: 'dma.write', dev, iova: IOVAS[i], data: Uint8Array.of(1, 2, 3, 4), pasid } : { op: 'dma.read', dev, iova: IOVAS[i], len: 4, pasid },
        ];
        if (teardown === 'invalidate') ops.push({ op: 'pasid.invalidate', dev, pasid });
        if (teardown === 'free') ops.push({ op: 'pasid.free', dev, pasid });
        if (teardown === 'unbind') ops.push({ op: 'pasid.unbind', dev, pasid });
        if (teardown === 'unmap') ops.push({ op: 'dma.unmap', root: d.root, domain, iova: IOVAS[i], size: 0x1000 });
        if (teardown !== 'none') ops.push({ op: 'dma.read', dev, iova: IOVAS[i], len: 4, pasid });
        return ops;
      }),
      weight: 4,
    });
  }
  // VT-d scalable mode on purpose: RID_PASID of a PASID table that the devices of a context share. Bound (by
  // attach or pasid.bind, through either stage), used by DMA, then cleared (its Present bit or all of it),
  // invalidated or not (all of the PASID, or a page), and used again by every device of the context.
  const shared = translated.filter((d) => d.spec.pasidContext !== undefined && x.t.roots[dmaOwnerOf(d)].scalable !== undefined);
  if (has('pasid') && has('dma-map') && has('config') && shared.length > 0) {
    const peersOf = (d: DevicePlan): DevicePlan[] => shared.filter((o) => o.spec.pasidContext === d.spec.pasidContext && ownerOf(x.t, o.root, 'pasid') === ownerOf(x.t, d.root, 'pasid'));
    out.push({
      arb: fc
        .tuple(
          pick(shared),
          fc.nat(2),
          fc.constantFrom('present', 'present', 'zero') as fc.Arbitrary<'present' | 'zero'>,
          fc.constantFrom('pasid', 'page', 'other-page', 'none') as fc.Arbitrary<'pasid' | 'page' | 'other-page' | 'none'>,
          fc.constantFrom('none', 'rebind', 'rebind-first', 'rebind-second', 'detach', 'unmap', 'free-bound') as fc.Arbitrary<string>,
          fc.nat(7),
          fc.boolean(),
        )
        .map(([d, i, clear, inv, after, peerPick, write]) => {
          const dev = d.spec.id;
          const peers = peersOf(d);
          const peer = peers[peerPick % peers.length];
          const iova = IOVAS[i];
          const domain = d.spec.domain!;
          const use = (who: DevicePlan, at = iova): Op[] => [
            ...(driven(who) ? bringUp(x, who) : [cfg(who, 'ecam', H.COMMAND, 2, BigInt(H.CMD_MEMORY | H.CMD_MASTER))]),
            write || who.spec.kind === 'iommu-testdev' ? dmaWrite(who, at, Uint8Array.of(0x5a, i + 1)) : { op: 'dma.read', dev: who.spec.id, iova: at, len: 4 },
          ];
          const ops: Op[] = [{ op: 'dma.map', root: d.root, domain, iova, size: 0x1000, gpa: GPAS[i], perm: 'rw' }, ...use(d), { op: 'pasid.unbind', dev, pasid: 0, clear }];
          if (inv === 'pasid') ops.push({ op: 'pasid.invalidate', dev: peer.spec.id, pasid: 0 });
          if (inv === 'page' || inv === 'other-page') ops.push({ op: 'pasid.invalidate', dev: peer.spec.id, pasid: 0, iova: inv === 'page' ? iova : iova + 0x1000 });
          ops.push(...use(peer));
          if (after.startsWith('rebind')) {
            const stage = after === 'rebind-first' ? 'first' : after === 'rebind-second' ? 'second' : undefined;
            // Another domain where the root has one, else the same one again.
            ops.push({ op: 'pasid.bind', dev: peer.spec.id, pasid: 0, domain: (domain + 1) % Math.max(1, x.t.roots[dmaOwnerOf(d)].domains ?? 1), ...(stage !== undefined ? { stage } : {}) }, ...use(d));
          }
          if (after === 'detach') ops.push({ op: 'dma.attach', dev, domain }, { op: 'dma.detach', dev: peer.spec.id }, ...use(d));
          // A PASID of the context bound, then freed while bound: its entry goes as an unbind's would.
          if (after === 'free-bound') ops.push({ op: 'pasid.alloc', dev }, { op: 'pasid.bind', dev: peer.spec.id, pasid: 1, domain }, { op: 'pasid.free', dev, pasid: 1, clear }, ...use(d));
          if (after === 'unmap') ops.push({ op: 'dma.attach', dev, domain }, ...use(peer), { op: 'dma.unmap', root: d.root, domain, iova, size: 0x1000 }, ...use(d));
          return ops;
        }),
      weight: 5,
    });
  }
  const ctxDevs = devs.filter((d) => d.spec.pasidContext !== undefined);
  if (has('pasid') && ctxDevs.length > 0) {
    out.push({
      arb: fc.tuple(pick(ctxDevs), fc.constantFrom('alloc', 'alloc', 'bind', 'bind', 'free', 'unbind', 'invalidate'), fc.constantFrom(1, 1, 2, 3), fc.nat(2)).map(([d, k, pasid, domain]): Op[] => {
        const dev = d.spec.id;
        switch (k) {
          case 'alloc':
            return [{ op: 'pasid.alloc', dev }];
          case 'bind':
            return [{ op: 'pasid.bind', dev, pasid, domain }];
          case 'free':
            return [{ op: 'pasid.free', dev, pasid }];
          case 'unbind':
            return [{ op: 'pasid.unbind', dev, pasid }];
          default:
            return [{ op: 'pasid.invalidate', dev, pasid }];
        }
      }),
      weight: 5,
    });
  }
  return out;
}
