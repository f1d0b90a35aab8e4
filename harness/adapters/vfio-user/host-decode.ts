/**
 * The client's side of address decode, as a VMM does it for a vfio-user
 * device (QEMU's pci_update_mappings): where each BAR sits, read back from
 * the device's config space, and whether it decodes (PCI 3.0 §6.2.2 and
 * §6.2.5.2: barAddress), and only D0 decodes (PCI PM 1.2 §5.4). A BAR that
 * moved or turned on is mapped last and wins an overlap. The platform's
 * RAM and ECAM window outrank every BAR.
 */
import { barAddress } from '../../model/bar.ts';
import { BAR0, ROM_TYPE0 } from '../../model/header.ts';
import { REGION } from '../../protocol/vfio-user/messages.ts';
import type { BarToken } from '../../bus/bar.ts';

export type BarKind = 'mem32' | 'mem64' | 'io' | 'rom';

export interface HostBar {
  region: number;
  kind: BarKind;
  size: number;
  /** Config offset of its (low) register. */
  reg: number;
}

export interface Placed {
  region: number;
  base: number;
  size: number;
  io: boolean;
  seq: number;
}

/** The BARs of a device from its config space and region sizes (PCI 3.0 §6.2.5.1: bit 0 IO, bits 2:1 type). */
export function hostBars(cfg: (off: number, size: number) => number, regionSize: (i: number) => number): HostBar[] {
  const out: HostBar[] = [];
  for (let i = 0; i <= 5; i++) {
    const size = regionSize(i);
    if (size === 0) continue;
    const reg = BAR0 + 4 * i;
    const lo = cfg(reg, 4);
    const kind: BarKind = (lo & 1) !== 0 ? 'io' : ((lo >> 1) & 3) === 2 ? 'mem64' : 'mem32';
    out.push({ region: i, kind, size, reg });
    if (kind === 'mem64') i++;
  }
  const rom = regionSize(REGION.ROM);
  if (rom !== 0) out.push({ region: REGION.ROM, kind: 'rom', size: rom, reg: ROM_TYPE0 });
  return out;
}

export class HostDecode {
  private placed = new Map<number, Placed>();
  private seq = 0;

  constructor(
    readonly bars: readonly HostBar[],
    /** Offset of the PM capability, whose PMCSR holds the power state. */
    readonly pm: number | null,
    /** Offset of the PCI Express capability, whose Device Control starts a function-level reset. */
    readonly pcie: number | null,
  ) {}

  /**
   * Whether a config write can change where BARs decode: Command, the BARs,
   * the ROM BAR, PMCSR, or Device Control (FLR, PCIe Base §7.5.3.4).
   */
  affectedBy(reg: number, size: number): boolean {
    const hits = (from: number, to: number): boolean => reg < to && reg + size > from;
    return hits(0x04, 0x06) || hits(0x10, 0x28) || hits(0x30, 0x34) || (this.pm !== null && hits(this.pm + 4, this.pm + 6)) || (this.pcie !== null && hits(this.pcie + 8, this.pcie + 10));
  }

  /** Re-reads where the BARs are from config space. */
  refresh(cfg: (off: number, size: number) => number): void {
    const d0 = this.pm === null || (cfg(this.pm + 4, 2) & 3) === 0;
    const regs = { read: cfg };
    for (const b of this.bars) {
      const base = d0 ? barAddress(regs, b, (hi) => hi) : null;
      const old = this.placed.get(b.region);
      if (base === null) this.placed.delete(b.region);
      else if (old === undefined || old.base !== base) this.placed.set(b.region, { region: b.region, base, size: b.size, io: b.kind === 'io', seq: ++this.seq });
    }
  }

  /** The BAR that decodes an address in the memory or IO space, if any. */
  lookup(at: BarToken): Placed | null {
    const { addr, io } = at;
    let best: Placed | null = null;
    for (const p of this.placed.values()) if (p.io === io && addr >= p.base && addr < p.base + p.size && (best === null || p.seq > best.seq)) best = p;
    return best;
  }
}
