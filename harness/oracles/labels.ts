/** Domain words for finding messages: roots, devices with their BDFs, regions, addresses. */
import type { Model } from '../model/model.ts';
import type { Delivery } from '../ops/observation.ts';
import { formatBdf } from '../topology/bdf.ts';
import { hex } from '../util/hex.ts';

export function devLabel(m: Model, dev: string): string {
  const s = m.devices.get(dev);
  if (s === undefined) return dev;
  const b = m.bdfOf(dev);
  return `${dev} (${s.spec.kind}, root ${s.root}${b === null ? ', not present' : ` ${formatBdf(b)}`})`;
}

export function whereLabel(m: Model, d: Delivery | undefined): string {
  if (d === undefined) return 'an unknown place';
  const via = d.via !== undefined ? ` through emulator ${d.via}` : '';
  if (d.region === 'ram') return `RAM of root ${d.root} at ${hex(d.offset ?? 0)}${via}`;
  if (d.region === 'cf8') return `the CF8 latch of root ${d.root}`;
  if (d.dev === undefined) return `nobody in root ${d.root}${via}`;
  const region = d.region === undefined ? '' : ` ${d.region === 'cfg' ? 'config' : d.region.toUpperCase()}${d.offset !== undefined ? `+${hex(d.offset)}` : ''}`;
  return `${devLabel(m, d.dev)}${region}${via}`;
}

/**
 * A coarse class of a delivery, for signatures: where an access went by
 * kind of place (a device's config space, a BAR, a ROM, RAM, the CF8 latch,
 * nobody), not by device, BAR number or address, so that one fault shape
 * is one signature.
 */
export function routeClass(d: Delivery | undefined): string {
  if (d === undefined) return 'unknown';
  const via = d.via !== undefined ? '@emulator' : '';
  if (d.region === 'ram' || d.region === 'cf8') return d.region + via;
  if (d.dev === undefined) return 'nobody' + via;
  const region = d.region === undefined ? 'dev' : d.region === 'cfg' || d.region === 'rom' ? d.region : 'bar';
  return `${region}${via}`;
}

/** The family of an operation, for signatures: cfg, mmio, pio, dma, pasid… (reads and writes together). */
export const opFamily = (op: { op: string }): string => op.op.split('.')[0];
