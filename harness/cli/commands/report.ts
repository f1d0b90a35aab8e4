/** isoroot report: a campaign's run directory as one self-contained HTML page. */
import { join } from 'node:path';
import { loadRun } from '../../report/load-run.ts';
import { renderReport } from '../../report/html.ts';
import { writeFileAtomic } from '../../util/atomic.ts';
import { one, type CommandSpec, type Parsed } from '../args.ts';

export const REPORT: CommandSpec = {
  name: 'report',
  summary: 'write the HTML regression report of a campaign run, optionally against a baseline run',
  usage: 'isoroot report RUN_DIR [--baseline RUN_DIR] [--out FILE]',
  positional: { name: 'RUN_DIR', required: true, many: false },
  options: [
    { name: 'baseline', value: 'RUN_DIR', doc: 'compare with this earlier run: new, fixed and still-failing findings, throughput' },
    { name: 'out', value: 'FILE', doc: 'where to write the page (default RUN_DIR/report.html)' },
  ],
};

export async function runReport(p: Parsed, log: (s: string) => void): Promise<number> {
  const dir = p.positional[0];
  const run = await loadRun(dir);
  const b = one(p, 'baseline');
  const baseline = b === undefined ? null : await loadRun(b);
  const file = one(p, 'out') ?? join(dir, 'report.html');
  writeFileAtomic(file, renderReport(run, baseline));
  for (const w of [...run.warnings, ...(baseline?.warnings ?? [])]) log(`warning: ${w}`);
  log(`report written to ${file} (${run.findings.length} findings${baseline !== null ? `, against ${b}` : ''})`);
  return 0;
}
