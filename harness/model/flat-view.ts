/**
 * The flat view of an address space: which decoder answers each address.
 * Rendering follows QEMU's memory API (docs/devel/memory.rst, "Overlapping
 * regions and priority"): higher-priority items claim first, a later
 * mapping outranks an earlier one at the same level, and a bridge window
 * claims nothing itself: it lets its children claim within it (PCI-to-PCI
 * Bridge 1.2 §4.1) and stays transparent where none does.
 */
import type { PciFunction } from './function.ts';

/** reserved: a platform range the model does not emulate (RootSpec.reserved). */
export type DecoderKind = 'ram' | 'ecam' | 'cf8' | 'bar' | 'reserved';

export interface Decoder {
  kind: DecoderKind;
  /** Root that owns the decoder. */
  root: number;
  fn: PciFunction | null;
  /** Region index for BARs. */
  region: number;
  base: number;
  size: number;
  /** Where `base` lies within the region (a region that claims only parts of itself); 0 when absent. */
  offset?: number;
  /** Reserved ranges: what is there. */
  name?: string;
  /** Mapping order: a later mapping wins. Platform decoders use +Infinity, reserved ranges that PCI outranks -Infinity. */
  seq: number;
}

export type RenderItem = { leaf: Decoder } | { window: { base: number; size: number; seq: number }; children: RenderItem[] };

const seqOf = (i: RenderItem): number => ('leaf' in i ? i.leaf.seq : i.window.seq);
/** Later mapping first; platform decoders (seq = Infinity) keep their declared order. */
const bySeqDesc = (a: RenderItem, b: RenderItem): number => {
  const x = seqOf(a);
  const y = seqOf(b);
  return x === y ? 0 : x > y ? -1 : 1;
};

export class FlatView {
  private starts: number[] = [];
  private ends: number[] = [];
  private decs: Decoder[] = [];

  /** Every decoder with the range it claims after window clipping, winners and losers alike. */
  readonly claims: { d: Decoder; s: number; e: number }[] = [];
  /** Whether two BAR claims overlap somewhere (then which answers is a choice: decode.overlap). */
  overlaps = false;

  static render(items: RenderItem[]): FlatView {
    const v = new FlatView();
    const segs: { s: number; e: number; d: Decoder }[] = [];
    const claim = (s: number, e: number, d: Decoder): void => {
      // Fill the gaps of [s, e] that no segment covers yet.
      let cur = s;
      const add: { s: number; e: number; d: Decoder }[] = [];
      for (const g of segs) {
        if (g.e < cur || g.s > e) continue;
        if (d.kind === 'bar' && g.d.kind === 'bar') v.overlaps = true;
        if (g.s > cur) add.push({ s: cur, e: g.s - 1, d });
        cur = Math.max(cur, g.e + 1);
        if (cur > e) break;
      }
      if (cur <= e) add.push({ s: cur, e, d });
      if (add.length > 0) {
        segs.push(...add);
        segs.sort((a, b) => a.s - b.s);
      }
    };
    const walk = (list: RenderItem[], lo: number, hi: number): void => {
      const sorted = [...list].sort(bySeqDesc);
      for (const it of sorted) {
        if ('leaf' in it) {
          const d = it.leaf;
          const s = Math.max(d.base, lo);
          const e = Math.min(d.base + d.size - 1, hi);
          if (s <= e) {
            v.claims.push({ d, s, e });
            claim(s, e, d);
          }
        } else {
          const s = Math.max(it.window.base, lo);
          const e = Math.min(it.window.base + it.window.size - 1, hi);
          // A closed or out-of-range window forwards nothing: its children claim nothing.
          if (s <= e) walk(it.children, s, e);
        }
      }
    };
    walk(items, 0, Number.MAX_SAFE_INTEGER);
    for (const g of segs) {
      v.starts.push(g.s);
      v.ends.push(g.e);
      v.decs.push(g.d);
    }
    return v;
  }

  lookup(addr: number): Decoder | null {
    const st = this.starts;
    let lo = 0;
    let hi = st.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (st[mid] <= addr) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi >= 0 && this.ends[hi] >= addr ? this.decs[hi] : null;
  }

  /** Decoders that claim addr, whether or not they won it. */
  claimants(addr: number): Decoder[] {
    const out: Decoder[] = [];
    for (const c of this.claims) if (addr >= c.s && addr <= c.e) out.push(c.d);
    return out;
  }

  /** Bytes a region of a function claims after window clipping (0 if none). */
  claimedBytes(fn: PciFunction, region: number): number {
    let n = 0;
    for (const c of this.claims) if (c.d.fn === fn && c.d.region === region) n += c.e - c.s + 1;
    return n;
  }

  /** Segments in address order, for reports and tests. */
  segments(): { start: number; end: number; decoder: Decoder }[] {
    return this.starts.map((s, i) => ({ start: s, end: this.ends[i], decoder: this.decs[i] }));
  }
}
