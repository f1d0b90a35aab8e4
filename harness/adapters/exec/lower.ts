/**
 * For an exec target that declares `configOverBus`: each config operation
 * becomes the bus accesses of its mechanism (harness/bus/config-access.ts),
 * sent as mmio/pio operations in the owner root's spaces; its observation
 * is the last access's (the register read or written through the ECAM
 * window or CONFIG_DATA). A config operation the root has no mechanism for
 * is answered without asking the target, as the model answers it.
 */
import { routedIn, writeValue, type Op } from '../../ops/catalog.ts';
import type { Observation } from '../../ops/observation.ts';
import type { Topology } from '../../topology/types.ts';
import { configMechanisms, lowerConfig, type BusAccess } from '../../bus/config-access.ts';

/** What one operation of the sequence becomes on the wire: operations to send, or an answer without asking. */
export type Lowered = { wire: Op[] } | { local: Observation };

const busOp = (root: number, a: BusAccess): Op => {
  if (a.space === 'memory') return a.value === null ? { op: 'mmio.read', root, addr: a.addr, size: a.size } : { op: 'mmio.write', root, addr: a.addr, size: a.size, value: a.value };
  return a.value === null ? { op: 'pio.read', root, port: a.addr, size: a.size } : { op: 'pio.write', root, port: a.addr, size: a.size, value: a.value };
};

export function lowerOp(t: Topology, op: Op): Lowered {
  if (!routedIn(op, 'config')) return { wire: [op] };
  if (op.root >= t.roots.length) return { local: { status: 'error', reason: 'no-device' } };
  const m = configMechanisms(t, op.root);
  const accesses = lowerConfig(m, op.via, op.bdf, op.reg, op.size, writeValue(op));
  if (typeof accesses === 'string') return { local: { status: 'error', reason: accesses } };
  return { wire: accesses.map((a) => busOp(m.owner, a)) };
}

/** The observation of each operation, from the observations of what was sent for it (in order). */
export function raise(plan: readonly Lowered[], wire: readonly Observation[]): Observation[] {
  const out: Observation[] = [];
  let at = 0;
  for (const p of plan) {
    if ('local' in p) {
      out.push(p.local);
      continue;
    }
    if (at + p.wire.length > wire.length) break;
    at += p.wire.length;
    out.push(wire[at - 1]);
  }
  return out;
}
