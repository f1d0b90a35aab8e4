/**
 * The model as a target (`--target model`), optionally with a mutant. It is
 * the first target and the one every suite can run without external
 * programs; the reference model the oracles replay is always a separate,
 * unmutated instance.
 */
import { Model } from '../../model/model.ts';
import { REFERENCE_RULES } from '../../model/rules.ts';
import { PCI_CAPABILITIES } from '../../ops/catalog.ts';
import { VIAS } from '../../ops/fields.ts';
import { CAP_NAMES, PERSONALITIES } from '../../topology/types.ts';
import { InputError } from '../../util/errors.ts';
import { MUTANT_NAMES, mutantRules } from './mutants.ts';
import type { Capabilities, Target } from '../target.ts';
import { OBSERVES_ALL } from '../../ops/observation.ts';
import { ISOROOT_VERSION } from '../../version.ts';

export const MODEL_CAPABILITIES: Capabilities = {
  ops: PCI_CAPABILITIES,
  maxRoots: 16,
  personalities: PERSONALITIES,
  caps: CAP_NAMES,
  vias: VIAS,
  observes: OBSERVES_ALL,
  contract: 'topology',
};

export function modelTarget(mutant?: string): Target {
  const rules = mutant === undefined ? REFERENCE_RULES : mutantRules(mutant);
  if (rules === null) throw new InputError('--mutant', `one of ${MUTANT_NAMES.join(', ')} (got "${mutant}")`);
  return {
    info: mutant === undefined ? { name: 'model', version: ISOROOT_VERSION } : { name: 'model', version: ISOROOT_VERSION, mutant },
    capabilities: MODEL_CAPABILITIES,
    async open(topology) {
      const m = new Model(topology, rules);
      return {
        async apply(op) {
          return m.apply(op);
        },
        async run(ops) {
          return { observations: ops.map((op) => m.apply(op)) };
        },
        async close() {},
      };
    },
  };
}
