/**
 * The oracle interface. An oracle is a fold over a trace: it sees each
 * step (the op, what the target observed, what the reference model
 * predicted, and the model's state after the op) and returns findings. It
 * never drives a target.
 */
import type { Model } from '../model/model.ts';
import { routedIn, type Op, type RouteSpace } from '../ops/catalog.ts';
import type { RuleId } from '../spec/rules.ts';
import type { Irq, Observation } from '../ops/observation.ts';
import type { Observes } from '../ops/observation.ts';
import type { Finding } from './finding.ts';
import type { Profile } from '../profiles/profile.ts';

export interface StepView {
  index: number;
  op: Op;
  observed: Observation;
  predicted: Observation;
  /** The reference model after the op. Read it; never apply ops to it. */
  model: Model;
  observes: Observes;
  /** The predicted interrupts as the target can see them, when it sees a view of them (Observes.irqs as an IrqView). */
  seenIrqs?: Irq[];
  /** The profile the target is judged by; null: the specifications alone. */
  profile: Profile | null;
  /**
   * Interrupts observed from learned functions that their configuration
   * allows them to send on their own (what triggers them is their own):
   * not compared with the prediction, still judged for isolation.
   */
  spontaneous?: Irq[];
}

export interface Oracle {
  step(v: StepView): Finding[];
}

/** The isolation rule a routed access breaks when it reaches another root, by the space it is routed in. */
export const ISOLATION_RULE: Record<RouteSpace, RuleId> = { config: 'isolation.config', memory: 'isolation.memory', io: 'isolation.io', dma: 'isolation.dma' };

/** The address an access op targets, in which kind of space. */
export function accessOf(op: Op): { space: 'memory' | 'io'; addr: number } | null {
  if (routedIn(op, 'memory')) return { space: 'memory', addr: op.addr };
  if (routedIn(op, 'io')) return { space: 'io', addr: op.port };
  return null;
}

/** Region name to region index (bar0..bar5 → 0..5, rom → 6), or -1. */
export function regionIndex(r: string | undefined): number {
  if (r === 'rom') return 6;
  if (r !== undefined && /^bar[0-5]$/.test(r)) return Number(r[3]);
  return -1;
}

