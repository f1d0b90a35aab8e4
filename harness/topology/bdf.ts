/** Bus/device/function numbers as PCI 3.0 §3.2.2.3 packs them: bus<<8 | dev<<3 | fn. */
export type Bdf = number;

export const bdf = (bus: number, dev: number, fn: number): Bdf => (bus << 8) | (dev << 3) | fn;
export const busOf = (b: Bdf): number => (b >>> 8) & 0xff;
export const devOf = (b: Bdf): number => (b >>> 3) & 0x1f;
export const fnOf = (b: Bdf): number => b & 7;
export const devfnOf = (b: Bdf): number => b & 0xff;

const two = (n: number): string => n.toString(16).padStart(2, '0');

export const formatBdf = (b: Bdf): string => `${two(busOf(b))}:${two(devOf(b))}.${fnOf(b)}`;

/** Parses "bb:dd.f" (hex bus and device, as lspci prints them); null if malformed. */
export function parseBdf(s: string): Bdf | null {
  const m = /^([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$/.exec(s);
  if (m === null) return null;
  const dev = parseInt(m[2], 16);
  if (dev > 31) return null;
  return bdf(parseInt(m[1], 16), dev, parseInt(m[3], 10));
}

/** PCIe Base §7.2.2: an offset in an ECAM window as bus, device/function and register. */
export const ecamDecode = (off: number): { bus: number; devfn: number; reg: number } => ({ bus: Math.floor(off / 0x100000) & 0xff, devfn: (off >>> 12) & 0xff, reg: off & 0xfff });
