/** Emulator claims (BDFs and ranges), hot-plug, resets and virtual time. */
import fc from 'fast-check';
import type { Op } from '../../harness/ops/catalog.ts';
import { pick, scope, type FragmentContext, type Weighted } from './context.ts';
import { hotplugReach } from '../reach.ts';

export function platformFragments(x: FragmentContext): Weighted[] {
  const out: Weighted[] = [];
  const { has } = scope(x);
  const bars = x.plan.bars;
  const devs = x.devices;
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
  const reach = hotplugReach(x.t, x.c);
  const pluggable = reach === null ? devs : devs.filter((d) => reach.has(d.spec.id));
  if (has('hotplug') && pluggable.length > 0) out.push({ arb: fc.tuple(pick(pluggable), fc.boolean()).map(([d, plug]): Op[] => [{ op: plug ? 'dev.plug' : 'dev.unplug', dev: d.spec.id }]), weight: 2 });
  if (has('reset')) out.push({ arb: pick(devs).map((d): Op[] => [{ op: 'dev.reset', dev: d.spec.id }]), weight: 1 });
  if (has('root-reset')) out.push({ arb: fc.nat(x.t.roots.length - 1).map((r): Op[] => [{ op: 'root.reset', root: r }]), weight: 1 });
  if (has('clock') && devs.some((d) => d.spec.kind === 'edu')) out.push({ arb: fc.constantFrom(100_000_000, 1_000_000).map((ns): Op[] => [{ op: 'clock.step', ns }]), weight: 1 });
  return out;
}
