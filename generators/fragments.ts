/**
 * Fragments: short operation sequences with a purpose (program a bridge's
 * bus numbers, place a BAR, enable decode, touch a BAR, map and use DMA,
 * bind a PASID, program MSI). Each is a fast-check arbitrary of ops, built
 * from the operation catalog's own fields, so shrinking works on them.
 */
import fc from 'fast-check';
import type { Op } from '../harness/ops/catalog.ts';
import type { Via } from '../harness/ops/fields.ts';
import { createFunction } from '../harness/model/personalities/index.ts';
import type { Caps } from '../harness/model/capabilities.ts';
import { PCIE } from '../harness/model/capabilities.ts';
import * as H from '../harness/model/header.ts';
import { ownerOf, type Topology } from '../harness/topology/types.ts';
import type { GenConstraints } from './constraints.ts';
import type { BarPlan, DevicePlan, Plan } from './plan.ts';

export interface FragmentContext {
  t: Topology;
  plan: Plan;
  c: GenConstraints;
  devices: DevicePlan[];
  caps: Map<string, Caps>;
}

export const IOVAS = [0x10000, 0x20000, 0x30000];
export const GPAS = [0x10000, 0x20000, 0x40000];
export const MSI_ADDR = 0xfee00000;

export function fragmentContext(t: Topology, plan: Plan, c: GenConstraints, devices: DevicePlan[]): FragmentContext {
  const caps = new Map<string, Caps>();
  for (const d of devices) caps.set(d.spec.id, createFunction(d.spec, d.root, 0, false).caps);
  return { t, plan, c, devices, caps };
}

const viaArb = (x: FragmentContext): fc.Arbitrary<Via> => fc.constantFrom(...(x.c.vias.length > 0 ? x.c.vias : (['ecam'] as Via[])));

/** A config op addressed to a device's planned BDF, from its own root. Writes above 0xff go through ECAM. */
export function cfg(d: DevicePlan, via: Via, reg: number, size: number, value?: bigint): Op {
  const v: Via = reg > 0xff ? 'ecam' : via;
  return value === undefined ? { op: 'cfg.read', root: d.root, via: v, bdf: d.bdf, reg, size } : { op: 'cfg.write', root: d.root, via: v, bdf: d.bdf, reg, size, value };
}

const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);

/** Where a fragment puts or finds a BAR. */
export type Spot = 'a' | 'b' | 'end' | number;

export function spotAddress(x: FragmentContext, bar: BarPlan, spot: Spot): number {
  if (spot === 'a') return bar.a;
  if (spot === 'b') return bar.b;
  if (spot === 'end') return bar.end;
  // Another BAR's packed address (of the same kind), aligned for this one: collision bait.
  const same = x.plan.bars.filter((o) => (o.kind === 'io') === (bar.kind === 'io'));
  const other = same[spot % same.length];
  return Math.floor(other.a / bar.size) * bar.size;
}

const spotArb: fc.Arbitrary<Spot> = fc.oneof({ arbitrary: fc.constantFrom<Spot>('a', 'a', 'b', 'end'), weight: 4 }, { arbitrary: fc.nat(31), weight: 1 });

const devOf = (x: FragmentContext, id: string): DevicePlan => x.plan.devices.get(id)!;

/** Writes a BAR's address: the low dword, then the high dword of a 64-bit BAR. */
export function placeOps(x: FragmentContext, bar: BarPlan, addr: number, via: Via): Op[] {
  const d = devOf(x, bar.dev);
  const reg = bar.region === 6 ? (d.spec.kind === 'bridge' || d.spec.kind === 'root-port' ? H.ROM_TYPE1 : H.ROM_TYPE0) : H.BAR0 + 4 * bar.region;
  const lo = BigInt(addr % 2 ** 32) | (bar.region === 6 ? 1n : 0n);
  const ops = [cfg(d, via, reg, 4, lo)];
  if (bar.kind === 'mem64') ops.push(cfg(d, via, reg + 4, 4, BigInt(Math.floor(addr / 2 ** 32))));
  return ops;
}

export function fragments(x: FragmentContext): { arb: fc.Arbitrary<Op[]>; weight: number }[] {
  const out: { arb: fc.Arbitrary<Op[]>; weight: number }[] = [];
  const has = (cap: GenConstraints['ops'][number]): boolean => x.c.ops.includes(cap);
  const bridges = [...x.plan.buses.keys()];
  const bars = x.plan.bars;
  const devs = x.devices;
  const via = viaArb(x);
  const withCap = (k: keyof Caps): DevicePlan[] => devs.filter((d) => x.caps.get(d.spec.id)?.[k] !== undefined);

  if (has('config')) {
    if (bridges.length > 0) {
      // PCI-to-PCI Bridge 1.2 §3.2.5.3–.5: primary, secondary, subordinate in one dword.
      out.push({
        arb: fc.tuple(pick(bridges), via).map(([b, v]) => {
          const [p, s, u] = x.plan.buses.get(b)!;
          return [cfg(devOf(x, b), v, H.PRIMARY_BUS, 4, BigInt(p | (s << 8) | (u << 16)))];
        }),
        weight: 4,
      });
      out.push({
        arb: fc
          .tuple(pick(bridges), via, fc.integer({ min: 0, max: 3 }), fc.record({ mem: fc.boolean(), pref: fc.boolean(), io: fc.boolean() }))
          .map(([b, v, short, which]) => windowOps(x, b, v, short, which)),
        weight: 4,
      });
    }
    if (bars.length > 0) {
      out.push({
        arb: fc.tuple(pick(bars), via).map(([bar, v]) => {
          const d = devOf(x, bar.dev);
          const reg = bar.region === 6 ? H.ROM_TYPE0 : H.BAR0 + 4 * bar.region;
          const ops = [cfg(d, v, reg, 4, 0xffffffffn), cfg(d, v, reg, 4)];
          if (bar.kind === 'mem64') ops.push(cfg(d, v, reg + 4, 4, 0xffffffffn), cfg(d, v, reg + 4, 4));
          return ops;
        }),
        weight: 2,
      });
      out.push({ arb: fc.tuple(pick(bars), spotArb, via).map(([bar, s, v]) => placeOps(x, bar, spotAddress(x, bar, s), v)), weight: 8 });
    }
    out.push({
      arb: fc
        .tuple(pick(devs), via, fc.oneof({ arbitrary: fc.constant(0x7), weight: 5 }, { arbitrary: fc.nat(0x7), weight: 2 }, { arbitrary: fc.constant(0x407), weight: 1 }))
        .map(([d, v, bits]) => [cfg(d, v, H.COMMAND, 2, BigInt(bits))]),
      weight: 8,
    });
    out.push({
      arb: fc
        .tuple(pick(devs), via, fc.constantFrom(0x00, 0x04, 0x06, 0x08, 0x0c, 0x0e, 0x10, 0x14, 0x2c, 0x34, 0x3c, 0x40, 0x44, 0x100), fc.constantFrom(1, 2, 4), fc.option(fc.constantFrom(0n, 0xffffffffn, 0x5an, 0x12345678n)))
        .map(([d, v, reg, size, val]) => {
          const r = reg & ~(size - 1);
          return [cfg(d, v, r, size, val === null ? undefined : val & ((1n << BigInt(8 * size)) - 1n))];
        }),
      weight: 3,
    });
    // Probes: vendor ID of planned and alias BDFs, through every mechanism.
    out.push({
      arb: fc
        .tuple(fc.nat(x.t.roots.length - 1), pick(x.plan.busesOfInterest), fc.oneof(fc.constantFrom(0, 1, 2, 3), fc.nat(31)), fc.constantFrom(0, 0, 1), via)
        .map(([r, bus, dev, fn, v]): Op[] => [{ op: 'cfg.read', root: r, via: v, bdf: (bus << 8) | (dev << 3) | fn, reg: 0, size: 4 }]),
      weight: 4,
    });
    const msi = withCap('msi');
    if (msi.length > 0)
      out.push({
        arb: fc.tuple(pick(msi), via, fc.nat(0xff), fc.constantFrom(1n, 0n, 0x11n)).map(([d, v, data, ctl]) => {
          const m = x.caps.get(d.spec.id)!.msi!;
          const ops = [cfg(d, v, m.off + 4, 4, BigInt(MSI_ADDR))];
          if (m.is64) ops.push(cfg(d, v, m.off + 8, 4, 0n));
          ops.push(cfg(d, v, m.data, 2, BigInt(0x4000 | data)), cfg(d, v, m.off + 2, 2, ctl));
          return ops;
        }),
        weight: 3,
      });
    const pasid = withCap('pasid');
    if (pasid.length > 0) out.push({ arb: fc.tuple(pick(pasid), fc.constantFrom(1n, 1n, 0n)).map(([d, on]) => [cfg(d, 'ecam', x.caps.get(d.spec.id)!.pasid!.off + 6, 2, on)]), weight: 3 });
    const flr = devs.filter((d) => x.caps.get(d.spec.id)?.pcie?.flr === true);
    if (flr.length > 0) out.push({ arb: pick(flr).map((d) => [cfg(d, 'ecam', x.caps.get(d.spec.id)!.pcie!.off + PCIE.DEVCTL, 2, 0x8000n)]), weight: 1 });
  }

  if ((has('mmio') || has('pio')) && bars.length > 0) {
    const usable = bars.filter((b) => (b.kind === 'io' ? has('pio') : has('mmio')));
    if (usable.length > 0)
      out.push({
        arb: fc
          .tuple(pick(usable), fc.constantFrom<Spot>('a', 'a', 'a', 'b', 'end'), fc.constantFrom(0x0, 0x4, 0x8, 0x10, 0x14, 0x20, 0x24, 0x60, 0x64, 0x80, 0x98, 0x83, 0x84, 0x800, 0x801), fc.constantFrom(1, 2, 4, 4, 8), fc.option(fc.constantFrom(0n, 1n, 5n, 0xfan, 0xcafef00dn), { freq: 2 }))
          .map(([bar, s, off0, size0, val]): Op[] => {
            const size = bar.kind === 'io' ? Math.min(size0, 4) : size0;
            const off = Math.min(off0, bar.size - size) & ~(size - 1);
            const addr = spotAddress(x, bar, s) + off;
            const value = val === null ? undefined : val & ((1n << BigInt(8 * size)) - 1n);
            if (bar.kind === 'io') return value === undefined ? [{ op: 'pio.read', root: bar.root, port: addr & 0xffff, size }] : [{ op: 'pio.write', root: bar.root, port: addr & 0xffff, size, value }];
            return value === undefined ? [{ op: 'mmio.read', root: bar.root, addr, size }] : [{ op: 'mmio.write', root: bar.root, addr, size, value }];
          }),
        weight: 10,
      });
    // Interrupt triggers: the endpoint doorbell, edu's raise register.
    const ringers = bars.filter((b) => b.kind !== 'io' && b.region === 0 && ['endpoint', 'edu'].includes(devOf(x, b.dev).spec.kind));
    if (ringers.length > 0 && has('mmio'))
      out.push({
        arb: fc.tuple(pick(ringers), fc.nat(3)).map(([bar, vec]): Op[] => {
          const edu = devOf(x, bar.dev).spec.kind === 'edu';
          return [{ op: 'mmio.write', root: bar.root, addr: bar.a + (edu ? 0x60 : 0x4), size: 4, value: edu ? 1n : BigInt(vec) }];
        }),
        weight: 4,
      });
    const msix = withCap('msix');
    if (msix.length > 0 && has('config') && has('mmio'))
      out.push({
        arb: fc.tuple(pick(msix), via, fc.boolean()).map(([d, v, maskAll]) => {
          const mx = x.caps.get(d.spec.id)!.msix!;
          const bar = bars.find((b) => b.dev === d.spec.id && b.region === mx.bar)!;
          const t = bar.a + mx.table;
          return [
            cfg(d, v, mx.off + 2, 2, maskAll ? 0xc000n : 0x8000n),
            { op: 'mmio.write', root: d.root, addr: t, size: 4, value: BigInt(MSI_ADDR) },
            { op: 'mmio.write', root: d.root, addr: t + 8, size: 4, value: 0x4041n },
            { op: 'mmio.write', root: d.root, addr: t + 12, size: 4, value: 0n },
          ] as Op[];
        }),
        weight: 2,
      });
  }

  if (has('mmio')) {
    // CPU access to RAM at the addresses DMA uses, so data written through one root can be looked for in another.
    out.push({
      arb: fc.tuple(fc.nat(x.t.roots.length - 1), pick(GPAS), fc.nat(0xfff), fc.bigInt({ min: 1n, max: 0xffffffffn }), fc.boolean()).map(([r, g, off, value, write]): Op[] => {
        const addr = g + (off & ~3);
        return write ? [{ op: 'mmio.write', root: r, addr, size: 4, value }] : [{ op: 'mmio.read', root: r, addr, size: 4 }];
      }),
      weight: 4,
    });
  }

  const iommuRoots = x.t.roots.map((_, r) => r).filter((r) => x.t.roots[ownerOf(x.t, r, 'dma')].iommu === true);
  if (has('dma-map') && iommuRoots.length > 0) {
    out.push({
      arb: fc.tuple(pick(iommuRoots), fc.nat(2), fc.nat(2), fc.nat(2), fc.constantFrom(0x1000, 0x2000), fc.constantFrom('r', 'w', 'rw', 'rw')).map(([r, dom, i, g, size, perm]): Op[] => [
        { op: 'dma.map', root: r, domain: dom, iova: IOVAS[i], size, gpa: GPAS[g], perm: perm as 'r' | 'w' | 'rw' },
      ]),
      weight: 5,
    });
    out.push({ arb: fc.tuple(pick(iommuRoots), fc.nat(2), fc.nat(2), fc.constantFrom(0x1000, 0x2000)).map(([r, dom, i, size]): Op[] => [{ op: 'dma.unmap', root: r, domain: dom, iova: IOVAS[i], size }]), weight: 2 });
    out.push({ arb: fc.tuple(pick(devs), fc.nat(2)).map(([d, dom]): Op[] => [{ op: 'dma.attach', dev: d.spec.id, domain: dom }]), weight: 1 });
    out.push({ arb: pick(devs).map((d): Op[] => [{ op: 'dma.detach', dev: d.spec.id }]), weight: 1 });
  }
  const dmaDevs = devs.filter((d) => d.spec.kind === 'endpoint' || d.spec.kind === 'edu');
  if (has('dma') && dmaDevs.length > 0) {
    out.push({
      arb: fc
        .tuple(pick(dmaDevs), fc.constantFrom(...IOVAS, ...GPAS), fc.nat(0xff0), fc.constantFrom(4, 8, 16), fc.option(fc.uint8Array({ minLength: 4, maxLength: 4 })), fc.option(fc.constantFrom(1, 2, 3), { freq: 3 }))
        .map(([d, base, off, len, data, pasid]): Op[] => {
          const iova = base + (off & ~0xf);
          const p = has('pasid') && pasid !== null ? { pasid } : {};
          const bytes = data === null ? null : data.some((b) => b !== 0) ? data : Uint8Array.of(1, 2, 3, 4);
          return bytes === null ? [{ op: 'dma.read', dev: d.spec.id, iova, len, ...p }] : [{ op: 'dma.write', dev: d.spec.id, iova, data: bytes, ...p }];
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
      arb: fc.tuple(pick(translated), via, fc.nat(2), fc.nat(2), fc.constantFrom('none', 'none', 'unmap', 'detach')).map(([d, v, i, g, teardown]) => {
        const dev = d.spec.id;
        const ops: Op[] = [
          cfg(d, v, H.COMMAND, 2, BigInt(H.CMD_MEMORY | H.CMD_IO | H.CMD_MASTER)),
          { op: 'dma.map', root: d.root, domain: d.spec.domain!, iova: IOVAS[i], size: 0x1000, gpa: GPAS[g], perm: 'rw' },
          { op: 'dma.write', dev, iova: IOVAS[i], data: Uint8Array.of(0xa5, i + 1, g + 1, 0x5a) },
        ];
        if (teardown === 'unmap') ops.push({ op: 'dma.unmap', root: d.root, domain: d.spec.domain!, iova: IOVAS[i], size: 0x1000 });
        if (teardown === 'detach') ops.push({ op: 'dma.detach', dev });
        if (teardown !== 'none') ops.push({ op: 'dma.read', dev, iova: IOVAS[i], len: 4 });
        return ops;
      }),
      weight: 4,
    });
  }
  // Deep PASID on purpose: PASID Enable, alloc, bind to a domain, map there, tagged DMA;
  // optionally the PASID is freed or unbound and used again: it must fault.
  const pasidReady = withCap('pasid').filter((d) => d.spec.pasidContext !== undefined && (d.spec.kind === 'endpoint') && x.t.roots[dmaOwnerOf(d)].iommu === true);
  if (has('pasid') && has('dma') && has('dma-map') && has('config') && pasidReady.length > 0) {
    out.push({
      arb: fc.tuple(pick(pasidReady), fc.nat(2), fc.nat(2), fc.constantFrom('none', 'free', 'free', 'unbind', 'unmap')).map(([d, domain, i, teardown]) => {
        const dev = d.spec.id;
        const pasid = 1;
        const ops: Op[] = [
          cfg(d, 'ecam', H.COMMAND, 2, BigInt(H.CMD_MEMORY | H.CMD_IO | H.CMD_MASTER)),
          cfg(d, 'ecam', x.caps.get(dev)!.pasid!.off + 6, 2, 1n),
          { op: 'pasid.alloc', dev },
          { op: 'pasid.bind', dev, pasid, domain },
          { op: 'dma.map', root: d.root, domain, iova: IOVAS[i], size: 0x1000, gpa: GPAS[i], perm: 'rw' },
          { op: 'dma.read', dev, iova: IOVAS[i], len: 4, pasid },
        ];
        if (teardown === 'free') ops.push({ op: 'pasid.free', dev, pasid });
        if (teardown === 'unbind') ops.push({ op: 'pasid.unbind', dev, pasid });
        if (teardown === 'unmap') ops.push({ op: 'dma.unmap', root: d.root, domain, iova: IOVAS[i], size: 0x1000 });
        if (teardown !== 'none') ops.push({ op: 'dma.read', dev, iova: IOVAS[i], len: 4, pasid });
        return ops;
      }),
      weight: 4,
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
  const emulators = x.t.emulators ?? [];
  if (has('emulator') && emulators.length > 0) {
    out.push({
      arb: fc.tuple(pick(devs), pick(emulators), fc.boolean(), fc.boolean()).map(([d, e, neighbour, unmap]): Op[] => [
        { op: unmap ? 'emu.unmap-bdf' : 'emu.map-bdf', root: d.root, emulator: e, bdf: neighbour ? d.bdf ^ 1 : d.bdf },
      ]),
      weight: 3,
    });
    if (bars.length > 0)
      out.push({
        arb: fc.tuple(pick(bars), pick(emulators), fc.boolean()).map(([b, e, unmap]): Op[] => [
          { op: unmap ? 'emu.unmap-range' : 'emu.map-range', root: b.root, emulator: e, space: b.kind === 'io' ? 'pio' : 'mmio', start: b.kind === 'io' ? b.a & 0xffff : b.a, size: b.size },
        ]),
        weight: 2,
      });
  }
  if (has('hotplug')) out.push({ arb: fc.tuple(pick(devs), fc.boolean()).map(([d, plug]): Op[] => [{ op: plug ? 'dev.plug' : 'dev.unplug', dev: d.spec.id }]), weight: 2 });
  if (has('reset')) {
    out.push({ arb: pick(devs).map((d): Op[] => [{ op: 'dev.reset', dev: d.spec.id }]), weight: 1 });
    out.push({ arb: fc.nat(x.t.roots.length - 1).map((r): Op[] => [{ op: 'root.reset', root: r }]), weight: 1 });
  }
  if (has('clock') && devs.some((d) => d.spec.kind === 'edu')) out.push({ arb: fc.constantFrom(100_000_000, 1_000_000).map((ns): Op[] => [{ op: 'clock.step', ns }]), weight: 1 });
  return out;
}

/**
 * Bridge windows (PCI-to-PCI Bridge 1.2 §3.2.5.6–.10) covering the planned
 * placements of the bridge's children, then decode and Bus Master on.
 * `short` > 0 makes the memory window that many MiB too small: a window
 * that does not fit.
 */
export function windowOps(x: FragmentContext, bridge: string, via: Via, short: number, which: { mem: boolean; pref: boolean; io: boolean }): Op[] {
  const d = x.plan.devices.get(bridge)!;
  const w = x.plan.windows.get(bridge)!;
  const memLimit = short > 0 && w.mem[1] - short * 0x100000 >= w.mem[0] ? w.mem[1] - short * 0x100000 : w.mem[1];
  const mem = (((w.mem[0] >>> 16) & 0xfff0) | ((((memLimit - 0xfffff) >>> 16) & 0xfff0) << 16)) >>> 0;
  const prefLo = ((Math.floor(w.pref[0] / 0x10000) & 0xfff0) | 1) | (((Math.floor((w.pref[1] - 0xfffff) / 0x10000) & 0xfff0) | 1) << 16);
  const io = ((w.io[0] >> 8) & 0xf0) | 1 | ((((w.io[1] >> 8) & 0xf0) | 1) << 8);
  const ops: Op[] = [];
  if (which.mem) ops.push(cfg(d, via, H.MEM_BASE, 4, BigInt(mem)));
  if (which.pref)
    ops.push(
      cfg(d, via, H.PREF_BASE, 4, BigInt(prefLo >>> 0)),
      cfg(d, via, H.PREF_BASE_UPPER, 4, BigInt(Math.floor(w.pref[0] / 2 ** 32))),
      cfg(d, via, H.PREF_LIMIT_UPPER, 4, BigInt(Math.floor(w.pref[1] / 2 ** 32))),
    );
  if (which.io) ops.push(cfg(d, via, H.IO_BASE, 2, BigInt(io)));
  ops.push(cfg(d, via, H.COMMAND, 2, BigInt(H.CMD_MEMORY | H.CMD_IO | H.CMD_MASTER)));
  return ops;
}
