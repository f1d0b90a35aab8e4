/**
 * isoroot rules: what a verdict can rest on. The rule book (mandated
 * rules, each with its section), the implementation choices (the points
 * a specification leaves open, with their options) and the profiles (the
 * options one implementation takes). `--profile FILE` reads and checks a
 * user's profile, so a profile is validated before a campaign relies on it.
 */
import { RULES, isRuleId, type RuleId } from '../../spec/rules.ts';
import { CHOICES, isChoiceId, type ChoiceId } from '../../spec/choices.ts';
import { builtinProfiles, loadProfile, type Profile } from '../../profiles/profile.ts';
import { UsageError, type CommandSpec, type Parsed } from '../args.ts';

export const RULES_COMMAND: CommandSpec = {
  name: 'rules',
  summary: 'list the rules findings rest on, the implementation choices and the profiles',
  usage: 'isoroot rules [ID...] [--profile NAME|FILE]',
  positional: { name: 'ID', required: false, many: true },
  options: [{ name: 'profile', value: 'NAME|FILE', doc: 'print a profile (built-in or a file, which is checked) instead of the rule book' }],
};

const ruleLines = (id: RuleId): string[] => [`${id}`, `  ${RULES[id].says}`, `  rests on: ${RULES[id].cites}`];

function choiceLines(id: ChoiceId): string[] {
  const c = CHOICES[id];
  const opts = Object.entries(c.options).map(([o, s], i) => `    ${o}${i === 0 ? ' (the model\'s default)' : ''}: ${s}`);
  return [`${id} (choice)`, `  ${c.says}`, `  left open by: ${c.cites}`, '  options:', ...opts];
}

function profileLines(p: Profile): string[] {
  const out = [`profile ${p.name}: ${p.describes}`];
  if (p.target !== undefined) out.push(`  target: ${p.target}${p.versions !== undefined ? ` ${p.versions.join(', ')}` : ''}`);
  for (const id of Object.keys(CHOICES) as ChoiceId[]) {
    const e = p.choices[id];
    out.push(e === undefined ? `  ${id}: open (any option the specification allows)` : `  ${id}: ${e.option} (${e.because})`);
  }
  const errnos = Object.entries(p.errno);
  out.push(errnos.length === 0 ? '  errno: open (any errno)' : '  errno:');
  for (const [reason, e] of errnos) out.push(`    ${reason}: ${e.errno} (${e.because})`);
  return out;
}

export async function runRules(p: Parsed, log: (s: string) => void): Promise<number> {
  const profile = p.opts.get('profile')?.[0];
  if (profile !== undefined) {
    if (p.positional.length > 0) throw new UsageError('rules', 'give either IDs or --profile, not both');
    for (const l of profileLines(loadProfile(profile))) log(l);
    return 0;
  }
  const ids = p.positional;
  for (const id of ids) if (!isRuleId(id) && !isChoiceId(id)) throw new UsageError('rules', `"${id}" is neither a rule nor a choice (isoroot rules lists them)`);
  const rules = (Object.keys(RULES) as RuleId[]).filter((id) => ids.length === 0 || ids.includes(id));
  const choices = (Object.keys(CHOICES) as ChoiceId[]).filter((id) => ids.length === 0 || ids.includes(id));
  if (ids.length === 0) log(`${rules.length} rules (mandated: a finding on one is a violation of the section)`);
  for (const id of rules) for (const l of ruleLines(id)) log(l);
  if (ids.length === 0) log(`\n${choices.length} choices (left to the implementation: a profile picks an option; with no profile any option is accepted)`);
  for (const id of choices) for (const l of choiceLines(id)) log(l);
  if (ids.length === 0) log(`\nprofiles: ${builtinProfiles().join(', ')} (isoroot rules --profile NAME)`);
  return 0;
}
