/**
 * The trace format: JSON Lines. Line 1 is the header; each further line is
 * one operation with, once run, its observation. docs/trace-format.md
 * documents it.
 */
import { at } from '../util/errors.ts';
import type { JsonReader } from '../util/json-read.ts';
import { opToJson, parseOp } from '../ops/codec.ts';
import { obsToJson, parseObs, parseObserves } from '../ops/observation-codec.ts';
import { parseTopology } from '../topology/validate.ts';
import { canonicalTopology } from '../topology/canonical.ts';
import type { Op } from '../ops/catalog.ts';
import type { Observation } from '../ops/observation.ts';
import type { Topology } from '../topology/types.ts';
import type { TargetInfo } from '../adapters/target.ts';
import type { Observes } from '../ops/observation.ts';
import { parseProfile, profileToJson, type Profile } from '../profiles/profile.ts';

export const TRACE_FORMAT = 'isoroot-trace';
export const TRACE_VERSION = 1;

export interface TraceHeader {
  format: typeof TRACE_FORMAT;
  version: typeof TRACE_VERSION;
  topology: Topology;
  /** The target, what it observes, and the profile its observations are judged by (absent: the specifications alone). */
  target: TargetInfo & { observes: Observes; profile?: Profile };
  /** The generator seed, when the trace was generated. */
  seed: number | null;
  isoroot: string;
  /** ISO 8601 time the trace was written. */
  time: string;
}

export interface Step {
  op: Op;
  /** Absent until the op has run on a target. */
  obs?: Observation;
  /** The target failed on this op instead of answering (and the ops after it never ran). */
  failure?: StepFailure;
}

export const FAILURE_KINDS = ['crash', 'hang', 'protocol', 'poweroff'] as const;

/** A target's failure as a trace step records it. */
export function stepFailure(f: { kind: StepFailure['kind']; message: string; stderr?: string; field?: string }): StepFailure {
  const out: StepFailure = { kind: f.kind, message: f.message };
  if (f.stderr !== undefined) out.stderr = f.stderr.slice(-4000);
  if (f.field !== undefined) out.field = f.field;
  return out;
}

/** How a target failed on an op, as a trace records it. */
export interface StepFailure {
  kind: (typeof FAILURE_KINDS)[number];
  message: string;
  stderr?: string;
  /** protocol: the message and field that broke it. */
  field?: string;
}

export interface Trace {
  header: TraceHeader;
  steps: Step[];
}

export function headerToJson(h: TraceHeader): Record<string, unknown> {
  const target: Record<string, unknown> = { name: h.target.name, version: h.target.version };
  if (h.target.mutant !== undefined) target.mutant = h.target.mutant;
  const ob = h.target.observes;
  // aborts and faults are written when they say less than everything (absent, readers take that).
  target.observes = { delivery: ob.delivery, irqs: ob.irqs, ...(ob.aborts ? {} : { aborts: false }), ...(ob.faults === 'all' ? {} : { faults: [...ob.faults] }) };
  if (h.target.profile !== undefined) target.profile = profileToJson(h.target.profile);
  return { format: h.format, version: h.version, topology: canonicalTopology(h.topology), target, seed: h.seed, isoroot: h.isoroot, time: h.time };
}

export function parseHeader(r: JsonReader, v: unknown): TraceHeader {
  const o = r.object('header', v);
  r.only('header', o, ['format', 'version', 'topology', 'target', 'seed', 'isoroot', 'time']);
  if (o.format !== TRACE_FORMAT) r.fail('header.format', `"${TRACE_FORMAT}" (is this an isoroot trace?)`, o.format);
  if (o.version !== TRACE_VERSION) r.fail('header.version', `version ${TRACE_VERSION}`, o.version);
  const topology = parseTopology(o.topology, r.where);
  const t = r.object('header.target', o.target);
  r.only('header.target', t, ['name', 'version', 'mutant', 'observes', 'profile']);
  const target: TraceHeader['target'] = {
    name: r.string('header.target.name', t.name),
    version: r.string('header.target.version', t.version),
    observes: parseObserves(r, 'header.target.observes', t.observes),
  };
  if (t.mutant !== undefined) target.mutant = r.string('header.target.mutant', t.mutant);
  if (t.profile !== undefined) target.profile = parseProfile(t.profile, (p) => r.where(`header.target.${p}`));
  return {
    format: TRACE_FORMAT,
    version: TRACE_VERSION,
    topology,
    target,
    seed: o.seed === null || o.seed === undefined ? null : r.int('header.seed', o.seed, -(2 ** 31), 2 ** 31 - 1),
    isoroot: r.string('header.isoroot', o.isoroot),
    time: r.string('header.time', o.time),
  };
}

export function stepToJson(s: Step): Record<string, unknown> {
  const j = opToJson(s.op);
  if (s.obs !== undefined) j.obs = obsToJson(s.obs);
  if (s.failure !== undefined) j.failure = { ...s.failure };
  return j;
}

export function parseStep(r: JsonReader, v: unknown): Step {
  const o = r.object('step', v);
  const op = parseOp(r, 'step', o, ['obs', 'failure']);
  const step: Step = { op };
  if (o.obs !== undefined) step.obs = parseObs(r, at('step', 'obs'), o.obs);
  if (o.failure !== undefined) {
    if (o.obs !== undefined) r.fail('step.failure', 'either an observation or a failure, not both');
    const f = r.object('step.failure', o.failure);
    r.only('step.failure', f, ['kind', 'message', 'stderr', 'field']);
    step.failure = { kind: r.oneOf('step.failure.kind', f.kind, FAILURE_KINDS), message: r.string('step.failure.message', f.message) };
    if (f.stderr !== undefined) step.failure.stderr = r.string('step.failure.stderr', f.stderr);
    if (f.field !== undefined) step.failure.field = r.string('step.failure.field', f.field);
  }
  return step;
}
