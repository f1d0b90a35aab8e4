/** How a finding appears on a terminal. */
import type { Finding } from '../oracles/finding.ts';

export function showFinding(f: Finding): string {
  const tag = f.severity === 'notice' ? `notice ${f.kind}` : f.kind.toUpperCase();
  const lines = [`${tag} at op #${f.index}: ${f.message}`, `  signature: ${f.signature}`, `  rests on: ${f.rule.id}: ${f.rule.cites}`];
  for (const [k, v] of Object.entries(f.details ?? {})) lines.push(`  ${k}: ${v.includes('\n') ? '\n    ' + v.trim().split('\n').join('\n    ') : v}`);
  return lines.join('\n');
}
