/**
 * Platform interrupt lines. INTx pins are open-drain and shared, so a
 * line is asserted while any pin routed to it is (PCI 3.0 §2.2.6); the
 * root's routing table (ACPI §6.2.13, _PRT: Topology's intxRouting) says
 * which line each slot's pin on the root bus reaches. A line's level is
 * derived from the functions' pins, never stored, so snapshots need not
 * hold it.
 */
import type { Irq } from '../ops/observation.ts';
import { ownerOf, type Topology } from '../topology/types.ts';

/** Where an asserted INTx arrives at its root: the root-bus slot it enters by and the pin there (after swizzling). */
export interface IntxArrival {
  root: number;
  slot: number;
  pin: number;
}

/** Lines (as `space:line`) that are asserted, given every asserted pin's arrival and where each arrives. */
export function assertedLines(t: Topology, arrivals: Iterable<IntxArrival>, lineOf: (t: Topology, a: IntxArrival) => number | null): Set<string> {
  const out = new Set<string>();
  for (const a of arrivals) {
    const line = lineOf(t, a);
    if (line !== null) out.add(`${ownerOf(t, a.root, 'irq')}:${line}`);
  }
  return out;
}

/** The lines whose level differs between two sets of asserted lines, as line events. */
export function lineChanges(before: ReadonlySet<string>, after: ReadonlySet<string>): Irq[] {
  const ev = (key: string, level: 0 | 1): Irq => {
    const [space, line] = key.split(':').map(Number);
    return { space, kind: 'line', line, level };
  };
  return [...[...after].filter((k) => !before.has(k)).map((k) => ev(k, 1)), ...[...before].filter((k) => !after.has(k)).map((k) => ev(k, 0))];
}

/** Whether the topology routes any slot's INTx to platform lines. */
export const routesLines = (t: Topology): boolean => t.roots.some((r) => (r.intxRouting?.length ?? 0) > 0);
