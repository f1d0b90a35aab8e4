/**
 * The chooser the checker hands the model (harness/model/choose.ts): at
 * an implementation choice, the profile's option when it declares one;
 * otherwise the option whose outcome the target observed (any outcome a
 * specification allows is accepted), or the model's default when none
 * matches, so that the divergence names the mandated rule.
 */
import type { Chooser, Option } from '../model/choose.ts';
import type { Op } from '../ops/catalog.ts';
import type { Observation, Observes } from '../ops/observation.ts';
import { optionOf, type Profile } from '../profiles/profile.ts';
import { differences } from './compare.ts';

/** One per checker, pointed at each step's op and observation in turn (a chooser per step was an allocation on the hot path). */
export class ObservedChooser {
  private op: Op | null = null;
  private observed: Observation = { status: 'ok' };
  /** What an option's outcome is compared on: most options carry no interrupts (the model raises those apart). */
  private readonly seen: Observes;
  /** For an option that carries its interrupts (Option.withIrqs): they are compared too. */
  private readonly seenWithIrqs: Observes;

  constructor(
    observes: Observes,
    private readonly profile: Profile | null,
  ) {
    this.seen = { ...observes, irqs: false };
    this.seenWithIrqs = observes;
  }

  /** The chooser for this op and what the target observed of it. */
  for(op: Op, observed: Observation): Chooser {
    this.op = op;
    this.observed = observed;
    return this.choose;
  }

  private readonly choose: Chooser = (id, options) => {
    const op = this.op!;
    const observed = this.observed;
    const declared = optionOf(this.profile, id);
    if (observed.source === 'harness') return { option: declared ?? options[0].option, declared: declared !== undefined };
    // Options the op's own observation cannot tell apart (one observation for all): the profile's, else the model's default.
    if (options.every((o) => o.obs === options[0].obs)) return { option: declared ?? options[0].option, declared: declared !== undefined };
    const fits = (o: Option): boolean => differences(op, observed, o.obs, o.withIrqs === true ? this.seenWithIrqs : this.seen).length === 0;
    const matches = (x: string | undefined): boolean => options.some((o) => o.option === x && fits(o));
    if (declared !== undefined && matches(declared)) return { option: declared, declared: true };
    const match = options.find(fits);
    // The target took another outcome the specification allows: follow it, and say the profile said otherwise.
    if (declared !== undefined) return match === undefined ? { option: declared, declared: true } : { option: match.option, declared: true, departs: declared };
    return { option: (match ?? options[0]).option, declared: false };
  };
}
