/** JSON (de)serialisation and printing of observations. */
import { at } from '../util/errors.ts';
import { bytesToHex, hex, hexToBytes } from '../util/hex.ts';
import type { JsonReader } from '../util/json-read.ts';
import { errnoNumber } from '../spec/errno.ts';
import { ERROR_REASONS, FAULT_REASONS, IRQ_KINDS, REGIONS, STATUSES, type Delivery, type Evidence, type Irq, type IrqView, type MapSegment, type Observation, type Observes, type Reason } from './observation.ts';

const REASONS: readonly Reason[] = [...FAULT_REASONS, ...ERROR_REASONS];
const ADDR_MAX = 2 ** 53 - 1;

export function obsToJson(o: Observation): Record<string, unknown> {
  const out: Record<string, unknown> = { status: o.status };
  if (o.reason !== undefined) out.reason = o.reason;
  if (o.errno !== undefined) out.errno = o.errno;
  if (o.value !== undefined) out.value = hex(o.value);
  if (o.data !== undefined) out.data = bytesToHex(o.data);
  if (o.to !== undefined) out.to = deliveryToJson(o.to);
  if (o.irqs !== undefined && o.irqs.length > 0) out.irqs = o.irqs.map(irqToJson);
  if (o.evidence !== undefined) out.evidence = evidenceToJson(o.evidence);
  if (o.source !== undefined) out.source = o.source;
  if (o.departures !== undefined && o.departures.length > 0) out.departures = o.departures.map((x) => [x.field, x.message]);
  return out;
}

const segmentToJson = (s: MapSegment): string[] => (s.owner === undefined ? [hex(s.start), hex(s.end), s.name] : [hex(s.start), hex(s.end), s.name, s.owner]);

function evidenceToJson(e: Evidence): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (e.maps !== undefined) out.maps = { memory: e.maps.memory.map(segmentToJson), io: e.maps.io.map(segmentToJson) };
  if (e.events !== undefined) out.events = e.events;
  return out;
}

function parseEvidence(r: JsonReader, path: string, v: unknown): Evidence {
  const o = r.object(path, v);
  r.only(path, o, ['maps', 'events']);
  const e: Evidence = {};
  if (o.maps !== undefined) {
    const m = r.object(at(path, 'maps'), o.maps);
    r.only(at(path, 'maps'), m, ['memory', 'io']);
    const segments = (k: 'memory' | 'io'): MapSegment[] =>
      r.array(at(at(path, 'maps'), k), m[k]).map((x, i) => {
        const p = at(at(at(path, 'maps'), k), i);
        const t = r.array(p, x);
        if (t.length !== 3 && t.length !== 4) r.fail(p, '["start", "end", "name"] or ["start", "end", "name", "owner"]');
        const start = r.int(at(p, 0), t[0], 0, ADDR_MAX);
        const end = r.int(at(p, 1), t[1], start, ADDR_MAX);
        const seg: MapSegment = { start, end, name: r.string(at(p, 2), t[2]) };
        if (t.length === 4) seg.owner = r.string(at(p, 3), t[3]);
        return seg;
      });
    e.maps = { memory: segments('memory'), io: segments('io') };
  }
  if (o.events !== undefined) e.events = r.array(at(path, 'events'), o.events).map((x, i) => r.string(at(at(path, 'events'), i), x));
  return e;
}

function deliveryToJson(d: Delivery): Record<string, unknown> {
  const out: Record<string, unknown> = { root: d.root };
  if (d.via !== undefined) out.via = d.via;
  if (d.dev !== undefined) out.dev = d.dev;
  if (d.region !== undefined) out.region = d.region;
  if (d.offset !== undefined) out.offset = hex(d.offset);
  return out;
}

function irqToJson(i: Irq): Record<string, unknown> {
  const out: Record<string, unknown> = { space: i.space, kind: i.kind };
  if (i.dev !== undefined) out.dev = i.dev;
  if (i.vector !== undefined) out.vector = i.vector;
  if (i.addr !== undefined) out.addr = hex(i.addr);
  if (i.data !== undefined) out.data = hex(i.data);
  if (i.pin !== undefined) out.pin = i.pin;
  if (i.line !== undefined) out.line = i.line;
  if (i.level !== undefined) out.level = i.level;
  return out;
}

export function parseObs(r: JsonReader, path: string, v: unknown): Observation {
  const o = r.object(path, v);
  r.only(path, o, ['status', 'reason', 'errno', 'value', 'data', 'to', 'irqs', 'evidence', 'source', 'departures']);
  const obs: Observation = { status: r.oneOf(at(path, 'status'), o.status, STATUSES) };
  if (o.reason !== undefined) obs.reason = r.oneOf(at(path, 'reason'), o.reason, REASONS);
  if (o.errno !== undefined) {
    const e = r.string(at(path, 'errno'), o.errno);
    if (errnoNumber(e) === null) r.fail(at(path, 'errno'), 'an errno name such as EINVAL, or "errno N"', e);
    obs.errno = e;
  }
  if (o.source !== undefined) obs.source = r.oneOf(at(path, 'source'), o.source, ['harness'] as const);
  if (o.departures !== undefined)
    obs.departures = r.array(at(path, 'departures'), o.departures).map((x, i) => {
      const p = at(at(path, 'departures'), i);
      const t = r.array(p, x);
      if (t.length !== 2) r.fail(p, '["field", "message"]');
      return { field: r.string(at(p, 0), t[0]), message: r.string(at(p, 1), t[1]) };
    });
  if (o.value !== undefined) obs.value = r.big(at(path, 'value'), o.value, 64);
  if (o.data !== undefined) {
    const b = hexToBytes(r.string(at(path, 'data'), o.data));
    obs.data = b ?? r.fail(at(path, 'data'), 'an even number of hex digits');
  }
  if (o.to !== undefined) {
    const p = at(path, 'to');
    const d = r.object(p, o.to);
    r.only(p, d, ['root', 'via', 'dev', 'region', 'offset']);
    const to: Delivery = { root: r.int(at(p, 'root'), d.root, 0, 15) };
    if (d.via !== undefined) to.via = r.string(at(p, 'via'), d.via);
    if (d.dev !== undefined) to.dev = r.string(at(p, 'dev'), d.dev);
    if (d.region !== undefined) to.region = r.oneOf(at(p, 'region'), d.region, REGIONS);
    if (d.offset !== undefined) to.offset = r.int(at(p, 'offset'), d.offset, 0, ADDR_MAX);
    obs.to = to;
  }
  if (o.irqs !== undefined) {
    obs.irqs = r.array(at(path, 'irqs'), o.irqs).map((x, i) => {
      const p = at(at(path, 'irqs'), i);
      const q = r.object(p, x);
      r.only(p, q, ['space', 'dev', 'kind', 'vector', 'addr', 'data', 'pin', 'line', 'level']);
      const irq: Irq = { space: r.int(at(p, 'space'), q.space, 0, 15), kind: r.oneOf(at(p, 'kind'), q.kind, IRQ_KINDS) };
      if (q.dev !== undefined) irq.dev = r.string(at(p, 'dev'), q.dev);
      if (q.vector !== undefined) irq.vector = r.int(at(p, 'vector'), q.vector, 0, 2047);
      if (q.addr !== undefined) irq.addr = r.int(at(p, 'addr'), q.addr, 0, ADDR_MAX);
      if (q.data !== undefined) irq.data = r.int(at(p, 'data'), q.data, 0, 0xffffffff);
      if (q.pin !== undefined) irq.pin = r.int(at(p, 'pin'), q.pin, 0, 3);
      if (q.line !== undefined) irq.line = r.int(at(p, 'line'), q.line, 0, 1023);
      if (q.level !== undefined) irq.level = r.int(at(p, 'level'), q.level, 0, 1) as 0 | 1;
      return irq;
    });
  }
  if (o.evidence !== undefined) obs.evidence = parseEvidence(r, at(path, 'evidence'), o.evidence);
  return obs;
}

const PINS = 'ABCD';

export function showIrq(i: Irq): string {
  const lvl = i.level === 1 ? '↑' : '↓';
  if (i.kind === 'intx') return `INT${PINS[i.pin ?? 0]}${lvl} ${i.dev ?? '?'}@r${i.space}`;
  if (i.kind === 'line') return `line ${i.line ?? 0}${lvl}@r${i.space}`;
  if (i.kind === 'message') return `message@r${i.space} ${hex(i.addr ?? 0)}=${hex(i.data ?? 0)}`;
  return `${i.kind.toUpperCase()}#${i.vector ?? 0} ${i.dev ?? '?'}@r${i.space} ${hex(i.addr ?? 0)}=${hex(i.data ?? 0)}`;
}

export function showDelivery(d: Delivery): string {
  if (d.dev === undefined && d.region === undefined) return `r${d.root}${d.via !== undefined ? ` via ${d.via}` : ''}: nobody`;
  const where = d.region === undefined ? '' : ` ${d.region}${d.offset !== undefined ? `+${hex(d.offset)}` : ''}`;
  return `r${d.root}${d.via !== undefined ? ` via ${d.via}` : ''}${d.dev !== undefined ? ` ${d.dev}` : ''}${where}`;
}

/** One line for humans: `ok 0xffffffff → r0 ep1 bar0+0x10`. */
export function showObs(o: Observation): string {
  const why = [o.reason, o.errno].filter((x) => x !== undefined).join(', ');
  const parts: string[] = [why !== '' ? `${o.status}(${why})` : o.status];
  if (o.value !== undefined) parts.push(hex(o.value));
  if (o.data !== undefined) parts.push(o.data.length <= 8 ? bytesToHex(o.data) : `${bytesToHex(o.data.subarray(0, 8))}…(${o.data.length})`);
  if (o.to !== undefined) parts.push(`→ ${showDelivery(o.to)}`);
  if (o.irqs !== undefined && o.irqs.length > 0) parts.push(`[${o.irqs.map(showIrq).join(', ')}]`);
  if (o.source === 'harness') parts.push("(the harness's own)");
  return parts.join(' ');
}

/**
 * What a target observes, from a trace header or a target's capabilities.
 * aborts and faults were added after version 1 of both; absent, they mean
 * the target sees everything.
 */
export function parseObserves(r: JsonReader, path: string, v: unknown): Observes {
  const ob = r.object(path, v);
  r.only(path, ob, ['delivery', 'irqs', 'aborts', 'faults']);
  const out: Observes = { delivery: r.bool(at(path, 'delivery'), ob.delivery), irqs: typeof ob.irqs === 'object' && ob.irqs !== null ? parseIrqView(r, at(path, 'irqs'), ob.irqs) : r.bool(at(path, 'irqs'), ob.irqs), aborts: true, faults: 'all' };
  if (ob.aborts !== undefined) out.aborts = r.bool(at(path, 'aborts'), ob.aborts);
  if (ob.faults !== undefined && ob.faults !== 'all') out.faults = r.array(at(path, 'faults'), ob.faults).map((f, i) => r.oneOf(at(at(path, 'faults'), i), f, FAULT_REASONS));
  return out;
}

function parseIrqView(r: JsonReader, path: string, v: unknown): IrqView {
  const o = r.object(path, v);
  r.only(path, o, ['lines', 'messages', 'eventfds', 'messagesByFunction']);
  const view: IrqView = { lines: r.bool(at(path, 'lines'), o.lines), messages: null };
  if (o.eventfds !== undefined) view.eventfds = r.bool(at(path, 'eventfds'), o.eventfds);
  if (o.messagesByFunction !== undefined) view.messagesByFunction = r.bool(at(path, 'messagesByFunction'), o.messagesByFunction);
  if (o.messages !== null) {
    const p = at(path, 'messages');
    const m = r.object(p, o.messages);
    r.only(p, m, ['base', 'size', 'fill']);
    const base = r.int(at(p, 'base'), m.base, 0, ADDR_MAX);
    if (base % 4 !== 0) r.fail(at(p, 'base'), 'a dword-aligned address', m.base);
    view.messages = { base, size: r.int(at(p, 'size'), m.size, 4, 0x10000), fill: r.int(at(p, 'fill'), m.fill, 0, 0xff) };
  }
  return view;
}
