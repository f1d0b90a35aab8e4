/** isoroot corpus add|list|mark: the regression traces of a target, with their status. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { CorpusStore } from '../../corpus/store.ts';
import { STATUSES, type CorpusStatus } from '../../corpus/meta.ts';
import { readTrace } from '../../trace/reader.ts';
import { checkRun, failureFinding, violations } from '../../run/check.ts';
import { UsageError, one, type CommandSpec, type Parsed } from '../args.ts';

export const CORPUS: CommandSpec = {
  name: 'corpus',
  summary: 'manage a corpus of regression traces: add, list, mark',
  usage: 'isoroot corpus add TRACE... --corpus DIR [--status S] [--reason R] [--name N] | corpus list --corpus DIR | corpus mark NAME --corpus DIR --status S [--reason R]',
  positional: { name: 'add|list|mark and its arguments', required: true, many: true },
  options: [
    { name: 'corpus', value: 'DIR', doc: 'the corpus folder, e.g. corpora/model' },
    { name: 'status', value: 'S', doc: `${STATUSES.join(' | ')} (add: default open)` },
    { name: 'reason', value: 'R', doc: 'why a known divergence is accepted (required for that status)' },
    { name: 'name', value: 'N', doc: 'add one trace under this name (default: its file name)' },
  ],
};

function status(p: Parsed): CorpusStatus | undefined {
  const s = one(p, 'status');
  if (s === undefined) return undefined;
  if (!(STATUSES as readonly string[]).includes(s)) throw new UsageError('corpus', `--status must be one of ${STATUSES.join(', ')}, got "${s}"`);
  return s as CorpusStatus;
}

export async function runCorpus(p: Parsed, log: (s: string) => void): Promise<number> {
  const [sub, ...args] = p.positional;
  const dir = one(p, 'corpus');
  if (dir === undefined) throw new UsageError('corpus', '--corpus DIR is required');
  const store = new CorpusStore(dir);
  switch (sub) {
    case 'add': {
      if (args.length === 0) throw new UsageError('corpus', 'corpus add needs at least one TRACE');
      if (one(p, 'name') !== undefined && args.length > 1) throw new UsageError('corpus', '--name names one trace; give one TRACE');
      const st = status(p) ?? 'open';
      for (const file of args) {
        const t = await readTrace(file);
        const name = one(p, 'name') ?? basename(file, '.jsonl');
        const meta: Parameters<CorpusStore['add']>[2] = { firstSeen: new Date().toISOString(), status: st, source: file };
        const reason = one(p, 'reason');
        if (reason !== undefined) meta.reason = reason;
        if (st === 'known-divergence' && reason === undefined) throw new UsageError('corpus', 'a known divergence needs --reason');
        // The signature of its first violation, or of the target's failure (a crash, a hang) that ended it.
        const failed = t.steps.findIndex((s) => s.failure !== undefined);
        const ran = failed < 0 ? t.steps : t.steps.slice(0, failed);
        if (ran.every((s) => s.obs !== undefined)) {
          const v = violations(checkRun(t.header.topology, t.header.target.observes, ran.map((s) => ({ op: s.op, obs: s.obs! }))));
          const first = v[0] ?? (failed < 0 ? undefined : failureFinding({ ...t.steps[failed].failure!, index: failed }, t.steps[failed].op));
          if (first !== undefined) {
            meta.signature = first.signature;
            meta.kind = first.kind;
          }
        }
        if (store.has(name)) {
          log(`${name}: already in ${dir} (${store.meta(name).status}); left as it is`);
          continue;
        }
        store.add(name, readFileSync(file, 'utf8'), meta);
        log(`${name}: added to ${dir} as ${st}${meta.signature !== undefined ? ` (${meta.signature})` : ''}`);
      }
      return 0;
    }
    case 'list': {
      const rows = store.list().map((e) => [e.meta.name, e.meta.status, e.meta.firstSeen.slice(0, 10), e.meta.signature ?? '', e.meta.reason ?? '']);
      if (rows.length === 0) {
        log(`${dir}: no traces`);
        return 0;
      }
      const head = ['name', 'status', 'first seen', 'signature', 'reason'];
      const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
      for (const r of [head, ...rows]) log(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join('  ').trimEnd());
      return 0;
    }
    case 'mark': {
      if (args.length !== 1) throw new UsageError('corpus', 'corpus mark takes one NAME');
      const st = status(p);
      if (st === undefined) throw new UsageError('corpus', 'corpus mark needs --status');
      const m = store.mark(args[0], st, one(p, 'reason'));
      log(`${m.name}: ${m.status}${m.reason !== undefined ? ` (${m.reason})` : ''}`);
      return 0;
    }
    default:
      throw new UsageError('corpus', `the first argument must be add, list or mark, got "${sub}"`);
  }
}
