/**
 * A memory or IO address space, shared by the roots whose contract says
 * so. It renders its flat view lazily: any decode change in a member root
 * marks it dirty, and the next access re-renders.
 */
import { FlatView, type Decoder, type RenderItem } from './flat-view.ts';
import type { Bus } from './bus.ts';
import type { PciFunction, Placement } from './function.ts';
import { IO_WINDOW, MEM_WINDOW, PREF_WINDOW, type Bridge } from './personalities/bridge.ts';

export type SpaceKind = 'memory' | 'io';

export class AddressSpace {
  private view: FlatView | null = null;
  /** Root buses of the member roots, in root order. */
  readonly buses: { root: number; bus: Bus }[] = [];
  /** Platform decoders (RAM, ECAM, CF8/CFC): they outrank PCI decoders. */
  readonly platform: Decoder[] = [];

  constructor(
    readonly kind: SpaceKind,
    readonly owner: number,
  ) {}

  invalidate(): void {
    this.view = null;
  }

  get flat(): FlatView {
    if (this.view === null) this.view = FlatView.render(this.items());
    return this.view;
  }

  lookup(addr: number): Decoder | null {
    // Platform decoders mapped above everything (seq = +Infinity) win wherever they lie, in their declared
    // order, as render() would have it: a config access through ECAM needs no render after a BAR moved.
    for (const d of this.platform) if (d.seq === Infinity && addr >= d.base && addr - d.base < d.size) return d;
    return this.flat.lookup(addr);
  }

  private items(): RenderItem[] {
    const out: RenderItem[] = this.platform.map((d) => ({ leaf: d }));
    for (const { bus } of this.buses) out.push(...this.busItems(bus));
    return out;
  }

  private busItems(bus: Bus): RenderItem[] {
    const out: RenderItem[] = [];
    for (const fn of bus.functions()) {
      for (const p of fn.placements) if (p !== null && p !== undefined && this.wants(fn, p)) out.push(...leaves(fn, p));
      for (const g of fn.ghosts) if (this.wants(fn, g) && (g.whileDecoding !== true || fn.decodesMemory)) out.push({ leaf: leaf(fn, g) });
      if (fn.isBridge) {
        const b = fn as Bridge;
        const windows = this.kind === 'io' ? [IO_WINDOW] : [MEM_WINDOW, PREF_WINDOW];
        let children: RenderItem[] | null = null;
        for (const w of windows) {
          const p = b.placements[w];
          if (p === null || p === undefined) continue;
          children ??= this.busItems(b.secondary);
          out.push({ window: { base: p.base, size: p.size, seq: p.seq }, children });
        }
      }
    }
    return out;
  }

  /** Whether a BAR placement belongs in this space (windows are handled apart). */
  private wants(fn: PciFunction, p: Placement): boolean {
    if (p.region > 6) return false;
    const def = fn.bars[p.region];
    if (def === undefined) return false;
    return this.kind === 'io' ? def.kind === 'io' : def.kind !== 'io';
  }
}

const leaf = (fn: PciFunction, p: Placement): Decoder => ({ kind: 'bar', root: fn.root, fn, region: p.region, base: p.base, size: p.size, seq: p.seq });

/** A placed region's decoders: the whole of it, or the pieces of it that claim accesses. */
function leaves(fn: PciFunction, p: Placement): RenderItem[] {
  const pieces = fn.regionPieces(p.region);
  const skip = p.skip ?? 0;
  if (pieces === null) return skip === 0 ? [{ leaf: leaf(fn, p) }] : skip >= p.size ? [] : [{ leaf: { ...leaf(fn, p), base: p.base + skip, size: p.size - skip, offset: skip } }];
  return pieces.filter(([off]) => off < p.size).map(([off, n]) => ({ leaf: { ...leaf(fn, p), base: p.base + off, size: Math.min(n, p.size - off), offset: off } }));
}
