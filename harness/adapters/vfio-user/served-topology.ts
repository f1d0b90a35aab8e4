/**
 * The topology of vfio-user devices, one per root: what a client sees
 * behind its sockets and what a server serves. Each device sits alone at
 * 00:00.0 of a root of its own, every space isolated (seed 000: one server
 * process, one PCI bus per client), behind an IOMMU with one domain (the
 * client's DMA_MAPs fill it). Device timers run to completion (Topology.clock
 * "immediate"): a server has no virtual clock. A server describes each
 * socket's device in a file beside it, so that a client knows the device
 * it talks to.
 */
import { InputError } from '../../util/errors.ts';
import { JsonReader } from '../../util/json-read.ts';
import { parseTopology } from '../../topology/validate.ts';
import { canonicalTopology } from '../../topology/canonical.ts';
import { DEFAULT_ECAM, type DeviceSpec, type Personality, type RootSpec, type Topology } from '../../topology/types.ts';

/** Personalities a vfio-user server can serve: functions of their own (no bridges, no platform functions). */
export const SERVABLE: readonly Personality[] = ['endpoint', 'edu', 'pci-testdev'];
/** Client memory per root: 64 MiB (a memfd; only touched pages cost). */
export const SERVED_RAM = 0x400_0000;

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

/** What a socket's description says: the device behind it. */
export const DESCRIPTION = 'isoroot-vfio-user-device';

export function describeDevice(device: DeviceSpec): string {
  return JSON.stringify({ format: DESCRIPTION, version: 1, device: servedTopology([device]).roots[0].devices[0] }, null, 2) + '\n';
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
