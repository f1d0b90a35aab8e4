/** How findings appear on a terminal and on disk. */
import { basename, join } from 'node:path';
import { writeJsonAtomic } from '../util/atomic.ts';
import { signatureHash } from '../oracles/signature.ts';
import { writeTrace } from '../trace/writer.ts';
import type { Step, TraceHeader } from '../trace/format.ts';
import type { Finding, FindingRecord } from '../oracles/finding.ts';

export function showFinding(f: Finding): string {
  const tag = f.severity === 'notice' ? `notice ${f.kind}` : f.kind.toUpperCase();
  const lines = [`${tag} at op #${f.index}: ${f.message}`, `  signature: ${f.signature}`];
  for (const [k, v] of Object.entries(f.details ?? {})) lines.push(`  ${k}: ${v.includes('\n') ? '\n    ' + v.trim().split('\n').join('\n    ') : v}`);
  return lines.join('\n');
}

/**
 * Writes a finding's minimal trace and, beside it, the finding itself
 * (`.finding.json`), each through a temporary file and a rename. Returns
 * the trace's path.
 */
export function writeFindingTrace(dir: string, f: Finding, header: TraceHeader, steps: readonly Step[]): string {
  const stem = join(dir, `${f.kind}-${signatureHash(f.signature)}-seed${header.seed ?? 'none'}`);
  const file = `${stem}.jsonl`;
  writeTrace(file, header, steps);
  const record: FindingRecord = { ...f, trace: basename(file) };
  writeJsonAtomic(`${stem}.finding.json`, record);
  return file;
}
