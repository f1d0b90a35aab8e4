/**
 * Emulator routing: which handler receives an access. A root delegates
 * BDFs (Xen's xendevicemodel_map_pcidev_to_ioreq_server, IOREQ_TYPE_PCI_CONFIG)
 * and MMIO or IO ranges (map_io_range_to_ioreq_server) to named
 * emulators; everything else stays with the root's own handler. Every
 * access has exactly one handler (rule emulator.routing): a claim that
 * overlaps another emulator's is refused, or (choice emulator.overlap)
 * the emulator declared last receives, as Xen favours its newest ioreq
 * server. An emulator's own claims never overlap. An unmap names one
 * claim, or (choice emulator.unmap-partial) any part of what the
 * emulator holds, as Xen's rangesets merge adjacent claims.
 */
import type { Reason } from '../ops/observation.ts';
import { IntervalMap } from '../util/interval-map.ts';

/** One emulator's claims of one space: disjoint closed intervals [start, end], one per claim. */
type Ranges = IntervalMap<true>;

/** Whether claims of `rs` together cover [a, b] without a gap (a rangeset merges adjacent claims; the map keeps them apart). */
function chainCovers(rs: Ranges, a: number, b: number): boolean {
  let next = a;
  for (const { start, end } of rs.intersecting(a, b)) {
    if (start > next) return false;
    next = end + 1;
    if (next > b) return true;
  }
  return false;
}

/** Removes [a, b] from the claims, keeping what lies outside it. */
function cut(rs: Ranges, a: number, b: number): void {
  for (const { start, end } of rs.intersecting(a, b)) {
    rs.remove(start);
    if (start < a) rs.insert(start, a - 1, true);
    if (b < end) rs.insert(b + 1, end, true);
  }
}

interface Claims {
  bdfs: Set<number>;
  mmio: Ranges;
  pio: Ranges;
}

/** What a change needs decided where the contract allows two outcomes (choices emulator.overlap, emulator.unmap-partial). */
export interface EmulatorDecide {
  /** A claim overlaps another emulator's only: whether it is taken. */
  overlap(): boolean;
  /** An unmap covers part of one claim: whether that part goes. */
  partialUnmap(): boolean;
}

export class EmulatorTable {
  /** Claims by emulator, in the topology's order of emulators (the later wins where claims overlap). */
  private readonly claims: Claims[];
  /** Whether any emulator claims anything: most roots' accesses ask only this (the hot path). */
  private any = false;

  constructor(private readonly order: readonly string[]) {
    this.claims = order.map(() => ({ bdfs: new Set<number>(), mmio: new IntervalMap<true>(), pio: new IntervalMap<true>() }));
  }

  get empty(): boolean {
    return !this.any;
  }

  private recount(): void {
    this.any = this.claims.some((c) => c.bdfs.size > 0 || c.mmio.size > 0 || c.pio.size > 0);
  }

  private of(emulator: string): Claims {
    return this.claims[this.order.indexOf(emulator)];
  }

  mapBdf(bdf: number, emulator: string, decide: EmulatorDecide): Reason | null {
    const own = this.of(emulator);
    if (own.bdfs.has(bdf)) return 'busy';
    if (this.claims.some((c) => c !== own && c.bdfs.has(bdf)) && !decide.overlap()) return 'busy';
    own.bdfs.add(bdf);
    this.any = true;
    return null;
  }

  unmapBdf(bdf: number, emulator: string): Reason | null {
    if (!this.of(emulator).bdfs.delete(bdf)) return 'not-registered';
    this.recount();
    return null;
  }

  mapRange(space: 'mmio' | 'pio', start: number, size: number, emulator: string, decide: EmulatorDecide): Reason | null {
    if (size === 0) return 'align';
    const end = start + size - 1;
    const own = this.of(emulator)[space];
    if (own.overlaps(start, end)) return 'busy';
    if (this.claims.some((c) => c[space] !== own && c[space].overlaps(start, end)) && !decide.overlap()) return 'busy';
    own.insert(start, end, true);
    this.any = true;
    return null;
  }

  unmapRange(space: 'mmio' | 'pio', start: number, size: number, emulator: string, decide: EmulatorDecide): Reason | null {
    if (size === 0) return 'align';
    const own = this.of(emulator)[space];
    const end = start + size - 1;
    const hit = own.find(start);
    if (hit !== null && hit.start === start && hit.end === end) {
      own.remove(start);
      this.recount();
      return null;
    }
    // Part of one claim, or adjacent claims together: Xen's rangeset has merged them and removes any part it holds.
    if (!chainCovers(own, start, end) || !decide.partialUnmap()) return 'not-registered';
    cut(own, start, end);
    this.recount();
    return null;
  }

  /** The emulator whose claim holds `addr` (the one declared last where claims overlap). */
  rangeOwner(space: 'mmio' | 'pio', addr: number): string | undefined {
    for (let i = this.claims.length - 1; i >= 0; i--) if (this.claims[i][space].find(addr) !== null) return this.order[i];
    return undefined;
  }

  /** The emulator that registered the first of `keys` (in their order of precedence) that any emulator registered. */
  bdfOwner(keys: readonly number[]): string | undefined {
    for (const k of keys) for (let i = this.claims.length - 1; i >= 0; i--) if (this.claims[i].bdfs.has(k)) return this.order[i];
    return undefined;
  }

  clear(): void {
    for (const c of this.claims) {
      c.bdfs.clear();
      c.mmio.clear();
      c.pio.clear();
    }
    this.any = false;
  }

  snapshot(): unknown {
    const ranges = (m: Ranges): [number, number][] => m.entries().map((e) => [e.start, e.end]);
    return this.claims.map((c) => ({ bdfs: [...c.bdfs], mmio: ranges(c.mmio), pio: ranges(c.pio) }));
  }

  restore(s: unknown): void {
    const x = s as { bdfs: number[]; mmio: [number, number][]; pio: [number, number][] }[];
    x.forEach((c, i) => {
      this.claims[i].bdfs = new Set(c.bdfs);
      this.claims[i].mmio.clear();
      this.claims[i].pio.clear();
      for (const [a, b] of c.mmio) this.claims[i].mmio.insert(a, b, true);
      for (const [a, b] of c.pio) this.claims[i].pio.insert(a, b, true);
    });
    this.recount();
  }
}
