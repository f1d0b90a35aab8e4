/**
 * Memory and IO fragments: touching BARs where they were placed (or moved
 * from, or a window's edge), ringing doorbells, programming MSI-X tables,
 * and reading and writing RAM at the addresses DMA uses.
 */
import fc from 'fast-check';
import { REGION_XFER_MAX, type Op } from '../../harness/ops/catalog.ts';
import { GPAS, cfg, msiAddress, devOf, pick, scope, spotAddress, type FragmentContext, type Spot, type Weighted } from './context.ts';

export function accessFragments(x: FragmentContext): Weighted[] {
  const out: Weighted[] = [];
  const { has, via, withCap } = scope(x);
  const bars = x.plan.bars;
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
        arb: fc.tuple(pick(msix), via, fc.boolean(), fc.nat(15)).map(([d, v, maskAll, k]) => {
          const mx = x.caps.get(d.spec.id)!.msix!;
          const bar = bars.find((b) => b.dev === d.spec.id && b.region === mx.bar)!;
          const t = bar.a + mx.table;
          return [
            cfg(d, v, mx.off + 2, 2, maskAll ? 0xc000n : 0x8000n),
            { op: 'mmio.write', root: d.root, addr: t, size: 4, value: BigInt(msiAddress(x, k)) },
            { op: 'mmio.write', root: d.root, addr: t + 8, size: 4, value: BigInt(0x4041 + k) },
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

  // A VFIO user's region accesses (vfio-user REGION_READ/WRITE), hostile ones included: at and past
  // a region's end, larger than a message carries, the ROM written, a BAR before it decodes.
  if (has('region')) {
    const regions = [...bars.map((b) => ({ dev: b.dev, region: b.region, size: b.size })), ...x.devices.map((d) => ({ dev: d.spec.id, region: 7, size: x.caps.get(d.spec.id)?.pcie !== undefined ? 0x1000 : 0x100 }))];
    if (regions.length > 0)
      out.push({
        arb: fc
          .tuple(pick(regions), fc.constantFrom('start', 'scratch', 'end', 'past', 'far'), fc.constantFrom(1, 2, 4, 4, 8, 64, REGION_XFER_MAX + 1), fc.option(fc.constantFrom(0n, 0x5an, 0xcafef00dn), { freq: 2 }), fc.nat(8))
          .map(([r, where, count, value, other]): Op[] => {
            const region = other === 8 ? 8 : other === 6 && r.region !== 7 ? 6 : r.region;
            const offset = where === 'start' ? 0 : where === 'scratch' ? 0x10 : where === 'end' ? Math.max(0, r.size - count) : where === 'past' ? Math.max(0, r.size - 2) : r.size + 0x1000;
            if (value === null) return [{ op: 'region.read', dev: r.dev, region, offset, count }];
            const data = new Uint8Array(Math.min(count, REGION_XFER_MAX));
            for (let i = 0; i < data.length; i++) data[i] = Number((value >> BigInt(8 * (i % 4))) & 0xffn);
            return [{ op: 'region.write', dev: r.dev, region, offset, data }];
          }),
        weight: 6,
      });
  }
  return out;
}
