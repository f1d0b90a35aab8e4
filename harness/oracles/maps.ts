/**
 * maps: the target's own flat views (evidence after an op, such as QEMU's
 * `info mtree -f`) held against the model's after the same op.
 * - A range the target maps where the model decodes nothing is a leak:
 *   a stale BAR or window mapping if some function decoded there before,
 *   otherwise an unexpected mapping.
 * - A range the target gives to one device (by owner) where the model's
 *   winner is another device's region is a collision resolved otherwise.
 * - A BAR the model decodes where the target maps nothing at all is a
 *   divergence (the target refused or lost the mapping).
 * Reserved platform ranges, and IO above port 0xffff, are outside both views.
 */
import type { FlatView } from '../model/flat-view.ts';
import type { Model } from '../model/model.ts';
import { regionName, type MapSegment } from '../ops/observation.ts';
import type { ReservedRange } from '../topology/types.ts';
import { hex } from '../util/hex.ts';
import { devLabel } from './labels.ts';
import { specRule, type Finding } from './finding.ts';
import type { Oracle, StepView } from './oracle.ts';

type Space = 'memory' | 'io';

const MAX_PORT = 0xffff;

const show = (s: { start: number; end: number }): string => `[${hex(s.start)}, ${hex(s.end)}]`;

/** The first address of [start, end] that no decoder of the model's view claims, or null. */
function firstGap(flat: FlatView, start: number, end: number): number | null {
  let a = start;
  for (const g of flat.segments()) {
    if (g.end < a) continue;
    if (g.start > a) return a;
    a = g.end + 1;
    if (a > end) return null;
  }
  return a <= end ? a : null;
}

/** A function that decoded `addr` in an earlier placement of one of its regions, and whether a reset ended that placement. */
function formerly(m: Model, space: Space, addr: number): { what: string; byReset: boolean } | null {
  for (const [id, slot] of m.devices) {
    const fn = slot.last;
    if (fn === null) continue;
    for (const [region, h] of fn.history) {
      // Regions 0..6 are BARs and the ROM; 7 is the IO window, 8 and 9 the memory windows.
      const io = region <= 6 ? fn.bars[region]?.kind === 'io' : region === 7;
      if (io !== (space === 'io')) continue;
      const p = h.find((x) => addr >= x.base && addr < x.base + x.size);
      if (p !== undefined) return { what: `${devLabel(m, id)} ${region <= 6 ? regionName(region) : `window ${region}`}`, byReset: p.byReset === true };
    }
  }
  return null;
}

function compare(v: StepView, space: Space, segs: readonly MapSegment[], flat: FlatView, reserved: readonly ReservedRange[]): Finding[] {
  const m = v.model;
  const out: Finding[] = [];
  const where = space === 'io' ? 'IO space' : 'memory space';
  for (const s of segs) {
    const gap = firstGap(flat, s.start, s.end);
    if (gap === null) {
      const winner = flat.lookup(s.start);
      if (s.owner !== undefined && m.devices.has(s.owner) && winner?.kind === 'bar' && winner.fn !== null && winner.fn.id !== s.owner)
        out.push({
          kind: 'collision',
          severity: 'violation',
          index: v.index,
          signature: `collision:maps:${space}:resolution`,
          rule: specRule('decode.overlap'),
          message: `at ${hex(s.start)} of the ${where} the target maps ${devLabel(m, s.owner)} (${s.name}) but the model's winner is ${devLabel(m, winner.fn.id)} ${regionName(winner.region)}: an overlap resolved otherwise`,
          details: { target: `${s.owner} ${s.name} ${show(s)}`, model: `${winner.fn.id} ${regionName(winner.region)}` },
        });
      continue;
    }
    const before = formerly(m, space, gap);
    out.push({
      kind: 'leak',
      severity: 'violation',
      index: v.index,
      // A mapping a reset should have ended is its own class: state that survives a reset.
      signature: `leak:maps:${space}:${before === null ? 'unexpected' : before.byReset ? 'survives-reset' : 'stale'}`,
      rule: specRule(before === null ? 'decode.bar' : 'isolation.stale-mapping'),
      message: `the target maps ${s.name} at ${show(s)} of its ${where}, where the model decodes nothing (from ${hex(gap)})${before !== null ? `: ${before.what} decoded there before${before.byReset ? ', until a reset' : ''}` : ''}`,
      details: { target: `${s.name} ${show(s)}`, model: before === null ? 'nothing' : `nothing; formerly ${before.what}${before.byReset ? ' (until a reset)' : ''}` },
    });
  }
  for (const g of flat.segments()) {
    const d = g.decoder;
    if (d.kind !== 'bar' || d.fn === null) continue;
    // Ports are 16-bit (the op catalog, x86's IO space): an IO BAR above them is out of every view.
    if (space === 'io' && g.start > MAX_PORT) continue;
    if (reserved.some((x) => x.space === space && g.start >= x.base && g.end < x.base + x.size)) continue;
    if (segs.some((s) => s.start <= g.end && g.start <= s.end)) continue;
    const atZero = d.base - (d.offset ?? 0) === 0 ? '@0' : '';
    out.push({
      kind: 'divergence',
      severity: 'violation',
      index: v.index,
      signature: `divergence:maps:${space}:unmapped${atZero}`,
      rule: specRule('decode.bar'),
      message: `the model decodes ${devLabel(m, d.fn.id)} ${regionName(d.region)} at ${show(g)} of the ${where}, where the target maps nothing`,
      details: { model: `${d.fn.id} ${regionName(d.region)} ${show(g)}`, target: 'nothing' },
    });
  }
  return out;
}

export function mapsOracle(): Oracle {
  return {
    step(v: StepView): Finding[] {
      const e = v.observed.evidence?.maps;
      if (e === undefined) return [];
      const m = v.model;
      // The evidence is of root 0's spaces (the roots that share them see the same).
      const reserved = [...(m.topology.roots[m.memSpaceOf(0).owner].reserved ?? []), ...(m.topology.roots[m.ioSpaceOf(0).owner].reserved ?? [])];
      return [...compare(v, 'memory', e.memory, m.memSpaceOf(0).flat, reserved), ...compare(v, 'io', e.io, m.ioSpaceOf(0).flat, reserved)];
    },
  };
}
