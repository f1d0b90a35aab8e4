/**
 * A device's regions as a VFIO user reaches them (linux/vfio.h region
 * indexes; vfio-user REGION_READ / REGION_WRITE): config space at the
 * function's BDF on its root, a BAR at its current address in its root's
 * space, as a server hosting devices of several roots must reach them
 * (seed 000). Refused: a region the device lacks, an access past its end
 * or larger than one message carries, a write to the ROM, and a BAR that
 * does not decode (vfio-pci's -EIO with memory decode off).
 */
import { REGION_XFER_MAX, type OpOf } from '../ops/catalog.ts';
import type { Delivery, Observation, Reason } from '../ops/observation.ts';
import type { ChoiceId } from '../spec/choices.ts';
import { readLe, splitAccess, writeLe } from '../util/access-split.ts';
import type { Option } from './choose.ts';
import type { PciFunction } from './function.ts';
import type { BarToken } from '../bus/bar.ts';

export const CONFIG_REGION = 7;
export const ROM_REGION_INDEX = 6;

/** What region access needs of the model. */
export interface RegionHost {
  fn(dev: string): PciFunction | Reason;
  /** A config access to the function from its own root. */
  config(fn: PciFunction, reg: number, size: number, value: bigint | null): Observation;
  /** A CPU access at an address of the function's root. */
  space(fn: PciFunction, at: BarToken, size: number, value: bigint | null): Observation;
  /** An implementation choice (harness/spec/choices.ts). */
  choose(id: ChoiceId, options: Option[]): Option;
}

const refused = (reason: Reason): Observation => ({ status: 'error', reason });

/** A server serving a BAR that does not decode reaches the device's region itself, at the offset. */
function served(fn: PciFunction, region: number, offset: number, count: number, write: Uint8Array | null): Observation {
  const out = new Uint8Array(write === null ? count : 0);
  let unknown = false;
  for (const p of splitAccess(offset, count, fn.bars[region]?.kind === 'io' ? 4 : 8)) {
    if (write !== null) fn.regionWrite(region, p.offset, p.size, readLe(write, p.offset - offset, p.size));
    else {
      writeLe(out, p.offset - offset, p.size, fn.regionRead(region, p.offset, p.size));
      unknown ||= fn.unknownRegionRead(region, p.offset, p.size);
    }
  }
  const o: Observation = write === null ? { status: 'ok', data: out } : { status: 'ok' };
  if (unknown) o.unknown = true;
  return o;
}

/** Bytes of a region of a function: config space, a BAR, the ROM; 0 for none (VGA). */
export function regionSize(fn: PciFunction, region: number): number {
  // vfio-user "VFIO_USER_DEVICE_GET_REGION_INFO": the region is as large as the device says.
  const declared = fn.declaredRegionSize(region);
  if (declared !== null) return declared;
  if (region === CONFIG_REGION) return fn.cfg.size;
  if (region > ROM_REGION_INDEX) return 0;
  return fn.bars[region]?.size ?? 0;
}

export function regionAccess(host: RegionHost, op: OpOf<'region.read' | 'region.write'>): Observation {
  const fn = host.fn(op.dev);
  if (typeof fn === 'string') return { status: 'error', reason: fn };
  const size = regionSize(fn, op.region);
  const count = 'data' in op ? op.data.length : op.count;
  const write = 'data' in op ? op.data : null;
  // The message's size comes first: a server refuses it before it looks at the region.
  if (count > REGION_XFER_MAX) return { status: 'error', reason: 'too-large' };
  if (size === 0) return { status: 'error', reason: 'no-region' };
  if (op.offset + count > size) return { status: 'error', reason: 'past-end' };
  if (write !== null && op.region === ROM_REGION_INDEX)
    return host.choose('region.rom-write', [
      { option: 'refuse', obs: refused('read-only') },
      { option: 'ignore', obs: { status: 'ok' } },
    ]).obs;
  const config = op.region === CONFIG_REGION;
  const place = config ? null : fn.placements[op.region];
  if (!config && (place === null || place === undefined)) {
    const pick = host.choose('region.not-decoding', [
      { option: 'refuse', obs: refused('not-decoding') },
      { option: 'serve', obs: { status: 'ok', unknown: true } },
    ]);
    return pick.option === 'serve' ? served(fn, op.region, op.offset, count, write) : pick.obs;
  }
  const io = !config && fn.bars[op.region]?.kind === 'io';
  // A device isoroot only learned may refuse an access to its own registers.
  if (!config && fn.unknownRegionRead(op.region, op.offset, count)) {
    const pick = host.choose('device.refusal', [
      { option: 'complete', obs: { status: 'ok', unknown: true } },
      { option: 'refuse', obs: refused('unsupported') },
    ]);
    if (pick.option === 'refuse') return pick.obs;
  }
  const out = new Uint8Array(write === null ? count : 0);
  // Bits of the data the model predicts, byte by byte.
  const known = new Uint8Array(write === null ? count : 0);
  let to: Delivery | undefined;
  let valueRule: Observation['valueRule'];
  // Config registers and IO ports take at most 4 bytes, memory 8 (as the server splits them).
  for (const p of splitAccess(op.offset, count, config || io ? 4 : 8)) {
    const value = write === null ? null : readLe(write, p.offset - op.offset, p.size);
    const o = config ? host.config(fn, p.offset, p.size, value) : host.space(fn, { addr: place!.base + p.offset, io }, p.size, value);
    // A piece refused (a write to read-only bits) fails the access; the pieces before it took effect.
    if (o.status === 'error') return o;
    to ??= o.to;
    valueRule ??= o.valueRule;
    if (write === null) {
      writeLe(out, p.offset - op.offset, p.size, o.value ?? 0n);
      writeLe(known, p.offset - op.offset, p.size, o.unknown === true ? 0n : (o.known ?? (1n << BigInt(8 * p.size)) - 1n));
    }
  }
  const obs: Observation = { status: 'ok' };
  if (to !== undefined) obs.to = to;
  if (valueRule !== undefined) obs.valueRule = valueRule;
  if (write === null) {
    obs.data = out;
    if (known.every((b) => b === 0)) obs.unknown = true;
    else if (!known.every((b) => b === 0xff)) obs.knownData = known;
  }
  return obs;
}
