/**
 * A PASID context: the namespace in which PASIDs are allocated, shared by
 * the devices attached to it (the "SVM context" / IOMMU context of the
 * original discussion, seeds/004). Alloc and free happen on the context;
 * each device binds a PASID to an address space (an IOMMU domain).
 * PASID 0 is not handed out: VT-d reserves it for requests without PASID
 * (VT-d 3.x §9.6, RID_PASID).
 */
import type { Reason } from '../ops/observation.ts';

export const PASID_MAX = 0xfffff;

export class PasidContext {
  private allocated = new Set<number>();
  private freed = new Set<number>();
  /** device id → pasid → domain index */
  private bindings = new Map<string, Map<number, number>>();
  /** (device, pasid) pairs that were bound once. */
  private everBound = new Set<string>();

  constructor(readonly key: string) {}

  alloc(): number | Reason {
    for (let p = 1; p <= PASID_MAX; p++) {
      if (!this.allocated.has(p)) {
        this.allocated.add(p);
        this.freed.delete(p);
        return p;
      }
    }
    return 'exhausted';
  }

  isAllocated(p: number): boolean {
    return this.allocated.has(p);
  }

  /** Frees p; with `unbind`, every device's binding of p goes too (the owner is gone). */
  free(p: number, unbind: boolean): Reason | null {
    if (!this.allocated.has(p)) return 'invalid-pasid';
    this.allocated.delete(p);
    this.freed.add(p);
    if (unbind) for (const m of this.bindings.values()) m.delete(p);
    return null;
  }

  bind(dev: string, p: number, domain: number): Reason | null {
    if (!this.allocated.has(p)) return 'invalid-pasid';
    let m = this.bindings.get(dev);
    if (m === undefined) this.bindings.set(dev, (m = new Map()));
    if (m.has(p)) return 'bound';
    m.set(p, domain);
    this.everBound.add(`${dev}/${p}`);
    return null;
  }

  unbind(dev: string, p: number): Reason | null {
    const m = this.bindings.get(dev);
    if (m === undefined || !m.has(p)) return 'not-bound';
    m.delete(p);
    return null;
  }

  /** The domain p is bound to for dev, or the reason DMA with p faults. */
  lookup(dev: string, p: number): number | Reason {
    const d = this.bindings.get(dev)?.get(p);
    if (d !== undefined) return d;
    return this.freed.has(p) ? 'pasid-freed' : 'pasid-unbound';
  }

  /** Devices that have p bound now. */
  boundBy(p: number): string[] {
    return [...this.bindings].filter(([, m]) => m.has(p)).map(([d]) => d);
  }

  wasBound(dev: string, p: number): boolean {
    return this.everBound.has(`${dev}/${p}`);
  }

  wasFreed(p: number): boolean {
    return this.freed.has(p);
  }

  /** Drops everything a device holds (unplug). */
  forget(dev: string): void {
    this.bindings.delete(dev);
  }

  clear(): void {
    for (const p of this.allocated) this.freed.add(p);
    this.allocated.clear();
    this.bindings.clear();
  }

  snapshot(): unknown {
    return {
      allocated: [...this.allocated],
      freed: [...this.freed],
      bindings: [...this.bindings].map(([d, m]) => [d, [...m]]),
      everBound: [...this.everBound],
    };
  }

  restore(s: unknown): void {
    const x = s as { allocated: number[]; freed: number[]; bindings: [string, [number, number][]][]; everBound: string[] };
    this.allocated = new Set(x.allocated);
    this.freed = new Set(x.freed);
    this.bindings = new Map(x.bindings.map(([d, m]) => [d, new Map(m)]));
    this.everBound = new Set(x.everBound);
  }
}
