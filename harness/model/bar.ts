/**
 * Base Address Registers and the expansion ROM BAR (PCI 3.0 §6.2.5).
 * The writable bits of a BAR are its address bits above its size, so the
 * sizing protocol (write all-ones, read back) falls out of the masks.
 */
import type { ConfigSpace } from './config-space.ts';
import { BAR0, CMD_IO, CMD_MEMORY, COMMAND } from './header.ts';
import type { BarKind } from '../topology/types.ts';

export const ROM_REGION = 6;
/** Physical address width: x86's MAXPHYADDR is at most 52 bits; decoders above it are unreachable. */
export const ADDR_LIMIT = 2 ** 52;
const TWO32 = 2 ** 32;

export interface BarDef {
  /** Region index: 0..5 for BARs, ROM_REGION for the expansion ROM. */
  region: number;
  kind: BarKind | 'rom';
  size: number;
  prefetch: boolean;
  /** Config offset of the (low) register. */
  reg: number;
}

/** Type bits in the low dword (PCI 3.0 §6.2.5.1, figure 6-5/6-6). */
function typeBits(b: BarDef): number {
  if (b.kind === 'io') return 0x1;
  if (b.kind === 'rom') return 0;
  return (b.kind === 'mem64' ? 0x4 : 0) | (b.prefetch ? 0x8 : 0);
}

/** Lays out BARs from a list, assigning slots (a 64-bit BAR takes two). */
export function layoutBars(specs: readonly { kind: BarKind; size: number; prefetch?: boolean }[]): BarDef[] {
  const out: BarDef[] = [];
  let slot = 0;
  for (const s of specs) {
    out.push({ region: slot, kind: s.kind, size: s.size, prefetch: s.prefetch === true, reg: BAR0 + 4 * slot });
    slot += s.kind === 'mem64' ? 2 : 1;
  }
  return out;
}

/** Writes the read-only type bits and the writable address masks of a BAR into config space. */
export function installBar(cfg: ConfigSpace, b: BarDef): void {
  if (b.kind === 'rom') {
    // Bits 31:11 address, bit 0 enable (PCI 3.0 §6.2.5.2).
    cfg.setMask(b.reg, 4, ((~(b.size - 1) & 0xfffff800) | 1) >>> 0);
    return;
  }
  cfg.set(b.reg, 4, typeBits(b));
  const low = b.kind === 'io' ? 0xfffffffc : 0xfffffff0;
  if (b.kind === 'mem64') {
    cfg.setMask(b.reg, 4, b.size >= TWO32 ? 0 : (~(b.size - 1) & low) >>> 0);
    cfg.setMask(b.reg + 4, 4, b.size <= TWO32 ? 0xffffffff : (~(b.size / TWO32 - 1) & 0xffffffff) >>> 0);
  } else {
    cfg.setMask(b.reg, 4, (~(b.size - 1) & low) >>> 0);
  }
}

/** Config offsets a BAR occupies. */
export const barBytes = (b: BarDef): number => (b.kind === 'mem64' ? 8 : 4);

/** Whatever config registers can be read from: the model's config space, or a VMM's copy of a device's. */
export interface ConfigRegisters {
  read(off: number, size: number): number;
}

/**
 * The address a BAR decodes at, or null while it does not decode:
 * memory BARs need Memory Space, IO BARs need IO Space (PCI 3.0 §6.2.2),
 * the ROM also needs its enable bit (§6.2.5.2). `high` maps the upper
 * dword of a 64-bit BAR (the identity, except in a mutant). The model's
 * functions and the vfio-user client (a VMM decoding a device's BARs)
 * both place BARs by it.
 */
export function barAddress(cfg: ConfigRegisters, b: Pick<BarDef, 'kind' | 'size' | 'reg'>, high: (hi: number) => number): number | null {
  const cmd = cfg.read(COMMAND, 2);
  const lo = cfg.read(b.reg, 4);
  let base: number;
  if (b.kind === 'io') {
    if ((cmd & CMD_IO) === 0) return null;
    base = lo & 0xfffffffc;
    base >>>= 0;
  } else {
    if ((cmd & CMD_MEMORY) === 0) return null;
    if (b.kind === 'rom') {
      if ((lo & 1) === 0) return null;
      base = (lo & 0xfffff800) >>> 0;
    } else if (b.kind === 'mem64') {
      base = high(cfg.read(b.reg + 4, 4)) * TWO32 + ((lo & 0xfffffff0) >>> 0);
    } else {
      base = (lo & 0xfffffff0) >>> 0;
    }
  }
  // Low bits below the size are read-only zero, so base is size-aligned.
  if (base + b.size > ADDR_LIMIT) return null;
  return base;
}
