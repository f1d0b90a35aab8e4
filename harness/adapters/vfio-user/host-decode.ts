/**
 * The client's side of address decode, as a VMM does it for a vfio-user
 * device (QEMU's pci_update_mappings): where each BAR sits, read back from
 * the device's config space, and whether it decodes. Memory and IO BARs
 * need Memory and IO Space in Command (PCI 3.0 §6.2.2), the ROM also its
 * enable bit (§6.2.5.2), and only D0 decodes (PCI PM 1.2 §5.4). A BAR that
 * moved or turned on is mapped last and wins an overlap. The platform's
 * RAM and ECAM window outrank every BAR.
 */
import { REGION } from './messages.ts';

export type BarKind = 'mem32' | 'mem64' | 'io' | 'rom';

export interface HostBar {
  region: number;
  kind: BarKind;
  size: number;
}

export interface Placed {
  region: number;
  base: number;
  size: number;
  io: boolean;
  seq: number;
}

const ADDR_LIMIT = 2 ** 52;
const TWO32 = 2 ** 32;
const COMMAND_IO = 1;
const COMMAND_MEMORY = 2;

/** The BARs of a device from its config space and region sizes (PCI 3.0 §6.2.5.1: bit 0 IO, bits 2:1 type). */
export function hostBars(cfg: (off: number, size: number) => number, regionSize: (i: number) => number): HostBar[] {
  const out: HostBar[] = [];
  for (let i = 0; i <= 5; i++) {
    const size = regionSize(i);
    if (size === 0) continue;
    const lo = cfg(0x10 + 4 * i, 4);
    const kind: BarKind = (lo & 1) !== 0 ? 'io' : ((lo >> 1) & 3) === 2 ? 'mem64' : 'mem32';
    out.push({ region: i, kind, size });
    if (kind === 'mem64') i++;
  }
  const rom = regionSize(REGION.ROM);
  if (rom !== 0) out.push({ region: REGION.ROM, kind: 'rom', size: rom });
  return out;
}

export class HostDecode {
  private placed = new Map<number, Placed>();
  private seq = 0;

  constructor(
    readonly bars: readonly HostBar[],
    /** Offset of the PM capability, whose PMCSR holds the power state. */
    readonly pm: number | null,
  ) {}

  /** Re-reads where the BARs are from config space; returns whether anything moved. */
  refresh(cfg: (off: number, size: number) => number): void {
    const cmd = cfg(0x04, 2);
    const d0 = this.pm === null || (cfg(this.pm + 4, 2) & 3) === 0;
    for (const b of this.bars) {
      const base = d0 ? barBase(cfg, b, cmd) : null;
      const old = this.placed.get(b.region);
      if (base === null) this.placed.delete(b.region);
      else if (old === undefined || old.base !== base) this.placed.set(b.region, { region: b.region, base, size: b.size, io: b.kind === 'io', seq: ++this.seq });
    }
  }

  /** The BAR that decodes `addr` in the memory or IO space, if any. */
  lookup(io: boolean, addr: number): Placed | null {
    let best: Placed | null = null;
    for (const p of this.placed.values()) if (p.io === io && addr >= p.base && addr < p.base + p.size && (best === null || p.seq > best.seq)) best = p;
    return best;
  }
}

function barBase(cfg: (off: number, size: number) => number, b: HostBar, cmd: number): number | null {
  const reg = b.kind === 'rom' ? 0x30 : 0x10 + 4 * b.region;
  const lo = cfg(reg, 4) >>> 0;
  let base: number;
  if (b.kind === 'io') {
    if ((cmd & COMMAND_IO) === 0) return null;
    base = (lo & 0xfffffffc) >>> 0;
  } else {
    if ((cmd & COMMAND_MEMORY) === 0) return null;
    if (b.kind === 'rom') {
      if ((lo & 1) === 0) return null;
      base = (lo & 0xfffff800) >>> 0;
    } else base = (lo & 0xfffffff0) >>> 0;
    if (b.kind === 'mem64') base += (cfg(reg + 4, 4) >>> 0) * TWO32;
  }
  return base + b.size > ADDR_LIMIT ? null : base;
}
