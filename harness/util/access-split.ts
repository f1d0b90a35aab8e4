/**
 * A region access of any length as the naturally aligned accesses of 1,
 * 2, 4 (or 8) bytes a PCI function takes (PCI 3.0 §3.2.2.3.2 for config;
 * PCIe Base §2.2.5 for memory: no access crosses its own size). Both ends
 * of vfio-user use it: the client to turn guest accesses into region
 * accesses, the server to turn region accesses into device accesses.
 */
export interface Piece {
  offset: number;
  size: number;
}

export function splitAccess(offset: number, count: number, widest: 4 | 8): Piece[] {
  const out: Piece[] = [];
  let at = offset;
  const end = offset + count;
  while (at < end) {
    let size: number = widest;
    while (size > 1 && (at % size !== 0 || at + size > end)) size /= 2;
    out.push({ offset: at, size });
    at += size;
  }
  return out;
}

export function readLe(b: Uint8Array, at: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[at + i]);
  return v;
}

export function writeLe(b: Uint8Array, at: number, size: number, v: bigint): void {
  for (let i = 0; i < size; i++) b[at + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}
