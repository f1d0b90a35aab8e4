/** Hex formatting and parsing shared by the trace codec, the printer and the CLI. */

export const hex = (n: number | bigint, width = 0): string =>
  '0x' + n.toString(16).padStart(width, '0');

export const hex8 = (n: number): string => hex(n, 8);

export function bytesToHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
  return s;
}

/** Parses an even-length string of hex digits (no prefix); null if malformed. */
export function hexToBytes(s: string): Uint8Array | null {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Parses "0x..." or a decimal string, or a safe JSON integer, into a bigint; null if malformed. */
export function parseBig(v: unknown): bigint | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : null;
  if (typeof v !== 'string') return null;
  if (/^0x[0-9a-fA-F]+$/.test(v)) return BigInt(v);
  if (/^[0-9]+$/.test(v)) return BigInt(v);
  return null;
}
