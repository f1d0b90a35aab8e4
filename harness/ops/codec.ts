/** JSON (de)serialisation and printing of operations, derived from the catalog. */
import { at } from '../util/errors.ts';
import type { JsonReader } from '../util/json-read.ts';
import { OP_KINDS, specOf, type Op } from './catalog.ts';
import { parseFields } from './fields.ts';

export function opToJson(op: Op): Record<string, unknown> {
  const out: Record<string, unknown> = { op: op.op };
  const o = op as unknown as Record<string, unknown>;
  for (const [k, f] of Object.entries(specOf(op.op).fields)) if (o[k] !== undefined) out[k] = f.toJson(o[k]);
  return out;
}

/** Cross-field problems of a well-typed op, or null. */
export function opProblem(op: Op): string | null {
  const s = specOf(op.op);
  return s.problem === undefined ? null : s.problem(op as never);
}

/**
 * Reads an op from JSON. `extra` lists keys that belong to the enclosing
 * record (such as "obs" on a trace line) and are not op fields.
 */
export function parseOp(r: JsonReader, path: string, o: Record<string, unknown>, extra: readonly string[] = []): Op {
  const kind = r.oneOf(at(path, 'op'), o.op, OP_KINDS);
  const s = specOf(kind);
  r.only(path, o, ['op', ...Object.keys(s.fields), ...extra]);
  const op = { op: kind, ...parseFields(r, path, o, s.fields) } as unknown as Op;
  const p = opProblem(op);
  if (p !== null) r.fail(path, `a valid ${kind}: ${p}`);
  return op;
}

/** One line for humans: `cfg.write r0 ecam 00:03.0 reg=0x10 size=4 value=0xffffffff`. */
export function showOp(op: Op): string {
  const o = op as unknown as Record<string, unknown>;
  const parts: string[] = [op.op];
  for (const [k, f] of Object.entries(specOf(op.op).fields)) {
    if (o[k] === undefined) continue;
    const v = f.show(o[k]);
    parts.push(k === 'root' || k === 'dev' || k === 'via' || k === 'bdf' ? v : `${k}=${v}`);
  }
  return parts.join(' ');
}
