/**
 * The known bugs a campaign saw again (harness/run/known.ts): counted
 * apart from its findings, each with the signatures it showed up under
 * and the trace of its first sighting, written before anyone prints them.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.ts';

export interface KnownSighting {
  name: string;
  /** The corpus entry's status and why it is known. */
  status: string;
  reason: string;
  /** Runs in which it was seen. */
  count: number;
  /** The signatures its violations carried. */
  signatures: string[];
  /** How it was recognised the first time: by its quirk, or by its recorded signature. */
  by: 'quirk' | 'signature';
  firstRun: number;
  /** File name of the trace of its first sighting, in the same folder. */
  trace?: string;
}

export class KnownStore {
  private readonly seen = new Map<string, KnownSighting>();
  /** (run, name) pairs counted, so that several violations of one run count once. */
  private readonly runs = new Set<string>();

  constructor(readonly dir: string) {
    if (existsSync(dir))
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.known.json')).sort()) {
        const k = JSON.parse(readFileSync(join(dir, f), 'utf8')) as KnownSighting;
        this.seen.set(k.name, k);
      }
  }

  all(): KnownSighting[] {
    return [...this.seen.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Counts a sighting; true the first time this bug is seen in the campaign. */
  record(s: { name: string; status: string; reason: string; by: 'quirk' | 'signature'; signature: string; run: number; stream: number; traceText?: string }): boolean {
    let k = this.seen.get(s.name);
    const first = k === undefined;
    if (k === undefined) {
      k = { name: s.name, status: s.status, reason: s.reason, count: 0, signatures: [], by: s.by, firstRun: s.run };
      this.seen.set(s.name, k);
    }
    const key = `${s.stream}:${s.run}:${s.name}`;
    if (!this.runs.has(key)) {
      this.runs.add(key);
      k.count++;
    }
    if (!k.signatures.includes(s.signature)) k.signatures.push(s.signature);
    if (s.traceText !== undefined && (k.trace === undefined || s.run < k.firstRun)) {
      k.trace = `${s.name}.jsonl`;
      k.firstRun = s.run;
      writeFileAtomic(join(this.dir, k.trace), s.traceText);
    }
    writeJsonAtomic(join(this.dir, `${s.name}.known.json`), k);
    return first;
  }
}
