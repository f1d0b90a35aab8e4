/**
 * Field types of the operation description. Each field knows how to read
 * itself from JSON (with a precise error), write itself back, print itself
 * for humans, and generate values with fast-check. Operations are built
 * from these, so the trace codec, the printer and the generators all
 * derive from one description.
 */
import fc from 'fast-check';
import { at } from '../util/errors.ts';
import { bytesToHex, hex, hexToBytes } from '../util/hex.ts';
import type { JsonReader } from '../util/json-read.ts';
import { formatBdf, parseBdf, type Bdf } from '../topology/bdf.ts';

/** What the generators know about the topology when they draw field values. */
export interface OpDomain {
  roots: number;
  devices: readonly string[];
  emulators: readonly string[];
  domains: number;
  vias: readonly Via[];
  /** Bus numbers in use (root buses and planned secondary buses). */
  buses: readonly number[];
  /** Operation families the target carries out (catalog.ts CAPABILITIES). */
  ops: readonly string[];
}

export const VIAS = ['ecam', 'cf8'] as const;
export type Via = (typeof VIAS)[number];

export interface Field<T, Opt extends boolean = boolean> {
  /** Short type description, used in error messages and docs. */
  readonly doc: string;
  readonly optional: Opt;
  parse(r: JsonReader, path: string, v: unknown): T;
  toJson(v: T): unknown;
  show(v: T): string;
  arb(d: OpDomain): fc.Arbitrary<T>;
}

type Spec<T> = Omit<Field<T, false>, 'optional'>;
const req = <T>(s: Spec<T>): Field<T, false> => ({ ...s, optional: false });

/** An optional field: absent in JSON and in the op when not given. */
export function optional<T>(f: Field<T, false>): Field<T, true> {
  return {
    ...f,
    doc: `${f.doc} (optional)`,
    optional: true,
    arb: (d) => fc.option(f.arb(d), { nil: undefined, freq: 2 }) as fc.Arbitrary<T>,
  };
}

const biasedInt = (min: number, max: number, likely: readonly number[]): fc.Arbitrary<number> => {
  const inRange = likely.filter((x) => x >= min && x <= max);
  return inRange.length === 0 ? fc.integer({ min, max }) : fc.oneof({ arbitrary: fc.constantFrom(...inRange), weight: 2 }, { arbitrary: fc.integer({ min, max }), weight: 1 });
};

export const F = {
  root: (): Field<number, false> =>
    req({
      doc: 'root index',
      parse: (r, p, v) => r.int(p, v, 0, 15),
      toJson: (v) => v,
      show: (v) => `r${v}`,
      arb: (d) => fc.integer({ min: 0, max: Math.max(0, d.roots - 1) }),
    }),

  int: (doc: string, min: number, max: number, likely: readonly number[] = []): Field<number, false> =>
    req({
      doc: `${doc}, ${min}..${max}`,
      parse: (r, p, v) => r.int(p, v, min, max),
      toJson: (v) => v,
      show: (v) => String(v),
      arb: () => biasedInt(min, max, likely),
    }),

  /** An integer printed in hex: addresses, register offsets, values. */
  hex: (doc: string, max: number, likely: readonly number[] = []): Field<number, false> =>
    req({
      doc: `${doc}, "0x…" up to ${hex(max)}`,
      parse: (r, p, v) => r.int(p, v, 0, max),
      toJson: (v) => hex(v),
      show: (v) => hex(v),
      arb: () => biasedInt(0, max, likely),
    }),

  /** A value of up to 64 bits. */
  value: (): Field<bigint, false> =>
    req({
      doc: 'value, "0x…" up to 64 bits',
      parse: (r, p, v) => r.big(p, v, 64),
      toJson: (v) => hex(v),
      show: (v) => hex(v),
      arb: () =>
        fc.oneof(
          fc.constantFrom(0n, 0xffffffffn, 0xffffffffffffffffn, 1n, 0x1234n),
          fc.bigInt({ min: 0n, max: 0xffffffffn }),
          fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }),
        ),
    }),

  oneOf: <T extends string>(values: readonly T[], fromDomain?: (d: OpDomain) => readonly T[]): Field<T, false> =>
    req({
      doc: values.join(' | '),
      parse: (r, p, v) => r.oneOf(p, v, values),
      toJson: (v) => v,
      show: (v) => v,
      arb: (d) => {
        const vs = fromDomain?.(d) ?? values;
        return fc.constantFrom(...(vs.length > 0 ? vs : values));
      },
    }),

  dev: (): Field<string, false> =>
    req({
      doc: 'device id from the topology',
      parse: (r, p, v) => {
        const s = r.string(p, v);
        if (!/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(s)) r.fail(p, 'a device id', v);
        return s;
      },
      toJson: (v) => v,
      show: (v) => v,
      arb: (d) => (d.devices.length > 0 ? fc.constantFrom(...d.devices) : fc.constant('none')),
    }),

  emulator: (): Field<string, false> =>
    req({
      doc: 'emulator name from the topology',
      parse: (r, p, v) => r.string(p, v),
      toJson: (v) => v,
      show: (v) => v,
      arb: (d) => (d.emulators.length > 0 ? fc.constantFrom(...d.emulators) : fc.constant('qemu')),
    }),

  bdf: (): Field<Bdf, false> =>
    req({
      doc: 'BDF "bb:dd.f" (hex bus and device)',
      parse: (r, p, v) => {
        const b = typeof v === 'string' ? parseBdf(v) : null;
        return b ?? r.fail(p, 'a BDF such as "00:1f.3"', v);
      },
      toJson: (v) => formatBdf(v),
      show: (v) => formatBdf(v),
      arb: (d) =>
        fc
          .tuple(
            d.buses.length > 0 ? fc.oneof({ arbitrary: fc.constantFrom(...d.buses), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 1 }) : fc.integer({ min: 0, max: 255 }),
            biasedInt(0, 31, [0, 1, 2, 3, 4]),
            biasedInt(0, 7, [0, 0, 1]),
          )
          .map(([b, dv, fn]) => (b << 8) | (dv << 3) | fn),
    }),

  bytes: (maxLen: number): Field<Uint8Array, false> =>
    req({
      doc: `bytes as hex digits, 1..${maxLen} bytes`,
      parse: (r, p, v) => {
        const s = r.string(p, v);
        const b = hexToBytes(s);
        return b !== null && b.length >= 1 && b.length <= maxLen ? b : r.fail(p, `an even number of hex digits for 1..${maxLen} bytes`, v);
      },
      toJson: (v) => bytesToHex(v),
      show: (v) => (v.length <= 8 ? bytesToHex(v) : `${bytesToHex(v.subarray(0, 8))}…(${v.length})`),
      arb: () => fc.uint8Array({ minLength: 1, maxLength: Math.min(maxLen, 64) }),
    }),
};

/** Reads the declared fields of one op from a JSON object. */
export function parseFields(r: JsonReader, path: string, o: Record<string, unknown>, fields: Record<string, Field<unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(fields)) {
    if (o[k] === undefined) {
      if (f.optional) continue;
      r.fail(at(path, k), `field "${k}": ${f.doc}`);
    }
    out[k] = f.parse(r, at(path, k), o[k]);
  }
  return out;
}
