/**
 * A strict JSON reader and writer for VERSION's capabilities (RFC 8259: no duplicate keys, bounded nesting, numbers kept as their text).
 */
import { JSON_MAX_DEPTH } from './layout.ts';

export type JNode =
  | { t: 'obj'; pos: number; entries: { key: string; value: JNode }[] }
  | { t: 'arr'; pos: number; items: JNode[] }
  | { t: 'str'; pos: number; v: string }
  | { t: 'num'; pos: number; raw: string }
  | { t: 'bool'; pos: number; v: boolean }
  | { t: 'null'; pos: number };

export class JsonError {
  constructor(
    readonly pos: number,
    readonly expected: string,
    readonly got: string,
  ) {}
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

export const INTEGER = /^-?(?:0|[1-9][0-9]*)$/;

/** RFC 8259 JSON, strictly: no duplicate keys, bounded nesting, numbers kept as their text. */
export function parseJson(text: string): JNode {
  let i = 0;
  const gotHere = (): string => (i < text.length ? JSON.stringify(text[i]) : 'the end of the text');
  const err = (expected: string): never => {
    throw new JsonError(i, expected, gotHere());
  };
  const ws = (): void => {
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    }
  };
  const str = (): string => {
    i++; // the opening quote
    let out = '';
    let from = i;
    for (;;) {
      if (i >= text.length) err('a closing quote');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(from, i);
        i++;
        return out;
      }
      if (c < 0x20) err('no raw control character in a string');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(from, i);
      const e = text[i + 1];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && Object.hasOwn(simple, e)) {
        out += simple[e];
        i += 2;
      } else if (e === 'u') {
        const h = text.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(h)) {
          i += 2;
          err('four hex digits after \\u');
        }
        out += String.fromCharCode(parseInt(h, 16));
        i += 6;
      } else {
        i++;
        err('an escape: \\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX');
      }
      from = i;
    }
  };
  const value = (depth: number): JNode => {
    ws();
    const pos = i;
    if (depth > JSON_MAX_DEPTH) err(`nesting at most ${JSON_MAX_DEPTH} deep`);
    const c = text[i];
    if (c === '{') {
      i++;
      const entries: { key: string; value: JNode }[] = [];
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return { t: 'obj', pos, entries };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') err('a string (an object key)');
        const keyPos = i;
        const key = str();
        if (seen.has(key)) throw new JsonError(keyPos, 'unique keys in an object', `${JSON.stringify(key)} again`);
        seen.add(key);
        ws();
        if (text[i] !== ':') err("':'");
        i++;
        entries.push({ key, value: value(depth + 1) });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return { t: 'obj', pos, entries };
        }
        err("',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const items: JNode[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { t: 'arr', pos, items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return { t: 'arr', pos, items };
        }
        err("',' or ']'");
      }
    }
    if (c === '"') return { t: 'str', pos, v: str() };
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (m === null) err('a number');
      const raw = m![0];
      if (!Number.isFinite(Number(raw))) err('a number within the range of a double');
      i += raw.length;
      return { t: 'num', pos, raw };
    }
    for (const [lit, node] of [
      ['true', { t: 'bool', pos, v: true }],
      ['false', { t: 'bool', pos, v: false }],
      ['null', { t: 'null', pos }],
    ] as const) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return node;
      }
    }
    return err('a JSON value');
  };
  const root = value(0);
  ws();
  if (i !== text.length) err('the end of the JSON text');
  return root;
}

/** Sets a key as an own, enumerable property (a "__proto__" key stays data). */
export const put = (o: Record<string, unknown>, k: string, v: unknown): void => {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
};

/** A parsed JSON value as plain data: integers past 2^53 as bigint. */
export function plain(n: JNode): unknown {
  switch (n.t) {
    case 'obj': {
      const o: Record<string, unknown> = {};
      for (const e of n.entries) put(o, e.key, plain(e.value));
      return o;
    }
    case 'arr':
      return n.items.map(plain);
    case 'str':
    case 'bool':
      return n.v;
    case 'null':
      return null;
    case 'num': {
      if (INTEGER.test(n.raw)) {
        const b = BigInt(n.raw);
        return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
      }
      const x = Number(n.raw);
      return x === 0 ? 0 : x; // no -0: it would not survive JSON text
    }
  }
}

/** JSON text of plain data (bigint as a number literal). */
export function toJson(v: unknown, depth = 0): string {
  if (depth > JSON_MAX_DEPTH) throw new TypeError(`VERSION JSON nests deeper than ${JSON_MAX_DEPTH}`);
  if (v === null) return 'null';
  switch (typeof v) {
    case 'bigint':
      return v.toString();
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`VERSION JSON cannot carry ${v}`);
      return JSON.stringify(v);
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : toJson(x, depth + 1))).join(',')}]`;
      const parts: string[] = [];
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) parts.push(`${JSON.stringify(k)}:${toJson(x, depth + 1)}`);
      return `{${parts.join(',')}}`;
    }
    default:
      throw new TypeError(`VERSION JSON cannot carry a ${typeof v}`);
  }
}
