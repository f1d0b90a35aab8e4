/**
 * divergence: the target observed something other than the model predicted.
 * The signature names the operation, where the model says it goes (with
 * "@0" for a BAR placed at address 0, which some platforms refuse to map)
 * and each differing field with the classes of its values, e.g.
 * `divergence:mmio.read:nobody:value(ones>zeros)`: narrow enough that a
 * known divergence recorded in a corpus does not hide a different one.
 *
 * Each divergence rests on a rule. Where the observation is an outcome the
 * specifications allow but the declared profile excludes, it is a
 * departure from the profile and names the profile's entry
 * (`divergence:profile:memory.unassigned-read(zeros>ones)`); otherwise it
 * names the mandated rule of the field that differs.
 */
import { showOp } from '../ops/codec.ts';
import { showIrq, showObs } from '../ops/observation-codec.ts';
import { allOnes, type Observation } from '../ops/observation.ts';
import { CHOICES } from '../spec/choices.ts';
import { RULES, type RuleId } from '../spec/rules.ts';
import { differences, firstDataDifference, showDifference, type Difference } from './compare.ts';
import type { Op } from '../ops/catalog.ts';
import { routeClass } from './labels.ts';
import { accessOf, regionIndex, type Oracle, type StepView } from './oracle.ts';
import { specRule, type Finding, type FindingRule } from './finding.ts';
import { configRule } from '../model/register-rules.ts';
import { CONFIG_REGION } from '../model/region-access.ts';

function placeClass(v: StepView): string {
  const to = v.predicted.to;
  const acc = accessOf(v.op);
  const atZero = acc !== null && to?.offset !== undefined && regionIndex(to.region) >= 0 && acc.addr - to.offset === 0;
  return routeClass(to) + (atZero ? '@0' : '');
}

/**
 * Interrupts alone differ: where an interrupt goes does not depend on the
 * op that raised it (a doorbell, a command write, an unplug, a reset), so
 * the signature names the mismatch and whether the functions that signal
 * sit on the main root or another one, e.g. `divergence:irqs(lines)@rN`,
 * `divergence:irqs(message>none)@r0`.
 */
function irqSignature(v: StepView, d: Difference): string {
  // The roots of the functions the model has signalling; else the root the op went to, or of the device it names.
  const sources = new Set(v.predicted.irqs?.flatMap((i) => (i.dev === undefined ? [] : [v.model.devices.get(i.dev)?.root ?? 0])).map((r) => (r === 0 ? 'r0' : 'rN')));
  const r = v.predicted.to?.root ?? ('dev' in v.op ? v.model.devices.get(v.op.dev)?.root : 'root' in v.op ? v.op.root : undefined);
  const where = sources.size > 0 ? `@${[...sources].sort().join(',')}` : r === undefined ? '' : r === 0 ? '@r0' : '@rN';
  // Lines alone: another line, or one missing or extra, is the same routing disagreement (a line already high shows no change).
  const onlyLines = [d.predicted, d.observed].every((k) => k === 'line' || k === 'none');
  return `divergence:${onlyLines ? 'irqs(lines)' : showDifference(d)}${where}`;
}

/** The rule an interrupt of this kind follows. */
function irqRule(kinds: string | undefined): RuleId {
  const k = kinds ?? '';
  if (k.includes('line')) return 'irq.routing';
  if (k.includes('msix')) return 'irq.msix';
  if (k.includes('msi') || k.includes('message')) return 'irq.msi';
  return 'irq.intx';
}

/** The first byte of a value or data read that differs, or -1. */
function firstDifferingByte(o: Observation, p: Observation): number {
  if (o.value !== undefined && p.value !== undefined) {
    const x = (o.value ^ p.value) & (p.known ?? -1n);
    for (let i = 0; i < 8; i++) if (((x >> BigInt(8 * i)) & 0xffn) !== 0n) return i;
  }
  if (o.data !== undefined && p.data !== undefined)
    for (let i = 0; i < Math.min(o.data.length, p.data.length); i++) if (((o.data[i] ^ p.data[i]) & (p.knownData?.[i] ?? 0xff)) !== 0) return i;
  return -1;
}

/** The rule the first differing field rests on: for config space, the rule of the register whose byte differs. */
function ruleOf(v: StepView, observed: Observation, d: Difference): RuleId {
  const p = v.predicted;
  if (d.field === 'irqs') return irqRule(d.predicted !== 'none' ? d.predicted : d.observed);
  if (d.field !== 'value' && d.field !== 'data') return p.rule ?? 'config.read-only';
  const i = firstDifferingByte(observed, p);
  const op = v.op;
  const at = op.op === 'cfg.read' ? op.reg : op.op === 'region.read' && op.region === CONFIG_REGION ? op.offset : p.to?.region === 'cfg' ? (p.to.offset ?? -1) : -1;
  const dev = op.op === 'region.read' ? op.dev : p.to?.dev;
  const fn = dev === undefined ? null : v.model.fnOf(dev);
  // Vendor ID 0xFFFF is no vendor's (PCI 3.0 §6.2.1): a read of it that is all ones, where the model has a function, says the function was not there.
  if (op.op === 'cfg.read' && op.reg === 0 && op.size >= 2 && fn !== null && observed.value === allOnes(op.size) && p.value !== allOnes(op.size)) return 'config.present-function';
  if (i >= 0 && at >= 0 && fn !== null) return configRule(fn, at + i);
  return p.valueRule ?? p.rule ?? 'config.read-only';
}

const profileRule = (profile: string, entry: string, because: string, cites: string): FindingRule => ({ id: `profile ${profile}: ${entry}`, cites: `${because} (where ${cites} allows more)` });

export function divergenceOracle(): Oracle {
  return {
    step(v: StepView): Finding[] {
      // What the harness computed itself is no evidence about the target.
      if (v.observed.source === 'harness') return [];
      const p = v.predicted;
      const observed = v.spontaneous === undefined ? v.observed : { ...v.observed, irqs: (v.observed.irqs ?? []).filter((i) => !v.spontaneous!.includes(i)) };
      // An outcome the specifications allow, which the declared profile excludes (the model followed the target).
      if (p.choice?.departs !== undefined && v.profile !== null) {
        const c = CHOICES[p.choice.id];
        const said = p.choice.departs;
        const entry = v.profile.choices[p.choice.id];
        return [
          {
            kind: 'divergence',
            severity: 'violation',
            index: v.index,
            signature: `divergence:profile:${p.choice.id}(${said}>${p.choice.option})`,
            message: `${showOp(v.op)}: the profile ${v.profile.name} says ${p.choice.id} = ${said} (${c.options[said] ?? ''}), but the target took ${p.choice.option} (${c.options[p.choice.option] ?? ''}), which ${c.cites} also allows`,
            details: { expected: showObs(p.allowed?.find((a) => a.option === said)?.obs ?? p), observed: showObs(v.observed) },
            rule: profileRule(v.profile.name, p.choice.id, entry?.because ?? '', c.cites),
          },
        ];
      }
      const diff = differences(v.op, observed, p, v.observes, v.seenIrqs);
      if (diff.length === 0) return errnoDeparture(v);
      let predicted = p.unknown === true ? `${showObs(p)} (value unknown)` : showObs(p);
      if (v.seenIrqs !== undefined && diff.some((d) => d.field === 'irqs')) predicted += `, of whose interrupts the target can see [${v.seenIrqs.map(showIrq).join(', ')}]`;
      if (p.choice !== undefined && p.allowed !== undefined && p.allowed.length > 0) predicted += ` (or, as ${CHOICES[p.choice.id].cites} allows, ${p.allowed.map((a) => showObs(a.obs)).join(' or ')})`;
      const rule = ruleOf(v, observed, diff[0]);
      const where = diff.some((d) => d.field === 'data') ? dataWhere(v.op, observed.data, p) : '';
      return [
        {
          kind: 'divergence',
          severity: 'violation',
          index: v.index,
          signature: diff.length === 1 && diff[0].field === 'irqs' ? irqSignature(v, diff[0]) : `divergence:${v.op.op}:${placeClass(v)}:${diff.map(showDifference).join('+')}`,
          message: `${showOp(v.op)}: the model predicts ${predicted} but the target observed ${showObs(v.observed)}${where}; ${RULES[rule].says}`,
          details: { expected: predicted, observed: showObs(v.observed) },
          rule: specRule(rule),
        },
      ];
    },
  };
}

/** ", first at byte 0x10 (offset 0x10): the model 00, the target 01": where data read differs, since both are shown cut short. */
function dataWhere(op: Op, observed: Uint8Array | undefined, p: Observation): string {
  if (observed === undefined || p.data === undefined) return '';
  const d = firstDataDifference(observed, p.data, p.knownData);
  if (d === null) return '';
  const hex = (b: number): string => b.toString(16).padStart(2, '0');
  const base = op.op === 'region.read' ? ` (offset 0x${(op.offset + d.at).toString(16)})` : op.op === 'dma.read' ? ` (IOVA 0x${(op.iova + d.at).toString(16)})` : '';
  return `, first at byte 0x${d.at.toString(16)}${base}: the model ${hex(d.predicted)}, the target ${hex(d.observed)}`;
}

/** A refusal whose errno is not the one the declared profile gives its reason. */
function errnoDeparture(v: StepView): Finding[] {
  const p = v.predicted;
  const got = v.observed.errno;
  if (v.profile === null || got === undefined || p.status !== 'error' || p.reason === undefined) return [];
  const entry = v.profile.errno[p.reason];
  if (entry === undefined || entry.errno === got) return [];
  return [
    {
      kind: 'divergence',
      severity: 'violation',
      index: v.index,
      signature: `divergence:profile:errno.${p.reason}(${entry.errno}>${got})`,
      message: `${showOp(v.op)}: refused with ${got}, where the profile ${v.profile.name} gives a ${p.reason} refusal ${entry.errno}`,
      details: { expected: `error(${p.reason}, ${entry.errno})`, observed: showObs(v.observed) },
      rule: profileRule(v.profile.name, `errno.${p.reason}`, entry.because, CHOICES['refusal.errno'].cites),
    },
  ];
}
