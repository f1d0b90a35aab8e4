/** Findings: what the oracles report. */
export const FINDING_KINDS = ['misroute', 'collision', 'leak', 'divergence', 'crash', 'hang', 'protocol'] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

export interface Finding {
  kind: FindingKind;
  /**
   * Stable across runs and addresses: kind, operation and the shape of the
   * fault, so that findings de-duplicate by it.
   */
  signature: string;
  /** Index of the operation that exposed it. */
  index: number;
  /** One sentence in domain words: which root, device, BAR, address. */
  message: string;
  /**
   * violation: the run fails. notice: worth knowing, not a failure (for
   * example two BARs of one root overlapping, which the guest programmed).
   */
  severity: 'violation' | 'notice';
  /** Supporting facts (expected and observed, for instance). */
  details?: Record<string, string>;
}

/** A finding as stored on disk, beside the trace that reproduces it. */
export interface FindingRecord extends Finding {
  /** File name of the minimal trace, in the same folder. */
  trace: string;
}
