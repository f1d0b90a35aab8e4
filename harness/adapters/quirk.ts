/**
 * Quirks: a target's known bugs as executable variants of the model, in
 * the manner of the mutants (harness/adapters/model/mutants.ts). A corpus
 * entry names its quirk; a finding whose trace the model with that quirk
 * explains without a violation is that known bug seen again, whatever its
 * signature.
 */
import { REFERENCE_RULES, type Rules } from '../model/rules.ts';
import { QEMU_QUIRKS } from './qemu/quirks.ts';

export interface Quirk {
  name: string;
  /** The faulty behaviour, and where in the target's source it comes from. */
  describes: string;
  rules: Partial<Rules>;
}

export const QUIRKS: readonly Quirk[] = [...QEMU_QUIRKS];

export const quirkNamed = (name: string): Quirk | undefined => QUIRKS.find((q) => q.name === name);

export const quirkRules = (q: Quirk): Rules => ({ ...REFERENCE_RULES, ...q.rules });
