/** A corpus folder: traces (`<name>.jsonl`) and their metadata (`<name>.meta.json`). */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InputError } from '../util/errors.ts';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.ts';
import { parseMeta, type CorpusMeta, type CorpusStatus } from './meta.ts';

export interface CorpusEntry {
  meta: CorpusMeta;
  trace: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export class CorpusStore {
  constructor(readonly dir: string) {}

  tracePath(name: string): string {
    return join(this.dir, `${name}.jsonl`);
  }
  metaPath(name: string): string {
    return join(this.dir, `${name}.meta.json`);
  }

  has(name: string): boolean {
    return existsSync(this.tracePath(name));
  }

  /** Every trace with its metadata, by name. A trace without metadata counts as open, first seen unknown. */
  list(): CorpusEntry[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.jsonl'))
      .sort()
      .map((f) => {
        const name = basename(f, '.jsonl');
        return { meta: this.meta(name), trace: join(this.dir, f) };
      });
  }

  /**
   * Signatures a campaign does not report again: the target's known
   * divergences, and its open bugs already recorded here (the gate tracks
   * those until they are fixed).
   */
  knownSignatures(): string[] {
    return this.list()
      .filter((e) => (e.meta.status === 'known-divergence' || e.meta.status === 'open') && e.meta.signature !== undefined)
      .map((e) => e.meta.signature!);
  }

  meta(name: string): CorpusMeta {
    const file = this.metaPath(name);
    if (!existsSync(file)) return { name, firstSeen: 'unknown', status: 'open' };
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new InputError(file, `valid JSON (${(e as Error).message})`);
    }
    return parseMeta(file, json);
  }

  /** Adds a trace (its text) under a name; an existing entry keeps its metadata unless `replace`. */
  add(name: string, traceText: string, meta: Omit<CorpusMeta, 'name'>, replace = false): CorpusMeta {
    if (!NAME.test(name)) throw new InputError(name, 'a corpus name of letters, digits, dot, dash or underscore');
    if (this.has(name) && !replace) return this.meta(name);
    const m: CorpusMeta = { name, ...meta };
    writeFileAtomic(this.tracePath(name), traceText);
    writeJsonAtomic(this.metaPath(name), m);
    return m;
  }

  mark(name: string, status: CorpusStatus, reason: string | undefined): CorpusMeta {
    if (!this.has(name)) throw new InputError(this.tracePath(name), `a trace in the corpus (known: ${this.list().map((e) => e.meta.name).join(', ') || 'none'})`);
    if (status === 'known-divergence' && (reason ?? '').trim() === '') throw new InputError('--reason', 'a reason: a known divergence must say why it is accepted');
    const m: CorpusMeta = { ...this.meta(name), status };
    if (reason !== undefined) m.reason = reason;
    else delete m.reason;
    writeJsonAtomic(this.metaPath(name), m);
    return m;
  }
}
