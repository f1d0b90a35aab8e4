/**
 * The target protocol: JSON Lines over a child process's stdin and stdout
 * (docs/target-protocol.md). This module encodes the harness's messages
 * and validates the target's: anything malformed is a ProtocolError that
 * names the message and the field.
 */
import { JsonReader } from '../../util/json-read.ts';
import { at } from '../../util/errors.ts';
import { CAPABILITIES } from '../../ops/catalog.ts';
import { VIAS } from '../../ops/fields.ts';
import { opToJson } from '../../ops/codec.ts';
import { parseObs, parseObserves } from '../../ops/observation-codec.ts';
import { CAP_NAMES, PERSONALITIES, SPACE_KINDS } from '../../topology/types.ts';
import type { Capability, Op } from '../../ops/catalog.ts';
import type { Observation } from '../../ops/observation.ts';
import type { Topology } from '../../topology/types.ts';
import { HOTPLUG_SLOTS, type Capabilities, type TargetInfo } from '../target.ts';
import { loadProfile, parseProfile, type Profile } from '../../profiles/profile.ts';
import { parseTopology } from '../../topology/validate.ts';

export const PROTOCOL = 'isoroot-target';
export const PROTOCOL_VERSION = 1;

/**
 * Version 1 targets predate two splits: dma-map included attach and detach
 * (dma-attach), and pasid included PASID-tagged DMA (pasid-dma).
 */
const withAttach = (ops: Capability[]): Capability[] => {
  const out = ops.includes('dma-map') && !ops.includes('dma-attach') ? [...ops, 'dma-attach' as const] : ops;
  return out.includes('pasid') && out.includes('dma') && !out.includes('pasid-dma') ? [...out, 'pasid-dma'] : out;
};

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export const hello = (): string => JSON.stringify({ type: 'hello', protocol: PROTOCOL, version: PROTOCOL_VERSION });
export const openMsg = (t: Topology): string => JSON.stringify({ type: 'open', topology: t });
export const opMsg = (seq: number, op: Op): string => JSON.stringify({ type: 'op', seq, op: opToJson(op) });
export const closeMsg = (): string => JSON.stringify({ type: 'close' });
export const byeMsg = (): string => JSON.stringify({ type: 'bye' });

const reader = (what: string): JsonReader =>
  new JsonReader((path) => `target's ${what} message${path === '' ? '' : ` at ${path}`}`);

function parse(line: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new ProtocolError(`target sent a line that is not JSON while a ${what} message was expected: ${JSON.stringify(line.slice(0, 200))}`);
  }
  const r = reader(what);
  try {
    return r.object('', v);
  } catch (e) {
    throw new ProtocolError((e as Error).message);
  }
}

function guard<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError((e as Error).message);
  }
}

/** An error message from the target, if the line is one. */
export function errorOf(o: Record<string, unknown>): string | null {
  return o.type === 'error' ? String(o.message ?? 'no message') : null;
}

export interface Hello {
  info: TargetInfo;
  capabilities: Capabilities;
  /** The choices the target makes where the specifications allow several (a built-in profile's name, or one inline). */
  profile?: Profile;
  /** The one topology the target is (its own devices), when it is not built from the topology isoroot asks for. */
  topology?: Topology;
  /**
   * The target has a bus, not config operations: isoroot lowers each config
   * operation to the memory and port accesses of its mechanism (the ECAM
   * window, CF8/CFC; harness/bus/config-access.ts) and sends those.
   */
  configOverBus: boolean;
}

export function parseHello(line: string): Hello {
  const o = parse(line, 'hello');
  const e = errorOf(o);
  if (e !== null) throw new ProtocolError(`target refused the handshake: ${e}`);
  return guard(() => {
    const r = reader('hello');
    if (o.type !== 'hello') r.fail('type', '"hello"', o.type);
    if (o.protocol !== PROTOCOL) r.fail('protocol', `"${PROTOCOL}"`, o.protocol);
    if (o.version !== PROTOCOL_VERSION) r.fail('version', String(PROTOCOL_VERSION), o.version);
    const t = r.object('target', o.target);
    const info: TargetInfo = { name: r.string('target.name', t.name), version: r.string('target.version', t.version) };
    const c = r.object('capabilities', o.capabilities);
    r.only('capabilities', c, ['ops', 'maxRoots', 'personalities', 'expanderPersonalities', 'hotplugSlots', 'caps', 'vias', 'observes', 'contract', 'configOverBus']);
    const list = <T extends string>(k: string, vs: readonly T[]): T[] => r.array(`capabilities.${k}`, c[k]).map((x, i) => r.oneOf(at(`capabilities.${k}`, i), x, vs));
    let contract: Capabilities['contract'] = 'topology';
    if (c.contract !== 'topology') {
      const k = r.object('capabilities.contract', c.contract);
      r.only('capabilities.contract', k, SPACE_KINDS);
      contract = Object.fromEntries(Object.entries(k).map(([kind, v]) => [kind, r.oneOf(`capabilities.contract.${kind}`, v, ['shared', 'isolated'] as const)]));
    }
    const configOverBus = c.configOverBus === undefined ? false : r.bool('capabilities.configOverBus', c.configOverBus);
    let ops = withAttach(list('ops', CAPABILITIES));
    if (configOverBus) {
      // Config through ECAM is memory accesses, through CF8/CFC port accesses: the target must carry those out.
      const vias = list('vias', VIAS);
      if (vias.includes('ecam') && !ops.includes('mmio')) r.fail('capabilities.ops', 'mmio among the ops (configOverBus lowers ECAM config accesses to memory accesses)', c.ops);
      if (vias.includes('cf8') && !ops.includes('pio')) r.fail('capabilities.ops', 'pio among the ops (configOverBus lowers CF8/CFC config accesses to port accesses)', c.ops);
      if (!ops.includes('config')) ops = ['config', ...ops];
    }
    const capabilities: Capabilities = {
      // Version 1 targets predate the dma-attach family: dma-map included attach and detach.
      ops,
      maxRoots: r.int('capabilities.maxRoots', c.maxRoots, 1, 16),
      personalities: list('personalities', PERSONALITIES),
      caps: c.caps === undefined ? CAP_NAMES : list('caps', CAP_NAMES),
      vias: list('vias', VIAS),
      observes: parseObserves(r, 'capabilities.observes', c.observes),
      contract,
    };
    if (c.expanderPersonalities !== undefined) capabilities.expanderPersonalities = list('expanderPersonalities', PERSONALITIES);
    if (c.hotplugSlots !== undefined) capabilities.hotplugSlots = r.oneOf('capabilities.hotplugSlots', c.hotplugSlots, HOTPLUG_SLOTS);
    const out: Hello = { info, capabilities, configOverBus };
    if (o.profile !== undefined) out.profile = typeof o.profile === 'string' ? loadProfile(o.profile, "target's hello message at profile") : parseProfile(o.profile, (p) => `target's hello message at ${p}`);
    if (o.topology !== undefined) out.topology = parseTopology(o.topology, (p) => `target's hello message at ${p}`);
    return out;
  });
}

export function parseOpened(line: string): void {
  const o = parse(line, 'opened');
  const e = errorOf(o);
  if (e !== null) throw new ProtocolError(`target refused the topology: ${e}`);
  if (o.type !== 'opened') throw new ProtocolError(`target's opened message: expected type "opened", got ${JSON.stringify(o.type)}`);
}

export function parseObsMsg(line: string, seq: number): Observation {
  const o = parse(line, 'obs');
  const e = errorOf(o);
  if (e !== null) throw new ProtocolError(`target reported an error for op ${seq}: ${e}`);
  return guard(() => {
    const r = reader('obs');
    if (o.type !== 'obs') r.fail('type', '"obs"', o.type);
    if (o.seq !== seq) r.fail('seq', `${seq} (observations come back in order)`, o.seq);
    return parseObs(r, 'obs', o.obs);
  });
}
