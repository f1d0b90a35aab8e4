/**
 * IOMMU domains of the model: a mapping table with the dma.map/dma.unmap
 * rules (ops/dma-mappings.ts), translation, and a memory of what was
 * unmapped, for telling a stale translation from a wild one.
 * Translation is strict: a change is visible to the next DMA.
 */
import { MappingTable, type Alignment, type Mapping } from '../ops/dma-mappings.ts';
import type { Reason } from '../ops/observation.ts';
import type { Stage } from './pasid-context.ts';

export { IOMMU_PAGE, type Mapping, type Perm } from '../ops/dma-mappings.ts';

export interface Chunk {
  gpa: number;
  len: number;
}

export class IommuDomain extends MappingTable {
  /** Recently unmapped ranges. */
  private unmapped: { iova: number; size: number }[] = [];

  constructor(
    readonly owner: number,
    readonly index: number,
  ) {
    super();
  }

  override unmap(iova: number, size: number, alignment: Alignment = 'page'): Mapping[] | Reason {
    const r = super.unmap(iova, size, alignment);
    if (typeof r === 'string') return r;
    for (const m of r) this.unmapped.push({ iova: m.iova, size: m.size });
    if (this.unmapped.length > 64) this.unmapped.splice(0, this.unmapped.length - 64);
    return r;
  }

  /**
   * Translates [iova, iova+len) for a read or a write; a fault names its
   * reason. Through first-stage tables a present page is readable (VT-d
   * §9.7: the format has no read permission), so a write-only mapping
   * reads there.
   */
  translate(iova: number, len: number, write: boolean, stage: Stage = 'second'): Chunk[] | Reason {
    const out: Chunk[] = [];
    let a = iova;
    const end = iova + len;
    while (a < end) {
      const m = this.find(a);
      if (m === null) return 'iova-unmapped';
      const p = m.value.perm;
      if (write ? p === 'r' : p === 'w' && stage === 'second') return 'perm';
      const n = Math.min(end, m.end + 1) - a;
      out.push({ gpa: m.value.gpa + (a - m.start), len: n });
      a += n;
    }
    return out;
  }

  wasUnmapped(iova: number): boolean {
    return this.unmapped.some((u) => iova >= u.iova && iova < u.iova + u.size);
  }

  override clear(): Mapping[] {
    const all = super.clear();
    for (const m of all) this.unmapped.push({ iova: m.iova, size: m.size });
    return all;
  }

  snapshot(): { maps: Mapping[]; unmapped: { iova: number; size: number }[] } {
    return { maps: this.mappings().map((m) => ({ ...m })), unmapped: this.unmapped.map((u) => ({ ...u })) };
  }

  restore(s: { maps: Mapping[]; unmapped: { iova: number; size: number }[] }): void {
    this.maps.clear();
    for (const m of s.maps) this.maps.insert(m.iova, m.iova + m.size - 1, { ...m });
    this.unmapped = s.unmapped.map((u) => ({ ...u }));
  }
}
