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

/** Closed intervals [start, end], one per claim, sorted and disjoint. */
type Ranges = [number, number][];

const covering = (rs: Ranges, a: number, b: number): number => rs.findIndex(([s, e]) => s <= a && b <= e);
const overlapping = (rs: Ranges, a: number, b: number): boolean => rs.some(([s, e]) => s <= b && a <= e);

function add(rs: Ranges, a: number, b: number): void {
  rs.push([a, b]);
  rs.sort((x, y) => x[0] - y[0]);
}

/** Whether claims of `rs` together cover [a, b] without a gap (a rangeset merges adjacent claims; the list keeps them apart). */
function chainCovers(rs: Ranges, a: number, b: number): boolean {
  let next = a;
  for (const [s, e] of rs) {
    if (e < next) continue;
    if (s > next) return false;
    next = e + 1;
    if (next > b) return true;
  }
  return false;
}

/** Removes [a, b] from the claims, keeping what lies outside it. */
function cut(rs: Ranges, a: number, b: number): void {
  const keep: Ranges = [];
  for (const [s, e] of rs) {
    if (e < a || b < s) keep.push([s, e]);
    else {
      if (s < a) keep.push([s, a - 1]);
      if (b < e) keep.push([b + 1, e]);
    }
  }
  rs.splice(0, rs.length, ...keep);
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

  constructor(private readonly order: readonly string[]) {
    this.claims = order.map(() => ({ bdfs: new Set<number>(), mmio: [], pio: [] }));
  }

  get empty(): boolean {
    return this.claims.every((c) => c.bdfs.size === 0 && c.mmio.length === 0 && c.pio.length === 0);
  }

  private of(emulator: string): Claims {
    return this.claims[this.order.indexOf(emulator)];
  }

  mapBdf(bdf: number, emulator: string, decide: EmulatorDecide): Reason | null {
    const own = this.of(emulator);
    if (own.bdfs.has(bdf)) return 'busy';
    if (this.claims.some((c) => c !== own && c.bdfs.has(bdf)) && !decide.overlap()) return 'busy';
    own.bdfs.add(bdf);
    return null;
  }

  unmapBdf(bdf: number, emulator: string): Reason | null {
    return this.of(emulator).bdfs.delete(bdf) ? null : 'not-registered';
  }

  mapRange(space: 'mmio' | 'pio', start: number, size: number, emulator: string, decide: EmulatorDecide): Reason | null {
    if (size === 0) return 'align';
    const end = start + size - 1;
    const own = this.of(emulator)[space];
    if (overlapping(own, start, end)) return 'busy';
    if (this.claims.some((c) => c[space] !== own && overlapping(c[space], start, end)) && !decide.overlap()) return 'busy';
    add(own, start, end);
    return null;
  }

  unmapRange(space: 'mmio' | 'pio', start: number, size: number, emulator: string, decide: EmulatorDecide): Reason | null {
    if (size === 0) return 'align';
    const own = this.of(emulator)[space];
    const end = start + size - 1;
    const i = own.findIndex(([s, e]) => s === start && e === end);
    if (i >= 0) {
      own.splice(i, 1);
      return null;
    }
    // Part of one claim, or adjacent claims together: Xen's rangeset has merged them and removes any part it holds.
    if (!chainCovers(own, start, end) || !decide.partialUnmap()) return 'not-registered';
    cut(own, start, end);
    return null;
  }

  /** The emulator whose claim holds `addr` (the one declared last where claims overlap). */
  rangeOwner(space: 'mmio' | 'pio', addr: number): string | undefined {
    for (let i = this.claims.length - 1; i >= 0; i--) if (covering(this.claims[i][space], addr, addr) >= 0) return this.order[i];
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
      c.mmio.length = 0;
      c.pio.length = 0;
    }
  }

  snapshot(): unknown {
    return this.claims.map((c) => ({ bdfs: [...c.bdfs], mmio: c.mmio.map((r) => [...r]), pio: c.pio.map((r) => [...r]) }));
  }

  restore(s: unknown): void {
    const x = s as { bdfs: number[]; mmio: [number, number][]; pio: [number, number][] }[];
    x.forEach((c, i) => {
      this.claims[i].bdfs = new Set(c.bdfs);
      this.claims[i].mmio = c.mmio.map((r) => [r[0], r[1]]);
      this.claims[i].pio = c.pio.map((r) => [r[0], r[1]]);
    });
  }
}
