/** Turns --target, --mutant and --timeout into a target. */
import { modelTarget } from '../adapters/model/target.ts';
import { openExecTarget } from '../adapters/exec/target.ts';
import type { Target } from '../adapters/target.ts';
import { UsageError } from './args.ts';

export interface OpenedTarget {
  target: Target;
  dispose(): Promise<void>;
}

export const TARGET_HELP = 'model | exec:<command>';

export async function selectTarget(command: string, spec: string, mutant: string | undefined, timeoutMs: number | undefined): Promise<OpenedTarget> {
  if (spec === 'model') return { target: modelTarget(mutant), dispose: async () => {} };
  if (mutant !== undefined) throw new UsageError(command, '--mutant applies to --target model only');
  if (spec.startsWith('exec:')) {
    const cmd = spec.slice(5).trim();
    if (cmd === '') throw new UsageError(command, '--target exec: needs a command, e.g. exec:"python3 my_target.py"');
    const t = await openExecTarget(cmd, timeoutMs === undefined ? {} : { timeoutMs });
    return { target: t, dispose: () => t.dispose() };
  }
  throw new UsageError(command, `--target must be ${TARGET_HELP}, got "${spec}"`);
}
