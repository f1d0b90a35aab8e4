/**
 * Quirks: a target's known bugs as executable variants of the model, in
 * the manner of the mutants (harness/adapters/model/mutants.ts). A corpus
 * entry names its quirk; a finding whose trace the model with that quirk
 * explains without a violation is that known bug seen again, whatever its
 * signature.
 */
import type { Quirk } from '../model/quirk.ts';
import { QEMU_QUIRKS } from './qemu/quirks.ts';
import { XEN_QUIRKS } from './xen/quirks.ts';

export const QUIRKS: readonly Quirk[] = [...QEMU_QUIRKS, ...XEN_QUIRKS];

export const quirkNamed = (name: string): Quirk | undefined => QUIRKS.find((q) => q.name === name);
