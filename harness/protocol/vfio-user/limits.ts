/**
 * The limits in force after VERSION negotiation.
 */
import { type Limits, type VersionCaps } from './messages.ts';

/** The limits after VERSION negotiation: min of ours and theirs per the specification, defaults where absent. */
export function negotiatedLimits(ours: VersionCaps, theirs: VersionCaps): Limits {
  // "Version": max_msg_fds defaults to 1, max_data_xfer_size to 1048576.
  const fds = Math.min(ours.maxMsgFds ?? 1, theirs.maxMsgFds ?? 1);
  const xfer = Math.min(ours.maxDataXferSize ?? 1 << 20, theirs.maxDataXferSize ?? 1 << 20);
  // Messages other than data transfers (capabilities, bitmaps, JSON) keep the default room.
  return { maxMsgFds: fds, maxDataXferSize: xfer, maxMessage: Math.max(xfer, 1 << 20) + 4096 };
}
