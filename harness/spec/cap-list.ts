/**
 * The capability list of a function's config space, walked once for every
 * reader (the model's learned layouts, discovery over the bus seam, the
 * vfio-user client and server). PCI 3.0 §6.7: the list exists when Status
 * bit 4 (Capabilities List) is set and starts at the pointer at 0x34; an
 * entry's byte 0 is its ID and byte 1 the next pointer; a pointer's two low
 * bits are reserved (masked off), and it points at 0x40 or above, inside
 * the first 256 bytes. The list ends at a pointer below 0x40, and at one
 * seen before (a loop a faulty device may present).
 */
export interface CapEntry {
  id: number;
  off: number;
}

/** Status (0x06) bit 4, Capabilities List. */
const STATUS_CAP_LIST = 0x10;
const CAP_PTR = 0x34;

/** The entries in list order; `read8` reads one config byte. */
export function capabilityList(read8: (off: number) => number): CapEntry[] {
  const out: CapEntry[] = [];
  if ((read8(0x06) & STATUS_CAP_LIST) === 0) return out;
  const seen = new Set<number>();
  for (let p = read8(CAP_PTR) & 0xfc; p >= 0x40 && p + 2 <= 0x100 && !seen.has(p); p = read8(p + 1) & 0xfc) {
    seen.add(p);
    out.push({ id: read8(p), off: p });
  }
  return out;
}
