/**
 * How a refused request reads on the wire. The specification leaves the
 * errno of a failed request to the server ("Header": Error); isoroot's
 * reference server answers with the Linux errno that VFIO type-1 gives for
 * the same refusal, and the client reads them back into the model's
 * reasons. A foreign server's other errnos stay visible as "error" with no
 * reason the model predicts.
 */
import type { Reason } from '../../ops/observation.ts';
import { ERRNO } from '../../spec/errno.ts';


/** The refusals of DMA_MAP and DMA_UNMAP (VFIO type-1: vfio_dma_do_map / vfio_dma_do_unmap). */
const DMA: Partial<Record<Reason, number>> = {
  align: ERRNO.EINVAL,
  exists: ERRNO.EEXIST,
  partial: ERRNO.EBUSY,
  'not-mapped': ERRNO.ENOENT,
  'no-domain': ERRNO.ENODEV,
  unsupported: ERRNO.ENOTSUP,
  exhausted: ERRNO.ENOSPC,
};

/** The refusals of REGION_READ and REGION_WRITE (vfio-pci's region read/write; E2BIG for more than a message carries). */
const REGION: Partial<Record<Reason, number>> = {
  'past-end': ERRNO.EINVAL,
  'no-region': ERRNO.ENOENT,
  'read-only': ERRNO.EPERM,
  'not-decoding': ERRNO.EIO,
  'too-large': ERRNO.E2BIG,
};

export type Refused = 'dma' | 'region';
const TABLES: Record<Refused, Partial<Record<Reason, number>>> = { dma: DMA, region: REGION };

export const errnoOf = (what: Refused, reason: Reason | undefined): number => (reason === undefined ? ERRNO.EINVAL : (TABLES[what][reason] ?? ERRNO.EINVAL));

export function reasonOf(what: Refused, errno: number): Reason | undefined {
  for (const [r, n] of Object.entries(TABLES[what])) if (n === errno) return r as Reason;
  return undefined;
}
