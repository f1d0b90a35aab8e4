/** isoroot merge: the run directories of a sharded campaign, merged into one (for one report). */
import { mergeRuns } from '../../campaign/merge.ts';
import { UsageError, one, type CommandSpec, type Parsed } from '../args.ts';

export const MERGE: CommandSpec = {
  name: 'merge',
  summary: 'merge the run directories of a sharded campaign into one',
  usage: 'isoroot merge RUN_DIR... --out RUN_DIR [--corpus DIR]',
  positional: { name: 'RUN_DIR', required: true, many: true },
  options: [
    { name: 'out', value: 'RUN_DIR', doc: 'the merged run directory (new)' },
    { name: 'corpus', value: 'DIR', doc: 'also add the merged findings to this corpus (status open)' },
  ],
};

export async function runMerge(p: Parsed, log: (s: string) => void): Promise<number> {
  const out = one(p, 'out');
  if (out === undefined) throw new UsageError('merge', '--out RUN_DIR is required');
  const r = mergeRuns(p.positional, out, one(p, 'corpus'));
  for (const w of r.warnings) log(`warning: ${w}`);
  const s = r.summary;
  log(`merged ${p.positional.length} runs into ${out}: ${s.runs} sequences, ${s.ops} operations, coverage ${s.covered}/${s.total}, ${s.findings.length} findings`);
  log(`report: isoroot report ${out}`);
  return s.findings.length > 0 ? 1 : 0;
}
