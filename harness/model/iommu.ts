/**
 * IOMMU domains: IOVA-to-guest-physical mappings with permissions. The
 * semantics are those of VFIO's type-1 v2 API (linux
 * include/uapi/linux/vfio.h): mappings are page aligned, a map may not
 * overlap an existing one, and an unmap must cover whole mappings.
 * Translation is strict: a change is visible to the next DMA.
 */
import { IntervalMap } from '../util/interval-map.ts';
import type { Reason } from '../ops/observation.ts';

export const IOMMU_PAGE = 0x1000;
export type Perm = 'r' | 'w' | 'rw';

export interface Mapping {
  iova: number;
  size: number;
  gpa: number;
  perm: Perm;
}

export interface Chunk {
  gpa: number;
  len: number;
}

export class IommuDomain {
  private maps = new IntervalMap<Mapping>();
  /** Recently unmapped ranges, for telling a stale translation from a wild one. */
  private unmapped: { iova: number; size: number }[] = [];

  constructor(
    readonly owner: number,
    readonly index: number,
  ) {}

  get liveMappings(): number {
    return this.maps.size;
  }

  map(m: Mapping): Reason | null {
    if (m.size === 0 || m.iova % IOMMU_PAGE !== 0 || m.size % IOMMU_PAGE !== 0 || m.gpa % IOMMU_PAGE !== 0) return 'align';
    return this.maps.insert(m.iova, m.iova + m.size - 1, m) ? null : 'exists';
  }

  unmap(iova: number, size: number): Reason | null {
    if (size === 0 || iova % IOMMU_PAGE !== 0 || size % IOMMU_PAGE !== 0) return 'align';
    const end = iova + size - 1;
    const hit = this.maps.intersecting(iova, end);
    if (hit.length === 0) return 'not-mapped';
    if (hit.some((h) => h.start < iova || h.end > end)) return 'partial';
    for (const h of hit) {
      this.maps.remove(h.start);
      this.unmapped.push({ iova: h.start, size: h.end - h.start + 1 });
    }
    if (this.unmapped.length > 64) this.unmapped.splice(0, this.unmapped.length - 64);
    return null;
  }

  /** Translates [iova, iova+len) for a read or a write; a fault names its reason. */
  translate(iova: number, len: number, write: boolean): Chunk[] | Reason {
    const out: Chunk[] = [];
    let a = iova;
    const end = iova + len;
    while (a < end) {
      const m = this.maps.find(a);
      if (m === null) return 'iova-unmapped';
      const p = m.value.perm;
      if (write ? p === 'r' : p === 'w') return 'perm';
      const n = Math.min(end, m.end + 1) - a;
      out.push({ gpa: m.value.gpa + (a - m.start), len: n });
      a += n;
    }
    return out;
  }

  wasUnmapped(iova: number): boolean {
    return this.unmapped.some((u) => iova >= u.iova && iova < u.iova + u.size);
  }

  mappings(): Mapping[] {
    return this.maps.entries().map((e) => e.value);
  }

  clear(): void {
    for (const m of this.mappings()) this.unmapped.push({ iova: m.iova, size: m.size });
    this.maps.clear();
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
