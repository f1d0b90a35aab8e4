/**
 * What an IOMMU may still translate after a PASID entry is cleared and
 * before the IOTLB invalidation that change requires (VT-d §6.5, and the
 * guidance of §6.5.3.x: a PASID-table entry change needs a PASID-cache
 * invalidation, then a PASID-based IOTLB one for first-stage entries or
 * an IOTLB one for second-stage entries). The driver invalidates the
 * PASID cache with every entry write, so what may linger is the IOTLB:
 * translations of pages that were mapped when the entry went. A page
 * mapped or unmapped in the old domain since then was invalidated with
 * that change (dma.map writes no present entry over a cached one; dma.unmap
 * invalidates), so it cannot translate stale.
 */
import { IOMMU_PAGE } from '../ops/dma-mappings.ts';
import type { PasidBinding } from './pasid-context.ts';

interface Stale extends PasidBinding {
  /** The DMA owner whose domains these are. */
  owner: number;
  /**
   * A known bug's (rules.pasidPresentIgnoredWhenCached): the cleared entry
   * keeps translating through its old domain as that domain is now, until
   * the entry is written again; no invalidation ends it.
   */
  lingers: boolean;
  /** Ranges of the old domain no longer cached. */
  cleared: { iova: number; size: number }[];
}

export class StaleTranslations {
  /** By "table key/PASID". */
  private readonly entries = new Map<string, Stale>();

  /** An entry that held `b` was cleared, its IOTLB not invalidated yet. */
  cleared(owner: number, table: string, pasid: number, b: PasidBinding, lingers = false): void {
    this.entries.set(`${table}/${pasid}`, { domain: b.domain, stage: b.stage, owner, lingers, cleared: [] });
  }

  /** The entry was written again: nothing of its old binding translates. */
  rewritten(table: string, pasid: number): void {
    this.entries.delete(`${table}/${pasid}`);
  }

  /** PASID-selective invalidation (page: null), or one page of it. */
  invalidate(table: string, pasid: number, page: number | null): void {
    const key = `${table}/${pasid}`;
    const s = this.entries.get(key);
    if (s === undefined || s.lingers) return;
    if (page === null) this.entries.delete(key);
    else s.cleared.push({ iova: page - (page % IOMMU_PAGE), size: IOMMU_PAGE });
  }

  /** A domain's mappings changed over [iova, iova + size): nothing cached there survives. */
  domainChanged(owner: number, domain: number, iova: number, size: number): void {
    for (const s of this.entries.values()) if (s.owner === owner && s.domain === domain && !s.lingers) s.cleared.push({ iova, size });
  }

  /** A reset of a DMA owner: its IOTLB holds nothing after. */
  resetOwner(owner: number): void {
    for (const [k, s] of this.entries) if (s.owner === owner) this.entries.delete(k);
  }

  /** The binding [iova, iova + len) of PASID `pasid` may still translate through, or null. */
  lookup(table: string, pasid: number, iova: number, len: number): PasidBinding | null {
    const s = this.entries.get(`${table}/${pasid}`);
    if (s === undefined || s.cleared.some((c) => iova < c.iova + c.size && c.iova < iova + len)) return null;
    return { domain: s.domain, stage: s.stage };
  }

  snapshot(): [string, Stale][] {
    return [...this.entries].map(([k, s]) => [k, { ...s, cleared: s.cleared.map((c) => ({ ...c })) }]);
  }

  restore(s: [string, Stale][]): void {
    this.entries.clear();
    for (const [k, v] of s) this.entries.set(k, { ...v, cleared: v.cleared.map((c) => ({ ...c })) });
  }
}
