/** Turns a target spec (`model`, `exec:<command>`), a mutant and a timeout into a target. */
import { modelTarget } from './model/target.ts';
import { MUTANT_NAMES } from './model/mutants.ts';
import { openExecTarget } from './exec/target.ts';
import type { Target } from './target.ts';
import { InputError } from '../util/errors.ts';

export interface OpenedTarget {
  target: Target;
  dispose(): Promise<void>;
}

export const TARGET_HELP = 'model | exec:<command>';

/** Checks a target spec without starting anything; returns what is wrong, or null. */
export function targetSpecProblem(spec: string, mutant: string | undefined): string | null {
  if (spec === 'model') return mutant === undefined || MUTANT_NAMES.includes(mutant) ? null : `--mutant: one of ${MUTANT_NAMES.join(', ')} (got "${mutant}")`;
  if (mutant !== undefined) return '--mutant applies to --target model only';
  if (spec.startsWith('exec:')) return spec.slice(5).trim() === '' ? '--target exec: needs a command, e.g. exec:"python3 my_target.py"' : null;
  return `--target must be ${TARGET_HELP}, got "${spec}"`;
}

export async function selectTarget(command: string, spec: string, mutant: string | undefined, timeoutMs: number | undefined): Promise<OpenedTarget> {
  const problem = targetSpecProblem(spec, mutant);
  if (problem !== null) throw new InputError(`isoroot ${command}`, problem);
  if (spec === 'model') return { target: modelTarget(mutant), dispose: async () => {} };
  const t = await openExecTarget(spec.slice(5).trim(), timeoutMs === undefined ? {} : { timeoutMs });
  return { target: t, dispose: () => t.dispose() };
}
