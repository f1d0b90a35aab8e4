/**
 * Known bugs recognised by behaviour. A corpus entry (open bug or known
 * divergence) may name a quirk: the model with that quirk behaves as the
 * faulty target does. A run's violations belong to the entry when the
 * quirk's model checks the same steps without a violation (and, for a
 * crash, dies at the op the target died at). The entry's signature is the
 * fallback, for entries without a quirk.
 */
import { CorpusStore } from '../corpus/store.ts';
import type { CorpusStatus } from '../corpus/meta.ts';
import { quirkNamed, QUIRKS } from '../adapters/quirk.ts';
import type { Quirk } from '../model/quirk.ts';
import { REFERENCE_RULES, type Rules } from '../model/rules.ts';
import type { TargetFailure } from '../adapters/target.ts';
import { TraceChecker, type Judge } from '../oracles/checker.ts';
import type { Op } from '../ops/catalog.ts';
import type { Observation } from '../ops/observation.ts';
import type { Topology } from '../topology/types.ts';
import { InputError } from '../util/errors.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface KnownBug {
  name: string;
  status: CorpusStatus;
  reason: string;
  signature?: string;
  quirk: Quirk | null;
}

export interface Recognised {
  /** The known bug; with `also`, the others whose quirks explain the run together with its. */
  bug: KnownBug;
  also?: KnownBug[];
  by: 'quirk' | 'signature';
}

/** The corpus folder of each target kind that keeps its known bugs. */
const KNOWN_DIRS: Readonly<Record<string, string>> = { qemu: 'qemu', 'xen-vpci': 'xen', 'vfio-guest': 'vfio-guest' };

/** Where a target's known bugs are kept by default (corpora/qemu, corpora/xen), when there is such a folder. */
export function defaultKnownDir(target: string): string | undefined {
  const kind = KNOWN_DIRS[target.split(/[:\s]/)[0]];
  if (kind === undefined) return undefined;
  const dir = join('corpora', kind);
  return existsSync(dir) ? dir : undefined;
}

/** The entries of a corpus that are not reported again: open bugs and known divergences, with their quirks. */
export function knownBugs(dir: string): KnownBug[] {
  const store = new CorpusStore(dir);
  return store
    .list()
    .filter((e) => e.meta.status === 'open' || e.meta.status === 'known-divergence')
    .map((e) => {
      const name = e.meta.quirk;
      const quirk = name === undefined ? null : (quirkNamed(name) ?? null);
      if (name !== undefined && quirk === null) throw new InputError(store.metaPath(e.meta.name), `a quirk of harness/adapters/quirk.ts (${QUIRKS.map((q) => q.name).join(', ')}), got "${name}"`);
      const bug: KnownBug = { name: e.meta.name, status: e.meta.status, reason: e.meta.reason ?? '', quirk };
      if (e.meta.signature !== undefined) bug.signature = e.meta.signature;
      return bug;
    });
}

/** Whether the model with the quirks (none: the reference model) explains the steps (and the failure) without a violation. */
export function quirkExplains(q: Quirk | readonly Quirk[], topology: Topology, judge: Judge, steps: readonly { op: Op; obs: Observation }[], failure?: TargetFailure, ops?: readonly Op[]): boolean {
  const qs = Array.isArray(q) ? (q as readonly Quirk[]) : [q as Quirk];
  const c = new TraceChecker(topology, { ...judge, rules: qs.reduce<Rules>((r, x) => ({ ...r, ...x.rules }), REFERENCE_RULES) });
  for (const s of steps) {
    c.step(s.op, s.obs);
    if (c.violations > 0 || c.model.aborted !== null) return false;
  }
  if (failure === undefined) return true;
  const op = ops?.[failure.index];
  // A crash the quirk predicts: its model dies at the op the target died at.
  if (failure.kind !== 'crash' || op === undefined) return false;
  c.model.apply(op);
  return c.model.aborted !== null;
}

/** The known bug a run's violations belong to: by quirk first, then by the signature of a violation. */
export function recognise(
  bugs: readonly KnownBug[],
  topology: Topology,
  judge: Judge,
  steps: readonly { op: Op; obs: Observation }[],
  signatures: readonly string[],
  failure?: TargetFailure,
  ops?: readonly Op[],
): Recognised | null {
  const quirky = bugs.filter((b) => b.quirk !== null);
  const explaining = quirky.filter((b) => quirkExplains(b.quirk!, topology, judge, steps, failure, ops));
  // Entries that share a quirk (one bug, two traces): the one recorded under this signature, if any.
  const bug = explaining.find((b) => b.signature !== undefined && signatures.includes(b.signature)) ?? explaining[0];
  if (bug !== undefined) return { bug, by: 'quirk' };
  // Two known bugs at once (a window that survived a reset, then a line routed wrong): their quirks together.
  for (let i = 0; i < quirky.length; i++)
    for (let j = i + 1; j < quirky.length; j++)
      if (quirky[i].quirk!.name !== quirky[j].quirk!.name && quirkExplains([quirky[i].quirk!, quirky[j].quirk!], topology, judge, steps, failure, ops)) return { bug: quirky[i], also: [quirky[j]], by: 'quirk' };
  // More at once (a campaign's chained runs meet several): all of them, then as few as still explain the run.
  const distinct = [...new Map(quirky.map((b) => [b.quirk!.name, b])).values()];
  if (distinct.length > 2 && quirkExplains(distinct.map((b) => b.quirk!), topology, judge, steps, failure, ops)) {
    let need = distinct;
    for (const b of distinct) {
      const without = need.filter((x) => x !== b);
      if (quirkExplains(without.map((x) => x.quirk!), topology, judge, steps, failure, ops)) need = without;
    }
    if (need.length > 0) return { bug: need[0], also: need.slice(1), by: 'quirk' };
  }
  for (const s of signatures) {
    const r = bySignature(bugs, s);
    // A signature names its bug, not the rest of the run: with other violations, the steps the target answered must be
    // explained too (by the specifications or a known quirk), else a new bug would hide behind a known crash.
    if (r !== null && (signatures.every((x) => x === s) || stepsExplained(quirky, topology, judge, steps))) return r;
  }
  return null;
}

/** Whether the answered steps (without the failure) break no rule: on the reference model, with one known quirk, or with every known quirk at once (the target as its known bugs describe it). */
function stepsExplained(quirky: readonly KnownBug[], topology: Topology, judge: Judge, steps: readonly { op: Op; obs: Observation }[]): boolean {
  if (quirkExplains([], topology, judge, steps) || quirky.some((b) => quirkExplains(b.quirk!, topology, judge, steps))) return true;
  const all = [...new Map(quirky.map((b) => [b.quirk!.name, b.quirk!])).values()];
  return all.length > 1 && quirkExplains(all, topology, judge, steps);
}

/**
 * The fallback: an entry without a quirk whose recorded signature this is (a quirk is the whole description of its
 * entry). A crash is its message: the same assertion or domain_crash() site reached from another op is the same bug.
 */
export function bySignature(bugs: readonly KnownBug[], signature: string): Recognised | null {
  const site = crashSite(signature);
  const bug = bugs.find((b) => b.quirk === null && b.signature !== undefined && (b.signature === signature || (site !== null && crashSite(b.signature) === site)));
  return bug === undefined ? null : { bug, by: 'signature' };
}

/** What a crash signature says of where the target died (`crash:<op>:<message>` without its op), null for other kinds. */
function crashSite(signature: string): string | null {
  const m = /^crash:[^:]+:(.+)$/.exec(signature);
  return m === null ? null : m[1];
}
