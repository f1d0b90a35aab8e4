/** isoroot explain: a trace as a readable table (op, root, BDF, address, observation). */
import { readTrace } from '../../trace/reader.ts';
import { TRACE_HEAD, traceRows, type TraceRow } from '../../report/trace-table.ts';
import type { CommandSpec, Parsed } from '../args.ts';

export const EXPLAIN: CommandSpec = {
  name: 'explain',
  summary: 'print a trace as a readable table',
  usage: 'isoroot explain TRACE',
  positional: { name: 'TRACE', required: true, many: false },
  options: [],
};

export async function runExplain(p: Parsed, log: (s: string) => void): Promise<number> {
  const t = await readTrace(p.positional[0]);
  const rows = [TRACE_HEAD, ...traceRows(t.header.topology, t.steps)];
  const h = t.header;
  log(`trace of ${h.target.name}${h.target.mutant !== undefined ? ` (mutant ${h.target.mutant})` : ''} ${h.target.version}, seed ${h.seed ?? 'none'}, ${h.topology.roots.length} roots, written ${h.time} by isoroot ${h.isoroot}`);
  const keys: (keyof TraceRow)[] = ['i', 'op', 'root', 'bdf', 'addr', 'obs'];
  const w = keys.map((k) => Math.min(60, Math.max(...rows.map((r) => r[k].length))));
  for (const r of rows) log(keys.map((k, j) => (j === keys.length - 1 ? r[k] : r[k].padEnd(w[j]))).join('  ').trimEnd());
  return 0;
}
