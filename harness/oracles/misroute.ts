/**
 * misroute: an access or interrupt delivered anywhere other than where the
 * topology and the register state say, including into another root.
 */
import { showOp } from '../ops/codec.ts';
import { sameDelivery } from './compare.ts';
import { devLabel, opFamily, routeClass, whereLabel } from './labels.ts';
import { ISOLATION_RULE, type Oracle, type StepView } from './oracle.ts';
import { routeSpace } from '../ops/catalog.ts';
import { specRule, type Finding } from './finding.ts';

export function misrouteOracle(): Oracle {
  return {
    step(v: StepView): Finding[] {
      const { op, observed: o, predicted: p, model: m } = v;
      const out: Finding[] = [];
      const space = routeSpace(op);
      if (v.observes.delivery && space !== null && o.to !== undefined && !sameDelivery(o.to, p.to)) {
        const cross = p.to !== undefined && o.to.root !== p.to.root ? ':cross-root' : '';
        // Across roots the contract is what is broken; within one, the rule that routes the access.
        out.push({
          rule: specRule(cross !== '' ? ISOLATION_RULE[space] : (p.rule ?? 'decode.bar')),
          kind: 'misroute',
          severity: 'violation',
          index: v.index,
          signature: `misroute:${opFamily(op)}:${routeClass(p.to)}>${routeClass(o.to)}${cross}`,
          message: `${showOp(op)} should reach ${whereLabel(m, p.to)} but reached ${whereLabel(m, o.to)}`,
        });
      }
      if (v.observes.irqs) {
        for (const oi of o.irqs ?? []) {
          if ((oi.kind !== 'msi' && oi.kind !== 'msix') || oi.dev === undefined) continue;
          const pi = (p.irqs ?? []).find((x) => x.dev === oi.dev && x.kind === oi.kind && x.vector === oi.vector);
          if (pi === undefined || pi.space === oi.space) continue;
          out.push({
            kind: 'misroute',
            severity: 'violation',
            index: v.index,
            signature: `misroute:${oi.kind}:interrupt-space`,
            rule: specRule('isolation.irq'),
            message: `${oi.kind.toUpperCase()} vector ${oi.vector ?? 0} of ${devLabel(m, oi.dev)} was raised in the interrupt space of root ${oi.space}; it belongs to root ${pi.space}`,
          });
        }
      }
      return out;
    },
  };
}
