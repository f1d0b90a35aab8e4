/**
 * collision: two decoders claim the same address in one space.
 * - Across roots whose contract isolates that space, any interference is
 *   a violation: an access of one root answered by a device of another
 *   root that decodes the same address (or BDF) in its own space.
 * - Within one space (one root, or roots sharing it), an overlap is what
 *   the guest programmed: a notice. The model resolves it as QEMU does
 *   (the later mapping wins); a target that resolves it otherwise violates.
 * - In a PASID context, one PASID handed out twice while live.
 */
import { showOp } from '../ops/codec.ts';
import { routedIn } from '../ops/catalog.ts';
import { formatBdf } from '../topology/bdf.ts';
import { ownerOf, resetReach, type SpaceKind } from '../topology/types.ts';
import { hex } from '../util/hex.ts';
import { regionName } from '../ops/observation.ts';
import { devLabel, whereLabel } from './labels.ts';
import { accessOf, regionIndex, type Oracle, type StepView } from './oracle.ts';
import { specRule, type Finding } from './finding.ts';

export function collisionOracle(): Oracle {
  /** context key → PASID → (device, op index) of its live allocation, from observations. */
  const live = new Map<string, Map<number, { dev: string; index: number }>>();
  const noticed = new Set<string>();

  return {
    step(v: StepView): Finding[] {
      const { op, observed: o, predicted: p, model: m } = v;
      const t = m.topology;
      const out: Finding[] = [];
      const acc = accessOf(op);

      // Cross-root interference in a space the contract isolates.
      if (v.observes.delivery && o.to?.dev !== undefined && p.to !== undefined && o.to.root !== p.to.root && 'root' in op) {
        const kind: SpaceKind | null = acc !== null ? (acc.space === 'memory' ? 'memory' : 'io') : routedIn(op, 'config') ? 'config' : null;
        if (kind !== null && ownerOf(t, op.root, kind) !== ownerOf(t, o.to.root, kind)) {
          let claims = false;
          let where = '';
          if (acc !== null) {
            const r = regionIndex(o.to.region);
            claims = m.decodesNow(o.to.dev, r, acc.addr);
            where = `${acc.space === 'io' ? 'port' : 'address'} ${hex(acc.addr)}`;
          } else if (routedIn(op, 'config')) {
            claims = m.bdfOf(o.to.dev) === op.bdf;
            where = `BDF ${formatBdf(op.bdf)}`;
          }
          if (claims)
            out.push({
              kind: 'collision',
              severity: 'violation',
              index: v.index,
              signature: `collision:${kind}:cross-root`,
              message: `${where} of root ${op.root} reached ${whereLabel(m, o.to)}, which decodes the same ${where} in root ${o.to.root}: the two roots' ${kind} spaces are declared isolated but collide`,
              rule: specRule(kind === 'memory' ? 'isolation.memory' : kind === 'io' ? 'isolation.io' : 'isolation.config'),
            });
        }
      }

      // Overlaps inside one space: a notice, and a violation if resolved otherwise.
      if (acc !== null && 'root' in op) {
        const claims = m.claimants(op.root, acc.space, acc.addr).filter((d) => d.kind === 'bar' && d.fn !== null);
        if (claims.length >= 2) {
          const names = claims.map((d) => `${d.fn!.id}.${regionName(d.region)}`);
          const key = [...names].sort().join('+');
          if (!noticed.has(key)) {
            noticed.add(key);
            out.push({
              kind: 'collision',
              severity: 'notice',
              index: v.index,
              signature: `collision:${acc.space}:guest-conflict`,
              rule: specRule('decode.overlap'),
              message: `${names.join(' and ')} all claim ${acc.space === 'io' ? 'port' : 'address'} ${hex(acc.addr)} in root ${op.root}'s ${acc.space} space; the later mapping (${names[0]}) wins`,
            });
          }
          if (v.observes.delivery && o.to?.dev !== undefined && p.to?.dev !== undefined && (o.to.dev !== p.to.dev || o.to.region !== p.to.region)) {
            if (claims.some((d) => d.fn!.id === o.to!.dev && regionName(d.region) === o.to!.region))
              out.push({
                kind: 'collision',
                severity: 'violation',
                index: v.index,
                signature: `collision:${acc.space}:resolution`,
                rule: specRule('decode.overlap'),
                message: `${showOp(op)}: overlapping decoders resolved differently: the later mapping ${whereLabel(m, p.to)} should win, but ${whereLabel(m, o.to)} answered`,
              });
          }
        }
      }

      // PASID namespace: a live PASID must not be handed out again within its context.
      if (op.op === 'pasid.alloc' && o.status === 'ok' && o.value !== undefined) {
        const key = m.contextKey(op.dev);
        if (key !== null) {
          let ctx = live.get(key);
          if (ctx === undefined) live.set(key, (ctx = new Map()));
          const pasid = Number(o.value);
          const prev = ctx.get(pasid);
          if (prev !== undefined)
            out.push({
              kind: 'collision',
              severity: 'violation',
              index: v.index,
              signature: 'collision:pasid:namespace',
              rule: specRule('isolation.pasid'),
              message: `PASID ${pasid} was handed to ${devLabel(m, op.dev)} while ${devLabel(m, prev.dev)} still holds it (op #${prev.index}); both are in PASID context ${key}, one namespace`,
            });
          else ctx.set(pasid, { dev: op.dev, index: v.index });
        }
      }
      if (op.op === 'pasid.free' && o.status === 'ok') {
        const key = m.contextKey(op.dev);
        if (key !== null) live.get(key)?.delete(op.pasid);
      }
      // A root reset frees the PASIDs of every root it reaches that owns its
      // PASID namespace (PCIe Base §6.6.1 via resetReach; §7.8.8.3: PASID
      // Enable returns to 0, so the device's PASID state is gone with it).
      if (op.op === 'root.reset' && o.status === 'ok') {
        for (const x of resetReach(t, op.root))
          if (ownerOf(t, x, 'pasid') === x) for (const k of live.keys()) if (k.startsWith(`${x}:`)) live.delete(k);
      }
      return out;
    },
  };
}
