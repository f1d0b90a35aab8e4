/**
 * The device behind a vfio-user socket, as a topology device. isoroot's
 * own server leaves a description beside each socket (SOCKET.json); it is
 * checked against what the device says over the protocol. A foreign
 * device is recognised by its IDs (QEMU's edu and pci-testdev, isoroot's
 * endpoint), and anything else is opaque: its identity is checked, its
 * registers are not predicted.
 */
import { existsSync, readFileSync } from 'node:fs';
import { InputError } from '../../util/errors.ts';
import { parseDescription } from './served-topology.ts';
import type { BarSpec, CapName, DeviceSpec } from '../../topology/types.ts';
import { CAP_ID, findCaps } from '../../protocol/vfio-user/pci-caps.ts';
import { hostBars } from './host-decode.ts';
import { REGION } from '../../protocol/vfio-user/messages.ts';
import { ENDPOINT_DEVICE, ENDPOINT_VENDOR } from '../../model/personalities/endpoint.ts';
import { EDU_VENDOR } from '../../model/personalities/edu.ts';

export type ConfigReader = (off: number, size: number) => number;

export function describeSocket(path: string, id: string, cfg: ConfigReader, regionSize: (i: number) => number): DeviceSpec {
  const file = `${path}.json`;
  const found = deviceFromConfig(id, cfg, regionSize);
  if (!existsSync(file)) return found;
  const told = parseDescription(readFileSync(file, 'utf8'), file);
  // What the description says must be what the device shows.
  const bars = (d: DeviceSpec): string => JSON.stringify((d.bars ?? []).map((b) => [b.kind, b.size]));
  if (found.kind !== told.kind) throw new InputError(file, `a description of the device at ${path}: it says ${told.kind}, the device's IDs say ${found.kind}`);
  if (found.kind === 'endpoint' && bars(found) !== bars(told)) throw new InputError(file, `a description of the device at ${path}: it says BARs ${bars(told)}, the device shows ${bars(found)}`);
  return told;
}

export function deviceFromConfig(id: string, cfg: ConfigReader, regionSize: (i: number) => number): DeviceSpec {
  const vendor = cfg(0x00, 2);
  const device = cfg(0x02, 2);
  if (vendor === EDU_VENDOR && device === 0x11e8) return { id, kind: 'edu', slot: 0, fn: 0, domain: 0 };
  if (vendor === 0x1b36 && device === 0x0005) return { id, kind: 'pci-testdev', slot: 0, fn: 0, domain: 0 };
  if (vendor !== ENDPOINT_VENDOR || device !== ENDPOINT_DEVICE)
    return { id, kind: 'opaque', slot: 0, fn: 0, domain: 0, identity: { vendor, device, classCode: cfg(0x09, 1) | (cfg(0x0a, 2) << 8), revision: cfg(0x08, 1), headerType: cfg(0x0e, 1) } };
  const bars: BarSpec[] = [];
  for (const b of hostBars(cfg, regionSize)) {
    if (b.kind === 'rom') continue;
    const spec: BarSpec = { kind: b.kind, size: b.size };
    if (b.kind !== 'io' && (cfg(b.reg, 4) & 8) !== 0) spec.prefetch = true;
    bars.push(spec);
  }
  const caps = findCaps(cfg);
  const names: CapName[] = [];
  if (caps.ids.includes(CAP_ID.pm)) names.push('pm');
  if (caps.ids.includes(CAP_ID.msi)) names.push('msi');
  if (caps.ids.includes(CAP_ID.msix)) names.push('msix');
  if (caps.ids.includes(CAP_ID.pcie)) names.push('pcie');
  const d: DeviceSpec = { id, kind: 'endpoint', slot: 0, fn: 0, domain: 0, bars, caps: names };
  if (regionSize(REGION.ROM) !== 0) d.rom = regionSize(REGION.ROM);
  if (caps.msiVectors !== undefined) d.msiVectors = caps.msiVectors;
  if (caps.msixVectors !== undefined) d.msixVectors = caps.msixVectors;
  return d;
}
