/**
 * How a refused request reads on the wire. The specification leaves the
 * errno of a failed request to the server ("Header": Error); isoroot's
 * reference server answers with the Linux errno that VFIO type-1 gives for
 * the same refusal, and the client reads them back into the model's
 * reasons. A foreign server's other errnos stay visible as "error" with no
 * reason the model predicts.
 */
import type { Reason } from '../../ops/observation.ts';

export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  ERANGE: 34,
  ENOTSUP: 95,
} as const;

const NAMES = new Map<number, string>(Object.entries(ERRNO).map(([k, v]) => [v, k]));
export const errnoName = (n: number): string => `${NAMES.get(n) ?? 'errno'}(${n})`;

/** The refusals of DMA_MAP and DMA_UNMAP (VFIO type-1: vfio_dma_do_map / vfio_dma_do_unmap). */
const BY_REASON: Partial<Record<Reason, number>> = {
  align: ERRNO.EINVAL,
  exists: ERRNO.EEXIST,
  partial: ERRNO.EBUSY,
  'not-mapped': ERRNO.ENOENT,
  'no-domain': ERRNO.ENODEV,
  unsupported: ERRNO.ENOTSUP,
  exhausted: ERRNO.ENOSPC,
};

export const errnoOf = (reason: Reason | undefined): number => (reason === undefined ? ERRNO.EINVAL : (BY_REASON[reason] ?? ERRNO.EINVAL));

export function reasonOf(errno: number): Reason | undefined {
  for (const [r, n] of Object.entries(BY_REASON)) if (n === errno) return r as Reason;
  return undefined;
}
