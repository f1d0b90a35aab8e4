/**
 * isoroot's word for each errno a VFIO refusal carries, one table for the
 * model's predictions and the target's observations, so that comparing
 * reasons compares what the kernel said.
 */
import type { Reason } from '../../ops/observation.ts';

const REASON_OF: Record<string, Reason> = {
  EBUSY: 'busy',
  EINVAL: 'invalid',
  EPERM: 'not-viable',
  ENODEV: 'no-device',
  ENOENT: 'no-file',
  EEXIST: 'exists',
  EBADF: 'not-held',
  EIO: 'not-decoding',
};

export const vfioReason = (errno: string): Reason => REASON_OF[errno] ?? 'errno';
