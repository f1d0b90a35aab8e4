/**
 * What dma.map and dma.unmap mean, for whoever keeps an IOMMU domain's
 * mappings: the model, and the IOMMU drivers of targets. The rules are
 * those of VFIO's type-1 v2 API (linux include/uapi/linux/vfio.h):
 * mappings are page aligned, a map may not overlap an existing one, and
 * an unmap must cover whole mappings. Refusals are reasons, as the API
 * returns errors.
 */
import { IntervalMap } from '../util/interval-map.ts';
import type { Reason } from './observation.ts';

export const IOMMU_PAGE = 0x1000;
export type Perm = 'r' | 'w' | 'rw';
/** page: VFIO type-1's rule; any: a vfio-user server that takes any alignment (choice dma-map.alignment). */
export type Alignment = 'page' | 'any';

const pageAligned = (...xs: number[]): boolean => xs.every((x) => x % IOMMU_PAGE === 0);

export interface Mapping {
  iova: number;
  size: number;
  gpa: number;
  perm: Perm;
}

export class MappingTable {
  protected maps = new IntervalMap<Mapping>();

  get liveMappings(): number {
    return this.maps.size;
  }

  /** Whether a mapping is page aligned (IOVA, size and address). */
  aligned(m: Mapping): boolean {
    return pageAligned(m.iova, m.size, m.gpa);
  }

  /** What map() would answer, without mapping. */
  wouldMap(m: Mapping, alignment: Alignment = 'page'): Reason | null {
    if (m.size === 0 || (alignment === 'page' && !this.aligned(m))) return 'align';
    return this.maps.intersecting(m.iova, m.iova + m.size - 1).length > 0 ? 'exists' : null;
  }

  map(m: Mapping, alignment: Alignment = 'page'): Reason | null {
    const r = this.wouldMap(m, alignment);
    if (r !== null) return r;
    return this.maps.insert(m.iova, m.iova + m.size - 1, m) ? null : 'exists';
  }

  /** What unmap() would answer (null: it would unmap), without unmapping. */
  wouldUnmap(iova: number, size: number, alignment: Alignment = 'page'): Reason | null {
    const r = this.unmapProblem(iova, size, alignment);
    return typeof r === 'string' ? r : null;
  }

  private unmapProblem(iova: number, size: number, alignment: Alignment): Reason | { start: number; end: number; value: Mapping }[] {
    if (size === 0 || (alignment === 'page' && !pageAligned(iova, size))) return 'align';
    const end = iova + size - 1;
    const hit = this.maps.intersecting(iova, end);
    if (hit.length === 0) return 'not-mapped';
    if (hit.some((h) => h.start < iova || h.end > end)) return 'partial';
    return hit;
  }

  /** Removes whole mappings within [iova, iova+size); returns them, or why not. */
  unmap(iova: number, size: number, alignment: Alignment = 'page'): Mapping[] | Reason {
    const hit = this.unmapProblem(iova, size, alignment);
    if (typeof hit === 'string') return hit;
    for (const h of hit) this.maps.remove(h.start);
    return hit.map((h) => h.value);
  }

  find(iova: number): { start: number; end: number; value: Mapping } | null {
    return this.maps.find(iova);
  }

  mappings(): Mapping[] {
    return this.maps.entries().map((e) => e.value);
  }

  clear(): Mapping[] {
    const all = this.mappings();
    this.maps.clear();
    return all;
  }
}
