/**
 * A quirk: a target's known bug as an executable variant of the model, in
 * the manner of the mutants: the rules it replaces (rules.ts). The
 * targets' quirks are listed in harness/adapters/quirk.ts.
 */
import type { Rules } from './rules.ts';

export interface Quirk {
  name: string;
  /** The faulty behaviour, and where in the target's source it comes from. */
  describes: string;
  rules: Partial<Rules>;
}
