/**
 * The topology a vfio-user server serves: each device of the user's
 * topology on a root of its own, every space isolated (seed 000: one
 * server process, one PCI bus per client), the device alone at 00:00.0
 * behind an IOMMU with one domain (the client's DMA_MAPs fill it). Device
 * timers run to completion (Topology.clock "immediate"): a server has no
 * virtual clock. Each socket has a description beside it, so that a
 * client knows the device it talks to.
 */
import { InputError } from '../../util/errors.ts';
import { JsonReader } from '../../util/json-read.ts';
import { parseTopology } from '../../topology/validate.ts';
import { canonicalTopology } from '../../topology/canonical.ts';
import { slotsOf } from '../../model/slots.ts';
import { DEFAULT_ECAM, type DeviceSpec, type Personality, type RootSpec, type Topology } from '../../topology/types.ts';

/** Personalities a vfio-user server can serve: functions of their own (no bridges, no platform functions). */
export const SERVABLE: readonly Personality[] = ['endpoint', 'edu', 'pci-testdev'];
/** Capabilities that mean nothing without a root complex around them. */
const UNSERVED_CAPS = new Set(['pasid', 'ats', 'acs']);
/** Client memory per root: 64 MiB (a memfd; only touched pages cost). */
export const SERVED_RAM = 0x400_0000;

export interface ServedDevice {
  root: number;
  device: DeviceSpec;
  /** The socket's file name, in the socket directory. */
  socket: string;
}

/** The root a served device sits on. */
export function servedRoot(device: DeviceSpec): RootSpec {
  return { bus: 0, busLimit: 0, ram: SERVED_RAM, ecam: DEFAULT_ECAM, iommu: true, domains: 1, devices: [device] };
}

/** The topology of served devices in root order. */
export function servedTopology(devices: readonly DeviceSpec[], name?: string): Topology {
  const t: Topology = { clock: 'immediate', roots: devices.map(servedRoot) };
  if (name !== undefined) t.name = name;
  return canonicalTopology(t);
}

/** Moves every servable device of `t` onto a root of its own; the others are refused. */
export function servingTopology(t: Topology): { topology: Topology; devices: ServedDevice[] } {
  const devices: ServedDevice[] = [];
  for (const s of slotsOf(t)) {
    const d = s.spec;
    if (d.builtin === true) continue;
    if (!SERVABLE.includes(d.kind)) throw new InputError(`topology device ${d.id}`, `a device a vfio-user server can serve (${SERVABLE.join(', ')}), got ${d.kind}`);
    const device: DeviceSpec = { ...d, slot: 0, fn: 0, domain: 0, uid: s.uid };
    for (const k of ['children', 'pasidContext', 'emulator', 'present', 'identity', 'qdev', 'builtin', 'resetPowerIndicator'] as const) delete device[k];
    if (device.caps !== undefined) device.caps = device.caps.filter((c) => !UNSERVED_CAPS.has(c));
    if (!/^[A-Za-z0-9_.-]+$/.test(d.id)) throw new InputError(`topology device ${d.id}`, 'an id made of letters, digits, "_", "-" and "." (it names the socket)');
    devices.push({ root: devices.length, device, socket: `${d.id}.sock` });
  }
  if (devices.length === 0) throw new InputError('topology', 'at least one device to serve');
  return { topology: servedTopology(devices.map((x) => x.device), t.name), devices };
}

/** What a socket's description says: the device behind it. */
export const DESCRIPTION = 'isoroot-vfio-user-device';

export function describeDevice(d: ServedDevice): string {
  return JSON.stringify({ format: DESCRIPTION, version: 1, device: canonicalTopology(servedTopology([d.device])).roots[0].devices[0] }, null, 2) + '\n';
}

/** Reads a socket's description (SOCKET.json beside SOCKET). */
export function parseDescription(text: string, file: string): DeviceSpec {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(file, `JSON (${(e as Error).message})`);
  }
  const r = new JsonReader((path) => (path === '' ? file : `${file}: ${path}`));
  const o = r.object('', v);
  r.only('', o, ['format', 'version', 'device']);
  if (o.format !== DESCRIPTION) r.fail('format', `"${DESCRIPTION}"`, o.format);
  if (o.version !== 1) r.fail('version', '1', o.version);
  // The device is checked as the one device of a served root.
  const t = parseTopology({ clock: 'immediate', roots: [{ ...servedRoot({} as DeviceSpec), devices: [o.device] }] }, (path) => `${file}: device (${path})`);
  const dev = t.roots[0].devices[0];
  if (!SERVABLE.includes(dev.kind)) throw new InputError(`${file}: device.kind`, `one of ${SERVABLE.join(', ')}`);
  return dev;
}
