/**
 * Coverage of what isoroot exists for, from the history of a run: the same
 * BDF, address, port, IOVA or PASID touched from two roots; an access at
 * the old and at the new place of a BAR that moved; an access where a BAR
 * decoded, or a DMA through mappings made, before a reset or an unplug
 * took them away. Each counts when an operation observed it (an access
 * made there), not when the model merely passed through the state.
 */
import { routeSpace, needs, type Op } from '../ops/catalog.ts';
import type { Observation } from '../ops/observation.ts';
import type { Model } from '../model/model.ts';
import type { BusSpace } from '../bus/bar.ts';

/** The features this history names (universe dimension: feature). */
export const ISOLATION_EVENTS = {
  cross: ['cfg:same-bdf', 'mmio:same-addr', 'pio:same-port', 'dma:same-iova', 'pasid:same-value'],
  moved: ['old-place', 'new-place'],
  stale: ['bar-after-reset', 'bar-after-unplug', 'dma-after-reset', 'dma-after-unplug'],
} as const;

interface Range {
  space: BusSpace;
  root: number;
  base: number;
  size: number;
}

/** Ranges kept per kind: enough for a run's history, bounded so a long stream stays cheap. */
const KEEP = 32;
const push = (a: Range[], r: Range): void => {
  a.push(r);
  if (a.length > KEEP) a.shift();
};
const inside = (a: readonly Range[], space: BusSpace, root: number, addr: number): boolean => a.some((r) => r.space === space && r.root === root && addr >= r.base && addr < r.base + r.size);

export class IsolationHistory {
  /** Who touched what: key → the roots that did. */
  private touched = new Map<string, Set<number>>();
  private movedFrom: Range[] = [];
  private movedTo: Range[] = [];
  private goneBy: { reset: Range[]; unplug: Range[] } = { reset: [], unplug: [] };
  private dmaMapped = false;
  private dmaGoneBy: 'reset' | 'unplug' | null = null;

  constructor(private readonly add: (f: string) => void) {}

  /** A BAR of a function of root `root` moved from `from` to `to`. */
  moved(space: BusSpace, root: number, from: number, to: number, size: number): void {
    push(this.movedFrom, { space, root, base: from, size });
    push(this.movedTo, { space, root, base: to, size });
  }

  /** A BAR stopped decoding because of the current operation; remembered when a reset or an unplug did it. */
  gone(op: Op, space: BusSpace, root: number, base: number, size: number): void {
    const cause = causeOf(op);
    if (cause !== null) push(this.goneBy[cause], { space, root, base, size });
  }

  /** After each step: what the operation touched, and what it observed there. */
  step(op: Op, p: Observation, m: Model): void {
    const cause = causeOf(op);
    if (cause !== null && p.status === 'ok' && this.dmaMapped) this.dmaGoneBy = cause;
    switch (routeSpace(op)) {
      case 'config':
        if ('bdf' in op && 'root' in op) this.touch(`cfg:${op.bdf}`, op.root, 'cross:cfg:same-bdf');
        return;
      case 'memory':
        if ('addr' in op && 'root' in op) this.access('memory', op.root, op.addr, `mmio:${op.addr}`, 'cross:mmio:same-addr');
        return;
      case 'io':
        if ('port' in op && 'root' in op) this.access('io', op.root, op.port, `pio:${op.port}`, 'cross:pio:same-port');
        return;
      case 'dma': {
        const s = 'dev' in op ? m.devices.get(op.dev) : undefined;
        if (s !== undefined && 'iova' in op && op.iova !== undefined) this.touch(`dma:${Math.floor(op.iova / 0x1000)}`, s.root, 'cross:dma:same-iova');
        if (this.dmaGoneBy !== null) this.add(`stale:dma-after-${this.dmaGoneBy}`);
        return;
      }
      case null:
        break;
    }
    if (needs(op, 'dma-map') && p.status === 'ok') {
      this.dmaMapped = true;
      this.dmaGoneBy = null;
    }
    if (op.op === 'pasid.alloc' && p.status === 'ok' && p.value !== undefined) {
      const s = m.devices.get(op.dev);
      if (s !== undefined) this.touch(`pasid:${p.value}`, s.root, 'cross:pasid:same-value');
    }
  }

  private access(space: BusSpace, root: number, addr: number, key: string, cross: string): void {
    this.touch(key, root, cross);
    if (inside(this.movedFrom, space, root, addr)) this.add('moved:old-place');
    if (inside(this.movedTo, space, root, addr)) this.add('moved:new-place');
    if (inside(this.goneBy.reset, space, root, addr)) this.add('stale:bar-after-reset');
    if (inside(this.goneBy.unplug, space, root, addr)) this.add('stale:bar-after-unplug');
  }

  private touch(key: string, root: number, feature: string): void {
    let roots = this.touched.get(key);
    if (roots === undefined) this.touched.set(key, (roots = new Set()));
    roots.add(root);
    if (roots.size >= 2) this.add(feature);
  }
}

/** Whether an operation is a reset or an unplug (what takes mappings away without the guest unmapping them). */
function causeOf(op: Op): 'reset' | 'unplug' | null {
  if (op.op === 'dev.unplug') return 'unplug';
  return needs(op, 'reset') || needs(op, 'root-reset') ? 'reset' : null;
}
