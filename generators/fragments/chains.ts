/**
 * Chains: fragments that walk a device all the way into a deep state on
 * purpose — BAR placed, decode and Bus Master on, then the feature itself
 * (an interrupt delivered, edu's DMA engine run, a pci-testdev count, a
 * BAR at its bridge's window edge, an emulator-hosted device reached, a
 * hot-plug with its slot interrupt, a lifecycle op repeated dozens of
 * times). Shrinking drops the links not needed.
 */
import fc from 'fast-check';
import type { Op } from '../../harness/ops/catalog.ts';
import * as H from '../../harness/model/header.ts';
import { PCIE, SLTCTL_HPIE, SLTCTL_PDCE } from '../../harness/model/capabilities.ts';
import { EDU_DMA_BASE } from '../../harness/model/personalities/edu.ts';
import { TESTDEV_TESTS } from '../../harness/model/personalities/pci-testdev.ts';
import type { BarPlan, DevicePlan } from '../plan.ts';
import { GPAS, cfg, msiAddress, pick, placeOps, scope, type FragmentContext, type Weighted } from './context.ts';
import { bringUp, chainVia, windowOps } from './config.ts';
import { hotplugReach } from '../reach.ts';

const ON = BigInt(H.CMD_IO | H.CMD_MEMORY | H.CMD_MASTER);

const barOf = (x: FragmentContext, d: DevicePlan, region: number): BarPlan | undefined => x.plan.bars.find((b) => b.dev === d.spec.id && b.region === region);

function write(bar: BarPlan, off: number, size: number, value: bigint): Op {
  return bar.kind === 'io' ? { op: 'pio.write', root: bar.root, port: (bar.a + off) & 0xffff, size: Math.min(size, 4), value } : { op: 'mmio.write', root: bar.root, addr: bar.a + off, size, value };
}

function read(bar: BarPlan, off: number, size: number): Op {
  return bar.kind === 'io' ? { op: 'pio.read', root: bar.root, port: (bar.a + off) & 0xffff, size: Math.min(size, 4) } : { op: 'mmio.read', root: bar.root, addr: bar.a + off, size };
}

export function chainFragments(x: FragmentContext): Weighted[] {
  const out: Weighted[] = [];
  const { has } = scope(x);
  if (!has('config') || !has('mmio')) return out;
  const devs = x.devices;
  const caps = (d: DevicePlan) => x.caps.get(d.spec.id)!;

  // Interrupts end to end: MSI, MSI-X or INTx, with masking, pending and unmasking.
  const ringable = devs.filter((d) => d.spec.kind === 'endpoint' && barOf(x, d, 0) !== undefined && barOf(x, d, 0)!.kind !== 'io');
  if (ringable.length > 0)
    out.push({
      arb: fc.tuple(pick(ringable), fc.constantFrom('msi', 'msix', 'intx'), fc.boolean(), fc.nat(3)).map(([d, mode, masked, vec]) => {
        const bar0 = barOf(x, d, 0)!;
        const ops = bringUp(x, d);
        const c = caps(d);
        if (mode === 'msi' && c.msi !== undefined) {
          const m = c.msi;
          ops.push(cfg(d, 'ecam', m.off + 4, 4, BigInt(msiAddress(x, vec))), cfg(d, 'ecam', m.data, 2, BigInt(0x4020 + vec)), cfg(d, 'ecam', m.off + 2, 2, 1n | (BigInt(m.mmc) << 4n)));
          if (masked && m.pvm) ops.push(cfg(d, 'ecam', m.mask, 4, 0xffffffffn));
          ops.push(write(bar0, 4, 4, BigInt(vec)));
          if (masked && m.pvm) ops.push(cfg(d, 'ecam', m.mask, 4, 0n));
        } else if (mode === 'msix' && c.msix !== undefined) {
          const mx = c.msix;
          const tb = barOf(x, d, mx.bar)!;
          ops.push(cfg(d, 'ecam', mx.off + 2, 2, masked ? 0xc000n : 0x8000n), write(tb, mx.table, 4, BigInt(msiAddress(x, vec))), write(tb, mx.table + 8, 4, BigInt(0x4041 + vec)), write(tb, mx.table + 12, 4, 0n));
          ops.push(write(bar0, 4, 4, 0n));
          if (masked) ops.push(cfg(d, 'ecam', mx.off + 2, 2, 0x8000n));
        } else {
          if (masked) ops.push(cfg(d, 'ecam', H.COMMAND, 2, ON | BigInt(H.CMD_INTX_DISABLE)));
          ops.push(write(bar0, 4, 4, BigInt(vec)), write(bar0, 8, 4, 1n));
        }
        return ops;
      }),
      weight: 4,
    });

  // edu's interrupts end to end: raise and acknowledge, as INTx (maybe disabled) or as MSI, or on a factorial.
  const edus = devs.filter((d) => d.spec.kind === 'edu');
  if (edus.length > 0)
    out.push({
      arb: fc.tuple(pick(edus), fc.constantFrom('intx', 'msi', 'factorial'), fc.boolean(), fc.nat(15), fc.constantFrom(1n, 0x100n, 0x80000001n)).map(([d, mode, twist, k, bits]) => {
        const bar = barOf(x, d, 0)!;
        const ops = bringUp(x, d);
        const m = caps(d).msi;
        if (mode === 'msi' && m !== undefined) ops.push(cfg(d, 'ecam', m.off + 4, 4, BigInt(msiAddress(x, k))), cfg(d, 'ecam', m.data, 2, BigInt(0x4020 + k)), cfg(d, 'ecam', m.off + 2, 2, 1n));
        if (mode === 'intx' && twist) ops.push(cfg(d, 'ecam', H.COMMAND, 2, ON | BigInt(H.CMD_INTX_DISABLE)));
        if (mode === 'factorial') ops.push(write(bar, 0x20, 4, 0x80n), write(bar, 0x08, 4, BigInt(5 + k)), read(bar, 0x24, 4));
        else ops.push(write(bar, 0x60, 4, bits), read(bar, 0x24, 4));
        // Acknowledge (all, or not the bit that was raised), then let INTx through again.
        ops.push(write(bar, 0x64, 4, twist ? 0xffffffffn : 2n));
        if (mode === 'intx' && twist) ops.push(cfg(d, 'ecam', H.COMMAND, 2, ON));
        return ops;
      }),
      weight: 3,
    });

  // edu's DMA engine: RAM to the buffer or back, 100 ms of virtual time, sometimes out of range.
  if (edus.length > 0 && has('clock'))
    out.push({
      arb: fc.tuple(pick(edus), pick(GPAS), fc.boolean(), fc.boolean(), fc.constantFrom(4, 0x20, 0x1000, 0x1001)).map(([d, gpa, toRam, irq, cnt]) => {
        const bar = barOf(x, d, 0)!;
        const buf = BigInt(EDU_DMA_BASE);
        return [
          ...bringUp(x, d),
          { op: 'mmio.write', root: d.root, addr: gpa, size: 4, value: 0x600df00dn },
          write(bar, 0x80, 8, toRam ? buf : BigInt(gpa)),
          write(bar, 0x88, 8, toRam ? BigInt(gpa + 0x100) : buf),
          write(bar, 0x90, 8, BigInt(cnt)),
          write(bar, 0x98, 8, 1n | (toRam ? 2n : 0n) | (irq ? 4n : 0n)),
          { op: 'clock.step', ns: 100_000_000 },
          read(bar, 0x98, 8),
        ] as Op[];
      }),
      weight: 3,
    });

  // pci-testdev: select a test through either BAR, then write on its offset.
  const tds = devs.filter((d) => d.spec.kind === 'pci-testdev');
  if (tds.length > 0)
    out.push({
      arb: fc.tuple(pick(tds), fc.nat(5), fc.constantFrom(1, 2), fc.constantFrom(0xfan, 0xcen, 0x11n)).map(([d, test, size, data]) => {
        const t = TESTDEV_TESTS[test];
        const sel = barOf(x, d, t.io ? 1 : 0)!;
        const at = t.offset & ~(size - 1);
        const value = size === 1 ? data : data << BigInt(8 * (t.offset - at));
        return [...bringUp(x, d), write(sel, 0, 1, BigInt(test % 3)), write(sel, at, size, value), read(sel, 12, 4)];
      }),
      weight: 2,
    });

  // iommu-testdev by hand: IOVA, length, read-back address (where it wrote, or not), ATTRS now and then
  // inconsistent, the doorbell armed or not, the trigger, RESULT, then RAM where it wrote.
  const itds = devs.filter((d) => d.spec.kind === 'iommu-testdev');
  if (itds.length > 0)
    out.push({
      arb: fc.tuple(pick(itds), pick(GPAS), fc.constantFrom(4, 0x10, 0xffc, 0x1000, 0x1010, 0), fc.constantFrom('same', 'zero', 'other'), fc.constantFrom('arm', 'arm', 'arm', 'none', 'attrs')).map(([d, gpa, len, back, mode]) => {
        const bar = barOf(x, d, 0)!;
        const readBack = back === 'same' ? gpa : back === 'zero' ? 0 : gpa + 0x1000;
        return [
          ...bringUp(x, d),
          write(bar, 0x04, 4, BigInt(gpa)),
          write(bar, 0x08, 4, 0n),
          write(bar, 0x0c, 4, BigInt(len)),
          write(bar, 0x1c, 4, BigInt(readBack)),
          write(bar, 0x20, 4, 0n),
          // Secure with the non-secure space, marked valid: the device refuses to run.
          ...(mode === 'attrs' ? [write(bar, 0x18, 4, 0xbn)] : []),
          ...(mode !== 'none' ? [write(bar, 0x14, 4, 1n)] : []),
          read(bar, 0x00, 4),
          read(bar, 0x10, 4),
          { op: 'mmio.read', root: d.root, addr: gpa, size: 4 },
        ] as Op[];
      }),
      weight: 3,
    });

  // A bridge with its bus numbers and a window, a child BAR at the window's edge, and an access there.
  const bridges = [...x.plan.buses.keys()].map((id) => x.plan.devices.get(id)!);
  const behind = x.plan.bars.filter((b) => b.kind !== 'rom' && x.plan.devices.get(b.dev)!.parent !== null);
  if (behind.length > 0)
    out.push({
      arb: fc.tuple(pick(behind), fc.constantFrom(0, 0, 1, 2), fc.constantFrom('a', 'end')).map(([bar, short, spot]) => {
        const d = x.plan.devices.get(bar.dev)!;
        const br = x.plan.devices.get(d.parent!)!;
        const [p, s, u] = x.plan.buses.get(br.spec.id)!;
        const io = bar.kind === 'io';
        const addr = spot === 'a' ? bar.a : bar.end;
        return [
          cfg(br, 'ecam', H.PRIMARY_BUS, 4, BigInt(p | (s << 8) | (u << 16))),
          ...windowOps(x, br.spec.id, 'ecam', short, { mem: bar.kind === 'mem32', pref: bar.kind === 'mem64', io }),
          ...placeOps(x, bar, addr, 'ecam'),
          cfg(d, 'ecam', H.COMMAND, 2, ON),
          io ? { op: 'pio.read', root: bar.root, port: addr & 0xffff, size: 4 } : { op: 'mmio.read', root: bar.root, addr: addr + bar.size - 4, size: 4 },
        ] as Op[];
      }),
      weight: 3,
    });
  // What a reset must close: a device reached through its bridge's window, a root reset, then the
  // device's BAR and the bridge's bus numbers programmed again but not its window: nothing may answer.
  const resettable = behind.filter((b) => b.kind !== 'io');
  if (resettable.length > 0 && has('root-reset'))
    out.push({
      arb: pick(resettable).map((bar) => {
        const d = x.plan.devices.get(bar.dev)!;
        const br = x.plan.devices.get(d.parent!)!;
        const [p, s, u] = x.plan.buses.get(br.spec.id)!;
        return [
          ...bringUp(x, d),
          read(bar, 0, 4),
          { op: 'root.reset', root: d.root },
          cfg(br, 'ecam', H.PRIMARY_BUS, 4, BigInt(p | (s << 8) | (u << 16))),
          ...placeOps(x, bar, bar.a, 'ecam'),
          cfg(d, 'ecam', H.COMMAND, 2, ON),
          read(bar, 0, 4),
        ] as Op[];
      }),
      weight: 2,
    });
  // A window programmed shut: limit below base.
  if (bridges.length > 0)
    out.push({
      arb: fc.tuple(pick(bridges), fc.constantFrom(H.MEM_BASE, H.PREF_BASE, H.IO_BASE)).map(([br, reg]) => [
        cfg(br, 'ecam', reg, reg === H.IO_BASE ? 2 : 4, reg === H.IO_BASE ? 0x1181n : 0xc000d000n),
        cfg(br, 'ecam', H.COMMAND, 2, ON),
      ]),
      weight: 1,
    });

  // Secondary bus reset pulse on a bridge, and hot-plug with the slot interrupt enabled.
  if (bridges.length > 0) out.push({ arb: pick(bridges).map((br) => [cfg(br, 'ecam', H.BRIDGE_CONTROL, 2, BigInt(H.BRCTL_SEC_BUS_RESET)), cfg(br, 'ecam', H.BRIDGE_CONTROL, 2, 0n)]), weight: 1 });
  const slots = devs.filter((d) => d.spec.present === false && d.parent !== null && x.plan.devices.get(d.parent)!.spec.kind === 'root-port');
  if (slots.length > 0 && has('hotplug'))
    out.push({
      arb: fc.tuple(pick(slots), fc.boolean()).map(([d, unplug]) => {
        const rp = x.plan.devices.get(d.parent!)!;
        const [p, s, u] = x.plan.buses.get(rp.spec.id)!;
        const pcie = caps(rp).pcie!;
        const ops: Op[] = [
          cfg(rp, 'ecam', H.PRIMARY_BUS, 4, BigInt(p | (s << 8) | (u << 16))),
          cfg(rp, 'ecam', H.COMMAND, 2, ON),
          cfg(rp, 'ecam', pcie.off + PCIE.SLTCTL, 2, BigInt(SLTCTL_HPIE | SLTCTL_PDCE)),
          { op: 'dev.plug', dev: d.spec.id },
          cfg(d, 'ecam', 0, 4),
        ];
        if (unplug) ops.push({ op: 'dev.unplug', dev: d.spec.id });
        return ops;
      }),
      weight: 2,
    });

  // Isolation across roots (seed 000): two endpoints on different roots, each BAR at the same
  // address (roots with one layout get one packing), both decoding; a mark written through
  // one root, then each root reads its own BAR. Isolated roots each find their own device.
  const twins: [BarPlan, BarPlan][] = [];
  for (const p of x.plan.bars)
    for (const q of x.plan.bars)
      if (p.root < q.root && p.a === q.a && p.kind !== 'rom' && (p.kind === 'io') === (q.kind === 'io') && [p, q].every((b) => x.plan.devices.get(b.dev)!.spec.kind === 'endpoint')) twins.push([p, q]);
  if (twins.length > 0)
    out.push({
      arb: fc.tuple(pick(twins), fc.boolean(), fc.nat(0xff)).map(([[p, q], flip, mark]) => {
        const [first, second] = flip ? [q, p] : [p, q];
        return [
          ...bringUp(x, x.plan.devices.get(first.dev)!),
          ...bringUp(x, x.plan.devices.get(second.dev)!),
          write(first, 0x10, 4, BigInt(0x5a00 + mark)),
          read(first, 0, 4),
          read(second, 0, 4),
          read(second, 0x10, 4),
        ];
      }),
      weight: 2,
    });

  // A BAR mapping that outlives its device (hot-plug anywhere): the BAR decodes, the device leaves and comes back, the BAR
  // is placed elsewhere; its old place must answer nothing, before and after (PCIe Base §6.7; a hypervisor's p2m may keep it).
  const movable = has('hotplug') && hotplugReach(x.t, x.c) === null ? x.plan.bars.filter((b) => b.kind !== 'io' && b.kind !== 'rom' && b.a !== b.b && x.plan.devices.get(b.dev)!.spec.present !== false) : [];
  if (movable.length > 0)
    out.push({
      arb: fc.tuple(pick(movable), has('reset') ? fc.boolean() : fc.constant(false)).map(([bar, reset]) => {
        const d = x.plan.devices.get(bar.dev)!;
        const via = chainVia(x);
        const away: Op[] = reset ? [{ op: 'dev.reset', dev: d.spec.id }] : [{ op: 'dev.unplug', dev: d.spec.id }, read(bar, 0, 4), { op: 'dev.plug', dev: d.spec.id }];
        return [...bringUp(x, d), read(bar, 0, 4), ...away, ...placeOps(x, bar, bar.b, via), cfg(d, via, H.COMMAND, 2, ON), read({ ...bar, a: bar.b }, 0, 4), read(bar, 0, 4)];
      }),
      weight: 1,
    });

  // One lifecycle op many times over (what leaks once per cycle: a handler slot, a rangeset entry, a virtual slot runs out
  // only after dozens), then the device brought up and used again.
  const cycled = devs.filter((d) => d.spec.present !== false && barOf(x, d, 0) !== undefined && barOf(x, d, 0)!.kind !== 'io');
  const hot = has('hotplug') && hotplugReach(x.t, x.c) === null;
  const repeats = [8, 32, 48].filter((n) => n <= x.c.lifecycleRepeat);
  if (cycled.length > 0 && (has('reset') || hot) && repeats.length > 0)
    out.push({
      arb: fc.tuple(pick(cycled), fc.constantFrom(...repeats), has('reset') && hot ? fc.boolean() : fc.constant(has('reset'))).map(([d, n, reset]) => {
        const cycle: Op[] = reset ? [{ op: 'dev.reset', dev: d.spec.id }] : [{ op: 'dev.unplug', dev: d.spec.id }, { op: 'dev.plug', dev: d.spec.id }];
        const ops: Op[] = [...bringUp(x, d)];
        for (let i = 0; i < n; i++) ops.push(...cycle);
        return [...ops, ...bringUp(x, d), read(barOf(x, d, 0)!, 0, 4)];
      }),
      weight: 1,
    });

  // A device hosted by an emulator, reached through its BDF and its BAR range.
  const emulated = devs.filter((d) => d.spec.emulator !== undefined && x.plan.bars.some((b) => b.dev === d.spec.id && b.kind !== 'rom'));
  if (emulated.length > 0 && has('emulator'))
    out.push({
      arb: fc.tuple(pick(emulated), fc.boolean(), fc.boolean()).map(([d, right, twice]) => {
        const bar = x.plan.bars.find((b) => b.dev === d.spec.id && b.kind !== 'rom')!;
        const emus = x.t.emulators ?? [];
        const other = emus.find((e) => e !== d.spec.emulator) ?? d.spec.emulator!;
        const e = right ? d.spec.emulator! : other;
        const space = bar.kind === 'io' ? ('pio' as const) : ('mmio' as const);
        const start = bar.kind === 'io' ? bar.a & 0xffff : bar.a;
        const ops: Op[] = [{ op: 'emu.map-bdf', root: d.root, emulator: d.spec.emulator!, bdf: d.bdf }, ...bringUp(x, d), { op: 'emu.map-range', root: d.root, emulator: e, space, start, size: bar.size }];
        if (twice) ops.push({ op: 'emu.map-range', root: d.root, emulator: other, space, start, size: bar.size });
        ops.push(read(bar, 0, 4), { op: 'emu.unmap-range', root: d.root, emulator: e, space, start, size: bar.size });
        return ops;
      }),
      weight: 2,
    });
  return out;
}
