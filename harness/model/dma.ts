/**
 * DMA address translation for one device: without an IOMMU the IOVA is the
 * guest-physical address; with one, the device's domain translates it, or,
 * for a PASID-tagged request, the domain the PASID is bound to (PCIe Base
 * §6.20; VT-d scalable mode). Faults are reasons, not exceptions.
 */
import type { PciFunction } from './function.ts';
import type { Chunk, IommuDomain } from './iommu.ts';
import type { PasidContext } from './pasid-context.ts';
import type { Reason } from '../ops/observation.ts';

export function translateDma(
  /** The domains of the device's DMA owner; undefined without an IOMMU. */
  domains: readonly IommuDomain[] | undefined,
  /** The domain the device is attached to. */
  attached: number | undefined,
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
    return domains[bound].translate(iova, len, write);
  }
  if (domains === undefined) return [{ gpa: iova, len }];
  if (attached === undefined) return 'no-domain';
  return domains[attached].translate(iova, len, write);
}
