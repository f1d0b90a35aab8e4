/**
 * How the model takes an implementation choice (harness/spec/choices.ts)
 * at the point where it meets one: a Chooser picks one of the options,
 * each given with the observation it would produce. Generating and the
 * model as a target take the profile's option or the default; checking a
 * trace follows the option the target took when the profile leaves it
 * open (choosers.ts in harness/oracles).
 */
import type { ChoiceId } from '../spec/choices.ts';
import type { Observation } from '../ops/observation.ts';

export interface Option {
  option: string;
  /** What the op observes under this option; a value left out (or unknown) is not told apart. */
  obs: Observation;
  /** obs.irqs holds every interrupt the op raises under this option, so they tell the options apart too. */
  withIrqs?: true;
}

/**
 * Picks an option; `declared` when a profile fixed it rather than the
 * observation. `departs`: the profile's option, when the target took
 * another one the specification allows (the model follows the target,
 * so that one departure does not cascade; the oracle reports it).
 */
export type Chooser = (id: ChoiceId, options: readonly Option[]) => { option: string; declared: boolean; departs?: string };

/** The model's defaults: the first option of every choice. */
export const DEFAULT_CHOOSER: Chooser = (_id, options) => ({ option: options[0].option, declared: false });

/** A choice the model met during one op: what it took, and the other outcomes the specification allows. */
export interface ChoiceMade {
  id: ChoiceId;
  option: string;
  declared: boolean;
  departs?: string;
  others: Option[];
}
