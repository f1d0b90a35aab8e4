/**
 * DMA address translation for one device: without an IOMMU the IOVA is the
 * guest-physical address; with one, the device's domain translates it, or,
 * for a PASID-tagged request, the domain the PASID is bound to (PCIe Base
 * §6.20; VT-d scalable mode). Faults are reasons, not exceptions.
 */
import type { PciFunction } from './function.ts';
import type { Chunk, IommuDomain } from './iommu.ts';
import type { PasidBinding, PasidContext } from './pasid-context.ts';
import type { Reason } from '../ops/observation.ts';

/** How a request without a PASID is translated: through this binding, or, without one, it faults for `missing`. */
export interface Untagged {
  binding: PasidBinding | undefined;
  /** no-domain (attached to none), or pasid-unbound (VT-d scalable mode: RID_PASID's entry not present). */
  missing: Reason;
}

export function translateDma(
  /** The domains of the device's DMA owner; undefined without an IOMMU. */
  domains: readonly IommuDomain[] | undefined,
  untagged: Untagged,
  context: () => PasidContext | null,
  fn: PciFunction,
  iova: number,
  len: number,
  write: boolean,
  pasid: number | undefined,
): Chunk[] | Reason {
  if (pasid !== undefined) {
    if (domains === undefined || fn.caps.pasid === undefined) return 'no-pasid-support';
    if (!fn.pasidEnabled) return 'pasid-disabled';
    if (pasid >= 2 ** fn.caps.pasid.width) return 'pasid-range';
    const ctx = context();
    if (ctx === null) return 'pasid-unbound';
    const bound = ctx.lookup(fn.id, pasid);
    if (typeof bound === 'string') return bound;
    return domains[bound.domain].translate(iova, len, write, bound.stage);
  }
  if (domains === undefined) return [{ gpa: iova, len }];
  const b = untagged.binding;
  if (b === undefined) return untagged.missing;
  return domains[b.domain].translate(iova, len, write, b.stage);
}
