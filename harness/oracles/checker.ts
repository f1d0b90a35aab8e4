/**
 * The checker: replays a trace on a fresh reference model and runs the
 * four oracles over every step. A pure function of the trace (topology,
 * ops, observations). Each step yields at most one violation, from the
 * most specific oracle that explains it: leak, then collision, then
 * misroute, then divergence. Notices are kept beside, and so are the
 * findings of the target's evidence (the maps oracle).
 */
import { Model } from '../model/model.ts';
import type { Op } from '../ops/catalog.ts';
import type { Irq, Observation } from '../ops/observation.ts';
import { Learned } from '../model/personalities/learned.ts';
import { ownerOf } from '../topology/types.ts';
import type { Topology } from '../topology/types.ts';
import type { Observes } from '../ops/observation.ts';
import type { Profile } from '../profiles/profile.ts';
import type { Rules } from '../model/rules.ts';
import { REFERENCE_RULES } from '../model/rules.ts';
import { ObservedChooser } from './choosers.ts';
import { collisionOracle } from './collision.ts';
import { divergenceOracle } from './divergence.ts';
import { leakOracle } from './leak.ts';
import { misrouteOracle } from './misroute.ts';
import { mapsOracle } from './maps.ts';
import { protocolOracle } from './protocol.ts';
import { IrqProjection } from './irq-view.ts';
import type { Finding } from './finding.ts';
import type { Oracle, StepView } from './oracle.ts';

/** Sees every step of the reference replay (coverage uses it); never changes it. */
export interface StepObserver {
  before?(op: Op, model: Model): void;
  after(view: StepView): void;
}

/** How a trace is judged: what the target observes, the profile it declares, and the model it is held against. */
export interface Judge {
  observes: Observes;
  /** The target's profile (or --profile); null or absent: the specifications alone. */
  profile?: Profile | null;
  /** A variant of the model (a known bug's quirk); absent: the reference model. */
  rules?: Rules;
}

/** A bare Observes is judged by the specifications alone, against the reference model. */
export const asJudge = (j: Observes | Judge): Judge => ('observes' in j ? j : { observes: j });

export interface SignatureCount {
  finding: Finding;
  count: number;
}

/** Target events attached to a finding: the latest of its batch. */
const EVENTS_SHOWN = 60;

export class TraceChecker {
  readonly model: Model;
  private readonly ordered: Oracle[];
  /** Oracles of the target's evidence: their findings stand beside the op's own. */
  private readonly beside: Oracle[] = [mapsOracle(), protocolOracle()];
  private index = 0;
  private readonly chooser: ObservedChooser;
  private readonly irqView: IrqProjection | null;
  /** First finding of each signature, with how often it recurred. */
  readonly bySignature = new Map<string, SignatureCount>();
  violations = 0;
  /** Reported findings (first of their signature) whose op's batch of target events has not come yet. */
  private awaitingEvents: Finding[] = [];

  readonly observes: Observes;
  readonly profile: Profile | null;

  constructor(
    topology: Topology,
    judge: Observes | Judge,
    private readonly observer?: StepObserver,
  ) {
    const j = asJudge(judge);
    this.observes = j.observes;
    this.profile = j.profile ?? null;
    this.model = new Model(topology, j.rules ?? REFERENCE_RULES);
    this.chooser = new ObservedChooser(this.observes, this.profile);
    const observes = this.observes;
    this.irqView = typeof observes.irqs === 'object' ? new IrqProjection(observes.irqs, topology) : null;
    this.ordered = [leakOracle(), collisionOracle(), misrouteOracle(), divergenceOracle()];
  }

  /** Checks one step; returns the findings it produced (at most one violation). */
  step(op: Op, observed: Observation): Finding[] {
    this.observer?.before?.(op, this.model);
    // Where a specification leaves the outcome open, the model follows the profile, else what the target did.
    const predicted = this.model.apply(op, this.chooser.for(op, observed));
    const view: StepView = { index: this.index++, op, observed, predicted, model: this.model, observes: this.observes, profile: this.profile };
    const spontaneous = spontaneousIrqs(this.model, observed);
    if (spontaneous.length > 0) view.spontaneous = spontaneous;
    if (this.irqView !== null) view.seenIrqs = this.irqView.seen(predicted.irqs);
    this.observer?.after(view);
    const out: Finding[] = [];
    let explained = false;
    for (const o of this.ordered) {
      // Every oracle sees every step (some keep state), but a step is explained once.
      let violated = false;
      for (const f of o.step(view)) {
        if (f.severity === 'notice') out.push(f);
        else if (!explained) {
          out.push(f);
          violated ||= f.severity === 'violation';
        }
      }
      explained ||= violated;
    }
    for (const o of this.beside) for (const f of o.step(view)) out.push(f);
    for (const f of out) {
      if (f.severity === 'violation') this.violations++;
      const c = this.bySignature.get(f.signature);
      if (c === undefined) {
        this.bySignature.set(f.signature, { finding: f, count: 1 });
        this.awaitingEvents.push(f);
      } else c.count++;
    }
    this.attachEvents(observed);
    return out;
  }

  /**
   * A batch of the target's own events (QEMU's trace) comes with the last
   * op of the pipelined run it was read after: it holds the events of the
   * ops since the previous batch, so it goes with the findings of those
   * ops, as supporting facts.
   */
  private attachEvents(observed: Observation): void {
    const events = observed.evidence?.events;
    if (events === undefined || events.length === 0) return;
    const shown = events.length > EVENTS_SHOWN ? [`(${events.length - EVENTS_SHOWN} earlier events left out)`, ...events.slice(-EVENTS_SHOWN)] : events;
    for (const f of this.awaitingEvents) f.details = { ...f.details, 'target events': shown.join('\n') };
    this.awaitingEvents = [];
  }

  /** First finding per signature, in order of the steps that exposed them. */
  findings(): Finding[] {
    return [...this.bySignature.values()].map((c) => c.finding).sort((a, b) => a.index - b.index);
  }
}

const NO_IRQS: Irq[] = [];

/** Observed interrupts of learned functions that their configuration allows, in their own root's interrupt space. */
function spontaneousIrqs(m: Model, observed: Observation): Irq[] {
  if (observed.irqs === undefined || observed.irqs.length === 0) return NO_IRQS;
  return observed.irqs.filter((i) => {
    if (i.dev === undefined || (i.kind !== 'intx' && i.kind !== 'msi' && i.kind !== 'msix')) return false;
    const fn = m.devices.get(i.dev)?.fn;
    return fn instanceof Learned && i.space === ownerOf(m.topology, fn.root, 'irq') && fn.maySignal(i.kind, i.vector ?? 0);
  });
}

/** Checks a whole trace held in memory. */
export function checkSteps(topology: Topology, observes: Observes | Judge, steps: readonly { op: Op; obs: Observation }[]): Finding[] {
  const c = new TraceChecker(topology, observes);
  const all: Finding[] = [];
  for (const s of steps) all.push(...c.step(s.op, s.obs));
  return all;
}
