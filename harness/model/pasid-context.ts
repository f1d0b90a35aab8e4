/**
 * A PASID context: the namespace in which PASIDs are allocated, shared by
 * the devices attached to it (the "SVM context" / IOMMU context of the
 * original discussion, seeds/004). Alloc and free happen on the context;
 * each device binds a PASID to an address space (an IOMMU domain).
 * PASID 0 is not handed out: VT-d reserves it for requests without PASID
 * (VT-d 3.x §9.6, RID_PASID).
 *
 * Under VT-d scalable mode a context is one PASID table that its devices'
 * context entries all point to (§9.4): a binding is then the table's, seen
 * by every device of the context, whichever device made it (`shared`).
 */
import type { Reason } from '../ops/observation.ts';

export const PASID_MAX = 0xfffff;

/** Which stage of the domain's tables a PASID entry uses (VT-d §9.6 PGTT); second: the IOMMU's own format. */
export type Stage = 'first' | 'second';

export interface PasidBinding {
  domain: number;
  stage: Stage;
}

/**
 * The stage a binding takes on an IOMMU offering `offers`: the one asked
 * for if offered (else null: software reads ECAP and does not ask), by
 * default second-stage where offered.
 */
export function stageOffered(offers: 'first' | 'second' | 'both', asked: Stage | undefined): Stage | null {
  if (asked === undefined) return offers === 'first' ? 'first' : 'second';
  return offers === 'both' || offers === asked ? asked : null;
}

/** The binding key of the whole table, when it is shared. */
const TABLE = '*';

export class PasidContext {
  private allocated = new Set<number>();
  private freed = new Set<number>();
  /** device id (or TABLE) → pasid → binding */
  private bindings = new Map<string, Map<number, PasidBinding>>();
  /** (device, pasid) pairs that were bound once. */
  private everBound = new Set<string>();

  constructor(
    readonly key: string,
    readonly shared = false,
  ) {}

  private holder(dev: string): string {
    return this.shared ? TABLE : dev;
  }

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

  bind(dev: string, p: number, b: PasidBinding): Reason | null {
    if (!this.allocated.has(p)) return 'invalid-pasid';
    const h = this.holder(dev);
    let m = this.bindings.get(h);
    if (m === undefined) this.bindings.set(h, (m = new Map()));
    if (m.has(p)) return 'bound';
    m.set(p, b);
    this.everBound.add(`${h}/${p}`);
    return null;
  }

  /** Unbinds p for dev; the binding it had, or why there was none. */
  unbind(dev: string, p: number): PasidBinding | Reason {
    const m = this.bindings.get(this.holder(dev));
    const b = m?.get(p);
    if (m === undefined || b === undefined) return 'not-bound';
    m.delete(p);
    return b;
  }

  /** What p is bound to for dev, or the reason DMA with p faults. */
  lookup(dev: string, p: number): PasidBinding | Reason {
    const b = this.bindings.get(this.holder(dev))?.get(p);
    if (b !== undefined) return b;
    return this.freed.has(p) ? 'pasid-freed' : 'pasid-unbound';
  }

  /** Holders of a binding of p now: devices, or the shared table ("*"). */
  boundBy(p: number): string[] {
    return [...this.bindings].filter(([, m]) => m.has(p)).map(([d]) => d);
  }

  /** The bindings free(p, true) would remove: for the stale translations they leave. */
  bindingsOf(p: number): PasidBinding[] {
    return [...this.bindings.values()].flatMap((m) => m.get(p) ?? []);
  }

  wasBound(dev: string, p: number): boolean {
    return this.everBound.has(`${this.holder(dev)}/${p}`);
  }

  wasFreed(p: number): boolean {
    return this.freed.has(p);
  }

  /** Drops everything a device holds (unplug); a shared table's bindings stay with the table. */
  forget(dev: string): void {
    if (!this.shared) this.bindings.delete(dev);
  }

  clear(): void {
    for (const p of this.allocated) this.freed.add(p);
    this.allocated.clear();
    this.bindings.clear();
  }

  snapshot(): unknown {
    return {
      shared: this.shared,
      allocated: [...this.allocated],
      freed: [...this.freed],
      bindings: [...this.bindings].map(([d, m]) => [d, [...m]]),
      everBound: [...this.everBound],
    };
  }

  restore(s: unknown): void {
    const x = s as { allocated: number[]; freed: number[]; bindings: [string, [number, PasidBinding][]][]; everBound: string[] };
    this.allocated = new Set(x.allocated);
    this.freed = new Set(x.freed);
    this.bindings = new Map(x.bindings.map(([d, m]) => [d, new Map(m.map(([p, b]) => [p, { ...b }]))]));
    this.everBound = new Set(x.everBound);
  }
}
