/**
 * Config-space fragments: bus numbers and windows of bridges, BAR sizing and
 * placement, command bits, random registers, probes of planned and alias
 * BDFs, MSI programming, PASID Enable, FLR.
 */
import fc from 'fast-check';
import type { Op } from '../../harness/ops/catalog.ts';
import type { Via } from '../../harness/ops/fields.ts';
import { PCIE } from '../../harness/model/capabilities.ts';
import * as H from '../../harness/model/header.ts';
import { cfg, msiAddress, devOf, pick, placeOps, scope, spotAddress, spotArb, type FragmentContext, type Weighted } from './context.ts';
import type { DevicePlan } from '../plan.ts';

export function configFragments(x: FragmentContext): Weighted[] {
  const out: Weighted[] = [];
  const { has, via, withCap } = scope(x);
  const bridges = [...x.plan.buses.keys()];
  const bars = x.plan.bars;
  const devs = x.devices;
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
      // A mapping moved, then accessed at both places: where it went, and where it must no longer answer.
      const movable = bars.filter((b) => (b.kind === 'io' ? has('pio') : has('mmio')) && b.region !== 6);
      if (movable.length > 0)
        out.push({
          arb: fc.tuple(pick(movable), via).map(([bar, v]) => {
            const d = devOf(x, bar.dev);
            const at = (addr: number): Op => (bar.kind === 'io' ? { op: 'pio.read', root: bar.root, port: addr & 0xffff, size: 4 } : { op: 'mmio.read', root: bar.root, addr, size: 4 });
            const on = cfg(d, v, H.COMMAND, 2, BigInt(bar.kind === 'io' ? H.CMD_IO | H.CMD_MASTER : H.CMD_MEMORY | H.CMD_MASTER));
            return [...placeOps(x, bar, bar.a, v), on, at(bar.a), ...placeOps(x, bar, bar.b, v), at(bar.a), at(bar.b)];
          }),
          weight: 3,
        });
    }
    out.push({
      arb: fc
        .tuple(pick(devs), via, fc.oneof({ arbitrary: fc.constant(0x7), weight: 5 }, { arbitrary: fc.nat(0x7), weight: 2 }, { arbitrary: fc.constant(0x407), weight: 1 }), fc.boolean())
        // Probe what was changed: now and then the register is read back, so the state is observed, not only passed through.
        .map(([d, v, bits, probe]) => [cfg(d, v, H.COMMAND, 2, BigInt(bits)), ...(probe ? [cfg(d, v, H.COMMAND, 2)] : [])]),
      weight: 8,
    });
    out.push({
      arb: fc
        .tuple(pick(devs), via, fc.constantFrom(0x00, 0x04, 0x06, 0x08, 0x0c, 0x0e, 0x10, 0x14, 0x2c, 0x34, 0x3c, 0x40, 0x44, 0x100), fc.constantFrom(1, 2, 4), fc.option(fc.constantFrom(0n, 0xffffffffn, 0x5an, 0x12345678n)))
        .map(([d, v, reg, size, val]) => {
          const r = reg & ~(size - 1);
          if (val === null) return [cfg(d, v, r, size)];
          // A write is read back: what the write masks kept is observed.
          return [cfg(d, v, r, size, val & ((1n << BigInt(8 * size)) - 1n)), cfg(d, v, r, size)];
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
          const ops = [cfg(d, v, m.off + 4, 4, BigInt(msiAddress(x, data)))];
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

/** The mechanism chains configure devices through: the target's first. */
export const chainVia = (x: FragmentContext): Via => x.c.vias[0] ?? 'ecam';

/**
 * Makes a device reachable as firmware would: the bus numbers and windows
 * of every bridge above it (outermost first), its BARs at their planned
 * addresses, then decode and Bus Master on.
 */
export function bringUp(x: FragmentContext, d: DevicePlan): Op[] {
  const via = chainVia(x);
  const ops: Op[] = [];
  const chain: DevicePlan[] = [];
  for (let p = d.parent; p !== null; p = x.plan.devices.get(p)!.parent) chain.unshift(x.plan.devices.get(p)!);
  for (const b of chain) {
    const [pri, sec, sub] = x.plan.buses.get(b.spec.id)!;
    ops.push(cfg(b, via, H.PRIMARY_BUS, 4, BigInt(pri | (sec << 8) | (sub << 16))), ...windowOps(x, b.spec.id, via, 0, { mem: true, pref: true, io: true }));
  }
  for (const b of x.plan.bars) if (b.dev === d.spec.id) ops.push(...placeOps(x, b, b.a, via));
  ops.push(cfg(d, via, H.COMMAND, 2, BigInt(H.CMD_IO | H.CMD_MEMORY | H.CMD_MASTER)));
  return ops;
}
