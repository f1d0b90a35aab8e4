/**
 * Emulator routing: which handler receives an access. A root delegates
 * BDFs (Xen's xendevicemodel_map_pcidev_to_ioreq_server, IOREQ_TYPE_PCI_CONFIG)
 * and MMIO or IO ranges (map_io_range_to_ioreq_server) to named
 * emulators; everything else stays with the root's own handler. A claim
 * that overlaps another is refused, so every access has exactly one handler.
 */
import { IntervalMap } from '../util/interval-map.ts';
import type { Reason } from '../ops/observation.ts';

export class EmulatorTable {
  readonly bdfs = new Map<number, string>();
  readonly mmio = new IntervalMap<string>();
  readonly pio = new IntervalMap<string>();

  mapBdf(bdf: number, emulator: string): Reason | null {
    if (this.bdfs.has(bdf)) return 'busy';
    this.bdfs.set(bdf, emulator);
    return null;
  }

  unmapBdf(bdf: number, emulator: string): Reason | null {
    if (this.bdfs.get(bdf) !== emulator) return 'not-registered';
    this.bdfs.delete(bdf);
    return null;
  }

  mapRange(space: 'mmio' | 'pio', start: number, size: number, emulator: string): Reason | null {
    if (size === 0) return 'align';
    return this[space].insert(start, start + size - 1, emulator) ? null : 'busy';
  }

  unmapRange(space: 'mmio' | 'pio', start: number, size: number, emulator: string): Reason | null {
    const hit = this[space].find(start);
    if (hit === null || hit.start !== start || hit.end !== start + size - 1 || hit.value !== emulator) return 'not-registered';
    this[space].remove(start);
    return null;
  }

  clear(): void {
    this.bdfs.clear();
    this.mmio.clear();
    this.pio.clear();
  }

  snapshot(): unknown {
    const ranges = (m: IntervalMap<string>): [number, number, string][] => m.entries().map((e) => [e.start, e.end, e.value]);
    return { bdfs: [...this.bdfs], mmio: ranges(this.mmio), pio: ranges(this.pio) };
  }

  restore(s: unknown): void {
    const x = s as { bdfs: [number, string][]; mmio: [number, number, string][]; pio: [number, number, string][] };
    this.clear();
    for (const [b, e] of x.bdfs) this.bdfs.set(b, e);
    for (const [a, b, e] of x.mmio) this.mmio.insert(a, b, e);
    for (const [a, b, e] of x.pio) this.pio.insert(a, b, e);
  }
}
