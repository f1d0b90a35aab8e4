/**
 * Mutants: faulty variants of the model that the suites must catch. Each
 * replaces one rule of the reference model (harness/model/rules.ts) with
 * the bug of the same name, and names the oracle that must catch it.
 */
import { REFERENCE_RULES, type Rules } from '../../model/rules.ts';
import { ownerOf } from '../../topology/types.ts';

export interface Mutant {
  name: string;
  description: string;
  /** The oracles (finding kinds) whose findings count as catching it. */
  caughtBy: readonly ('misroute' | 'collision' | 'leak' | 'divergence')[];
  rules: Partial<Rules>;
}

export const MUTANTS: readonly Mutant[] = [
  {
    name: 'shared-io-space',
    description: 'the IO space is shared across roots declared isolated',
    caughtBy: ['collision'],
    rules: { ioOwner: () => 0 },
  },
  {
    name: 'global-dma',
    description: "every root's DMA lands in one memory (root 0's)",
    caughtBy: ['leak'],
    rules: { dmaMemoryOwner: () => 0 },
  },
  {
    name: 'bar64-high-dropped',
    description: 'the upper dword of 64-bit BARs is ignored',
    caughtBy: ['misroute', 'divergence'],
    rules: { bar64High: () => 0 },
  },
  {
    name: 'stale-bar',
    description: 'the old mapping is kept after a BAR moves or decode is disabled',
    caughtBy: ['leak'],
    rules: { keepStaleMappings: true },
  },
  {
    name: 'pasid-survives-free',
    description: 'a freed PASID still translates',
    caughtBy: ['leak'],
    rules: { freeUnbinds: false },
  },
  {
    name: 'pasid-per-device',
    description: 'PASIDs are allocated per device instead of per shared context',
    caughtBy: ['collision'],
    rules: { pasidNamespace: (_ctx, dev) => dev },
  },
  {
    name: 'ecam-bus-alias',
    description: 'ECAM decode ignores the top three bits of the bus number',
    caughtBy: ['misroute'],
    rules: { ecamBus: (bus) => bus & 0x1f },
  },
  {
    name: 'bridge-window-off-by-one',
    description: 'the memory limit of bridge windows is decoded one MiB short',
    caughtBy: ['misroute'],
    rules: { bridgeMemLimit: (limit) => limit - 0x100000 },
  },
  {
    name: 'cross-root-msi',
    description: "an MSI from one root is raised in another root's interrupt space",
    caughtBy: ['misroute'],
    rules: {
      msiSpace: (t, r) => {
        const own = ownerOf(t, r, 'irq');
        for (let i = 1; i < t.roots.length; i++) {
          const other = ownerOf(t, (r + i) % t.roots.length, 'irq');
          if (other !== own) return other;
        }
        return own;
      },
    },
  },
  {
    name: 'emulator-bdf-mask',
    description: "an emulator registered for one BDF also receives its neighbour's config accesses",
    caughtBy: ['misroute'],
    rules: { emulatorKeys: (bdf) => [bdf, bdf ^ 1] },
  },
];

export const MUTANT_NAMES = MUTANTS.map((m) => m.name);

export function mutantRules(name: string): Rules | null {
  const m = MUTANTS.find((x) => x.name === name);
  return m === undefined ? null : { ...REFERENCE_RULES, ...m.rules };
}
