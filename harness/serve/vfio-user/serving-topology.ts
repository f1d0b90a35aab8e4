/**
 * What a vfio-user server serves of a user's topology: each servable
 * device moved onto a root of its own (served-topology.ts), keeping its
 * uid so that clients see which one answers, with its socket's name.
 */
import { InputError } from '../../util/errors.ts';
import { slotsOf } from '../../model/slots.ts';
import type { DeviceSpec, Topology } from '../../topology/types.ts';
import { SERVABLE, servedTopology } from '../../adapters/vfio-user/served-topology.ts';

/** Capabilities that mean nothing without a root complex around them. */
const UNSERVED_CAPS = new Set(['pasid', 'ats', 'acs']);

export interface ServedDevice {
  root: number;
  device: DeviceSpec;
  /** The socket's file name, in the socket directory. */
  socket: string;
}

/** Moves every servable device of `t` onto a root of its own; the others are refused. */
export function servingTopology(t: Topology): { topology: Topology; devices: ServedDevice[] } {
  const devices: ServedDevice[] = [];
  for (const s of slotsOf(t)) {
    const d = s.spec;
    if (d.builtin === true) continue;
    if (!SERVABLE.includes(d.kind)) throw new InputError(`topology device ${d.id}`, `a device a vfio-user server can serve (${SERVABLE.join(', ')}), got ${d.kind}`);
    const device: DeviceSpec = { ...d, slot: 0, fn: 0, domain: 0, uid: s.uid };
    for (const k of ['children', 'pasidContext', 'emulator', 'present', 'identity', 'qdev', 'builtin', 'resetPowerIndicator', 'acs'] as const) delete device[k];
    if (device.caps !== undefined) device.caps = device.caps.filter((c) => !UNSERVED_CAPS.has(c));
    if (!/^[A-Za-z0-9_.-]+$/.test(d.id)) throw new InputError(`topology device ${d.id}`, 'an id made of letters, digits, "_", "-" and "." (it names the socket)');
    devices.push({ root: devices.length, device, socket: `${d.id}.sock` });
  }
  if (devices.length === 0) throw new InputError('topology', 'at least one device to serve');
  return { topology: servedTopology(devices.map((x) => x.device), t.name), devices };
}
