/**
 * Profiles: the choices one implementation makes where the specifications
 * allow several outcomes (harness/spec/choices.ts), as data. A profile
 * can only pick among the options a choice allows, and say which errno
 * each refusal carries: it narrows what the specifications allow and
 * never widens it. Built-in profiles are the JSON files beside this one;
 * `--profile FILE` reads a user's.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHOICES, isChoiceId, type ChoiceId } from '../spec/choices.ts';
import { errnoNumber } from '../spec/errno.ts';
import { ERROR_REASONS, FAULT_REASONS, type Reason } from '../ops/observation.ts';

/** Reasons a refusal may carry: the model refuses with fault reasons too (a DMA map in a domain that does not exist). */
const REASONS: readonly Reason[] = [...ERROR_REASONS, ...FAULT_REASONS];
import { InputError, at } from '../util/errors.ts';
import { JsonReader, type Where } from '../util/json-read.ts';

export interface ProfileEntry {
  option: string;
  /** Where the implementation makes this choice (its source, its documentation). */
  because: string;
}

export interface ErrnoEntry {
  errno: string;
  because: string;
}

export interface Profile {
  name: string;
  describes: string;
  /** The target kind it is written for (qemu, vfio-user, exec, …), and the versions it matches by prefix. */
  target?: string;
  versions?: string[];
  choices: Partial<Record<ChoiceId, ProfileEntry>>;
  /** The errno of each refusal, by the model's reason. */
  errno: Partial<Record<Reason, ErrnoEntry>>;
}

const DIR = dirname(fileURLToPath(import.meta.url));
const NAME = /^[a-z0-9][a-z0-9._-]*$/;

/** Reads a profile from untrusted JSON; errors name the path and what was expected. */
export function parseProfile(json: unknown, where: Where): Profile {
  const r: JsonReader = new JsonReader(where);
  const o = r.object('profile', json);
  r.only('profile', o, ['profile', 'describes', 'target', 'versions', 'choices', 'errno']);
  const name = r.string('profile.profile', o.profile);
  if (!NAME.test(name)) r.fail('profile.profile', 'a name of lower-case letters, digits, dot, dash or underscore', name);
  const p: Profile = { name, describes: r.string('profile.describes', o.describes), choices: {}, errno: {} };
  if (o.target !== undefined) p.target = r.string('profile.target', o.target);
  if (o.versions !== undefined) p.versions = r.array('profile.versions', o.versions).map((v, i) => r.string(at('profile.versions', i), v));
  const because = (path: string, v: unknown): string => {
    const s = r.string(path, v);
    if (s.trim() === '') r.fail(path, 'where the implementation makes this choice (a source file, a document)');
    return s;
  };
  if (o.choices !== undefined) {
    const c = r.object('profile.choices', o.choices);
    for (const [id, v] of Object.entries(c)) {
      const path = at('profile.choices', id);
      if (!isChoiceId(id)) r.fail(path, `a choice of harness/spec/choices.ts (${Object.keys(CHOICES).join(', ')})`);
      const e = r.object(path, v);
      r.only(path, e, ['option', 'because']);
      const options = Object.keys(CHOICES[id].options);
      // A profile picks what a specification allows; it never adds an outcome.
      const option = r.oneOf(at(path, 'option'), e.option, options);
      p.choices[id] = { option, because: because(at(path, 'because'), e.because) };
    }
  }
  if (o.errno !== undefined) {
    const e = r.object('profile.errno', o.errno);
    for (const [reason, v] of Object.entries(e)) {
      const path = at('profile.errno', reason);
      if (!(REASONS as readonly string[]).includes(reason)) r.fail(path, `a refusal reason (${REASONS.join(', ')})`);
      const x = r.object(path, v);
      r.only(path, x, ['errno', 'because']);
      const errno = r.string(at(path, 'errno'), x.errno);
      if (errnoNumber(errno) === null) r.fail(at(path, 'errno'), 'an errno name such as EINVAL (harness/spec/errno.ts) or "errno N"', errno);
      p.errno[reason as Reason] = { errno, because: because(at(path, 'because'), x.because) };
    }
  }
  return p;
}

/** The names of the built-in profiles. */
export function builtinProfiles(): string[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => basename(f, '.json'))
    .sort();
}

function readProfileFile(file: string): Profile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(file, `a profile in JSON (${(e as Error).message})`);
  }
  return parseProfile(json, (p) => `${file}: ${p}`);
}

/** A built-in profile by name, or a profile file; an input error names the option. */
export function loadProfile(nameOrFile: string, option = '--profile'): Profile {
  if (NAME.test(nameOrFile) && existsSync(join(DIR, `${nameOrFile}.json`))) return readProfileFile(join(DIR, `${nameOrFile}.json`));
  if (existsSync(nameOrFile)) return readProfileFile(nameOrFile);
  throw new InputError(option, `a built-in profile (${builtinProfiles().join(', ')}) or a profile file, got "${nameOrFile}"`);
}

/** The value of --profile: "none" judges by the specifications alone, over any profile the target declares. */
export const loadProfileOption = (v: string): Profile | null => (v === 'none' ? null : loadProfile(v));

/** The built-in profile written for a target kind and version (the longest matching version prefix), or null. */
export function profileFor(target: string, version: string): Profile | null {
  let best: { p: Profile; len: number } | null = null;
  for (const name of builtinProfiles()) {
    const p = loadProfile(name);
    if (p.target !== target) continue;
    for (const v of p.versions ?? ['']) if (version.startsWith(v) && (best === null || v.length > best.len)) best = { p, len: v.length };
  }
  return best?.p ?? null;
}

/** The option a profile takes for a choice, or undefined when it leaves it open. */
export const optionOf = (p: Profile | null | undefined, id: ChoiceId): string | undefined => p?.choices[id]?.option;

/** A profile as JSON (a trace header carries the profile it was judged by). */
export function profileToJson(p: Profile): Record<string, unknown> {
  const out: Record<string, unknown> = { profile: p.name, describes: p.describes };
  if (p.target !== undefined) out.target = p.target;
  if (p.versions !== undefined) out.versions = [...p.versions];
  out.choices = Object.fromEntries(Object.entries(p.choices).map(([k, v]) => [k, { option: v.option, because: v.because }]));
  out.errno = Object.fromEntries(Object.entries(p.errno).map(([k, v]) => [k, { errno: v.errno, because: v.because }]));
  return out;
}
