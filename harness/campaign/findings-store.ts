/**
 * The findings of a campaign: one per signature, each a minimal trace and
 * its record, written atomically before anyone prints them. When two
 * workers find the same signature, the one from the earlier run is kept,
 * so the final set does not depend on which worker reported first.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.ts';
import { signatureHash } from '../oracles/signature.ts';
import type { FindingRecord } from '../oracles/finding.ts';
import { CorpusStore } from '../corpus/store.ts';

export interface CampaignFinding extends FindingRecord {
  /** Global run index that exposed it (lower wins between equal signatures). */
  run: number;
  stream: number;
  /** How the failing sequence was made. */
  origin: 'fresh' | 'mutated';
  /** Operations in the minimal trace. */
  ops: number;
}

export type Offer = 'new' | 'replaced' | 'kept';

export class FindingsStore {
  private readonly known = new Map<string, CampaignFinding>();
  private readonly corpus: CorpusStore | null;

  constructor(
    readonly dir: string,
    corpusDir?: string,
    private readonly source = '',
  ) {
    this.corpus = corpusDir === undefined ? null : new CorpusStore(corpusDir);
    if (existsSync(dir))
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.finding.json')).sort()) {
        const rec = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CampaignFinding;
        this.known.set(rec.signature, rec);
      }
  }

  get signatures(): string[] {
    return [...this.known.keys()];
  }

  all(): CampaignFinding[] {
    return [...this.known.values()].sort((a, b) => a.run - b.run);
  }

  static stem(f: { kind: string; signature: string }): string {
    return `${f.kind}-${signatureHash(f.signature)}`;
  }

  /** Records a finding unless one with its signature from an earlier run is kept. Writes happen here, before the caller prints. */
  offer(f: Omit<CampaignFinding, 'trace'>, traceText: string): Offer {
    const prev = this.known.get(f.signature);
    if (prev !== undefined && (prev.run < f.run || (prev.run === f.run && prev.stream <= f.stream))) return 'kept';
    const stem = FindingsStore.stem(f);
    const rec: CampaignFinding = { ...f, trace: `${stem}.jsonl` };
    writeFileAtomic(join(this.dir, `${stem}.jsonl`), traceText);
    writeJsonAtomic(join(this.dir, `${stem}.finding.json`), rec);
    this.corpus?.add(stem, traceText, { firstSeen: new Date().toISOString(), status: 'open', signature: f.signature, kind: f.kind, source: this.source }, false);
    this.known.set(f.signature, rec);
    return prev === undefined ? 'new' : 'replaced';
  }
}
