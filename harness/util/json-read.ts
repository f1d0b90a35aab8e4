/**
 * Readers for untrusted JSON: each returns the typed value or throws an
 * InputError naming the path and what was expected. Used at every edge
 * (topology files, trace lines, target protocol messages).
 */
import { InputError, at, type JsonPath } from './errors.ts';
import { parseBig } from './hex.ts';

export type Where = (path: JsonPath) => string;

export const describe = (v: unknown): string =>
  v === null
    ? 'null'
    : Array.isArray(v)
      ? 'an array'
      : typeof v === 'string'
        ? JSON.stringify(v).slice(0, 40)
        : typeof v === 'number' || typeof v === 'boolean'
          ? String(v)
          : v === undefined
            ? 'nothing'
            : typeof v;

export class JsonReader {
  /** where(path) renders a location such as `file:12: ops[3].addr`. */
  constructor(readonly where: Where) {}

  fail(path: JsonPath, expected: string, got?: unknown): never {
    throw new InputError(this.where(path), got === undefined ? expected : `expected ${expected}, got ${describe(got)}`);
  }

  object(path: JsonPath, v: unknown): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'an object', v);
    return v as Record<string, unknown>;
  }

  array(path: JsonPath, v: unknown): unknown[] {
    if (!Array.isArray(v)) this.fail(path, 'an array', v);
    return v;
  }

  string(path: JsonPath, v: unknown): string {
    if (typeof v !== 'string') this.fail(path, 'a string', v);
    return v;
  }

  bool(path: JsonPath, v: unknown): boolean {
    if (typeof v !== 'boolean') this.fail(path, 'true or false', v);
    return v;
  }

  /** An integer in [min, max]; accepts JSON numbers and "0x…" strings. */
  int(path: JsonPath, v: unknown, min: number, max: number): number {
    const b = parseBig(v);
    if (b === null || b < BigInt(min) || b > BigInt(max))
      this.fail(path, `an integer in [${fmt(min)}, ${fmt(max)}]`, v);
    return Number(b);
  }

  big(path: JsonPath, v: unknown, bits: number): bigint {
    const b = parseBig(v);
    if (b === null || b >= 1n << BigInt(bits)) this.fail(path, `an unsigned ${bits}-bit integer ("0x…")`, v);
    return b;
  }

  oneOf<T extends string>(path: JsonPath, v: unknown, values: readonly T[]): T {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
      this.fail(path, `one of ${values.join(', ')}`, v);
    return v as T;
  }

  /** Rejects keys outside `allowed`, so that typos in hand-written files do not pass silently. */
  only(path: JsonPath, o: Record<string, unknown>, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) this.fail(at(path, k), `no field "${k}" (allowed: ${allowed.join(', ')})`);
  }
}

const fmt = (n: number): string => (n > 4096 ? '0x' + n.toString(16) : String(n));
