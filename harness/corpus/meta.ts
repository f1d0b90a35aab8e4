/**
 * Corpus metadata: each trace in corpora/<target>/ has a sidecar
 * `<name>.meta.json` saying when it was first seen and its status:
 *   open              a finding not yet fixed: replaying it is expected to fail;
 *   fixed             must replay clean: failing again is a regression;
 *   known-divergence  the target differs from the model on purpose or by
 *                     accepted limitation; `reason` says why, and the
 *                     divergence must keep its signature.
 */
import { JsonReader } from '../util/json-read.ts';

export const STATUSES = ['open', 'fixed', 'known-divergence'] as const;
export type CorpusStatus = (typeof STATUSES)[number];

export interface CorpusMeta {
  name: string;
  /** ISO 8601. */
  firstSeen: string;
  status: CorpusStatus;
  /** Why a known divergence is accepted (required for that status). */
  reason?: string;
  /** The finding's signature, when the trace came from a finding. */
  signature?: string;
  kind?: string;
  /** Where the trace came from: a campaign run directory, a file, a hand. */
  source?: string;
  /**
   * The known bug as a variant of the model (harness/adapters/quirk.ts):
   * a finding whose trace the model with this quirk explains is this
   * entry seen again, whatever its signature.
   */
  quirk?: string;
}

export function parseMeta(file: string, v: unknown): CorpusMeta {
  const r = new JsonReader((p) => `${file}: ${p}`);
  const o = r.object('meta', v);
  r.only('meta', o, ['name', 'firstSeen', 'status', 'reason', 'signature', 'kind', 'source', 'quirk']);
  const m: CorpusMeta = { name: r.string('meta.name', o.name), firstSeen: r.string('meta.firstSeen', o.firstSeen), status: r.oneOf('meta.status', o.status, STATUSES) };
  for (const k of ['reason', 'signature', 'kind', 'source', 'quirk'] as const) if (o[k] !== undefined) m[k] = r.string(`meta.${k}`, o[k]);
  if (m.status === 'known-divergence' && (m.reason ?? '').trim() === '') r.fail('meta.reason', 'a reason for a known divergence');
  return m;
}
