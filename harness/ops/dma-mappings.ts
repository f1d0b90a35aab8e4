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

  map(m: Mapping): Reason | null {
    if (m.size === 0 || m.iova % IOMMU_PAGE !== 0 || m.size % IOMMU_PAGE !== 0 || m.gpa % IOMMU_PAGE !== 0) return 'align';
    return this.maps.insert(m.iova, m.iova + m.size - 1, m) ? null : 'exists';
  }

  /** Removes whole mappings within [iova, iova+size); returns them, or why not. */
  unmap(iova: number, size: number): Mapping[] | Reason {
    if (size === 0 || iova % IOMMU_PAGE !== 0 || size % IOMMU_PAGE !== 0) return 'align';
    const end = iova + size - 1;
    const hit = this.maps.intersecting(iova, end);
    if (hit.length === 0) return 'not-mapped';
    if (hit.some((h) => h.start < iova || h.end > end)) return 'partial';
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
