/**
 * Command-line parsing: every option is declared with its value type, so
 * a wrong or missing value is a usage error that says what was expected.
 */
import { InputError } from '../util/errors.ts';

export interface OptionSpec {
  name: string;
  /** Placeholder for the value, or null for a flag. */
  value: string | null;
  doc: string;
  repeat?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: OptionSpec[];
  /** Positional arguments: their placeholder, and whether at least one is required. */
  positional?: { name: string; required: boolean; many: boolean };
}

export interface Parsed {
  opts: Map<string, string[]>;
  flags: Set<string>;
  positional: string[];
}

export class UsageError extends InputError {
  constructor(
    readonly command: string,
    message: string,
  ) {
    super(`isoroot ${command}`, message);
    this.name = 'UsageError';
  }
}

export function parseArgs(spec: CommandSpec, argv: string[]): Parsed {
  const out: Parsed = { opts: new Map(), flags: new Set(), positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      out.flags.add('help');
      continue;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      const o = spec.options.find((x) => x.name === name);
      if (o === undefined) throw new UsageError(spec.name, `unknown option --${name} (see isoroot ${spec.name} --help)`);
      if (o.value === null) {
        if (eq >= 0) throw new UsageError(spec.name, `--${name} takes no value`);
        out.flags.add(name);
        continue;
      }
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || (eq < 0 && v.startsWith('--'))) throw new UsageError(spec.name, `--${name} needs a value: ${o.value}`);
      const prev = out.opts.get(name) ?? [];
      if (prev.length > 0 && o.repeat !== true) throw new UsageError(spec.name, `--${name} given twice`);
      out.opts.set(name, [...prev, v]);
      continue;
    }
    out.positional.push(a);
  }
  if (out.flags.has('help')) return out;
  const p = spec.positional;
  if (p === undefined && out.positional.length > 0) throw new UsageError(spec.name, `unexpected argument "${out.positional[0]}"`);
  if (p !== undefined) {
    if (p.required && out.positional.length === 0) throw new UsageError(spec.name, `missing ${p.name}`);
    if (!p.many && out.positional.length > 1) throw new UsageError(spec.name, `one ${p.name} only, got ${out.positional.length}`);
  }
  return out;
}

export const one = (p: Parsed, name: string): string | undefined => p.opts.get(name)?.[0];

export function intOpt(command: string, p: Parsed, name: string, min: number, max: number): number | undefined {
  const v = one(p, name);
  if (v === undefined) return undefined;
  if (!/^-?[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(command, `--${name} must be an integer in [${min}, ${max}], got "${v}"`);
  return Number(v);
}

export function helpText(spec: CommandSpec): string {
  const w = Math.max(...spec.options.map((o) => o.name.length + (o.value === null ? 0 : o.value.length + 1)), 4) + 4;
  const lines = [`isoroot ${spec.name}: ${spec.summary}`, '', `usage: ${spec.usage}`, '', 'options:'];
  for (const o of [...spec.options, { name: 'help', value: null, doc: 'this help' }]) lines.push(`  ${`--${o.name}${o.value === null ? '' : ` ${o.value}`}`.padEnd(w)}${o.doc}`);
  return lines.join('\n');
}
