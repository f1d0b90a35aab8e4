/** How findings appear on a terminal and on disk. */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { writeTrace } from '../trace/writer.ts';
import type { Step, TraceHeader } from '../trace/format.ts';
import type { Finding } from '../oracles/finding.ts';

export function showFinding(f: Finding): string {
  const tag = f.severity === 'notice' ? `notice ${f.kind}` : f.kind.toUpperCase();
  const lines = [`${tag} at op #${f.index}: ${f.message}`, `  signature: ${f.signature}`];
  for (const [k, v] of Object.entries(f.details ?? {})) lines.push(`  ${k}: ${v.includes('\n') ? '\n    ' + v.trim().split('\n').join('\n    ') : v}`);
  return lines.join('\n');
}

export const signatureHash = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 10);

/** Writes a finding's minimal trace (atomically) and returns its path. */
export function writeFindingTrace(dir: string, f: Finding, header: TraceHeader, steps: readonly Step[]): string {
  const file = join(dir, `${f.kind}-${signatureHash(f.signature)}-seed${header.seed ?? 'none'}.jsonl`);
  writeTrace(file, header, steps);
  return file;
}
