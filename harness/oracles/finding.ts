/** Findings: what the oracles report. */
import { RULES, type RuleId } from '../spec/rules.ts';

/** platform: an event of the platform worth knowing (a power-off), always a notice. */
export const FINDING_KINDS = ['misroute', 'collision', 'leak', 'divergence', 'crash', 'hang', 'protocol', 'platform'] as const;
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
  /** What the finding rests on: a rule of the specifications (harness/spec/rules.ts) or a profile's entry. */
  rule: FindingRule;
}

/**
 * A rule as a finding names it. id: a rule of the rule book ("header.bar"),
 * or a profile's entry ("profile qemu-7.2: memory.unassigned-read").
 */
export interface FindingRule {
  id: string;
  /** Where it is written: the section, or the profile entry and why the implementation makes that choice. */
  cites: string;
}

export const specRule = (id: RuleId): FindingRule => ({ id, cites: RULES[id].cites });

/** A finding as stored on disk, beside the trace that reproduces it. */
export interface FindingRecord extends Finding {
  /** File name of the minimal trace, in the same folder. */
  trace: string;
}
