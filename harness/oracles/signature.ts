/** A short, stable name for a finding signature, used in file names. */
import { createHash } from 'node:crypto';

export const signatureHash = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 10);
