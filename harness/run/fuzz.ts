/**
 * Property-based fuzzing: fast-check generates scenarios (a topology and
 * an operation sequence), runs them on the target, checks them, and
 * shrinks a failing one to a minimal sequence. Reproducible from a seed
 * and a path.
 */
import fc from 'fast-check';
import type { Target } from '../adapters/target.ts';
import { scenarioArb, type Scenario } from '../../generators/sequence.ts';
import { topologyArb } from '../../generators/topology.ts';
import { constraintsFor } from '../../generators/constraints.ts';
import type { Topology } from '../topology/types.ts';
import type { Finding } from '../oracles/finding.ts';
import { execute, type Executed } from './execute.ts';
import { checkRun, violations } from './check.ts';
import { DDMIN_AFTER_FC, ddmin } from './ddmin.ts';

export interface FuzzOptions {
  seed: number;
  runs: number;
  /** A fixed topology; otherwise topologies are generated too. */
  topology?: Topology;
  /** Which violations fail the property (default: all). */
  counts?: (f: Finding) => boolean;
  maxFragments?: number;
  /** Replays one run: the path fast-check printed. */
  path?: string;
}

export interface FuzzFailure {
  scenario: Scenario;
  executed: Executed;
  findings: Finding[];
  seed: number;
  path: string;
  numRuns: number;
  numShrinks: number;
}

export interface FuzzResult {
  numRuns: number;
  failure: FuzzFailure | null;
}

export async function fuzz(target: Target, o: FuzzOptions): Promise<FuzzResult> {
  const c = constraintsFor(target);
  const topologies = o.topology !== undefined ? fc.constant(o.topology) : topologyArb(c);
  const counts = o.counts ?? (() => true);
  /** Whether a scenario shows a violation that counts: the property, and the test delta debugging runs. */
  const fails = async (sc: Scenario): Promise<boolean> => {
    const ex = await execute(target, sc.topology, sc.ops);
    return violations(checkRun(sc.topology, target.capabilities.observes, ex.steps, ex.failure, sc.ops)).some(counts);
  };
  const prop = fc.asyncProperty(scenarioArb(topologies, c, { maxFragments: o.maxFragments }), async (sc) => !(await fails(sc)));
  const params: fc.Parameters<[Scenario]> = { seed: o.seed, numRuns: o.runs };
  if (o.path !== undefined) params.path = o.path;
  const res = await fc.check(prop, params);
  if (!res.failed || res.counterexample === null) return { numRuns: res.numRuns, failure: null };
  // fast-check drops whole fragments; delta debugging drops the ops of a fragment that the failure does not need.
  const [shrunk] = res.counterexample;
  const scenario: Scenario = { topology: shrunk.topology, ops: await ddmin(shrunk.ops, (ops) => fails({ topology: shrunk.topology, ops }), DDMIN_AFTER_FC) };
  // Run the minimal scenario once more to keep its observations and findings.
  const executed = await execute(target, scenario.topology, scenario.ops);
  const findings = checkRun(scenario.topology, target.capabilities.observes, executed.steps, executed.failure, scenario.ops);
  return {
    numRuns: res.numRuns,
    failure: { scenario, executed, findings, seed: res.seed, path: res.counterexamplePath ?? '', numRuns: res.numRuns, numShrinks: res.numShrinks },
  };
}
