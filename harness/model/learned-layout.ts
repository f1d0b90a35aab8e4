/**
 * What the specifications define for a function isoroot learned from the
 * target (topology LearnedFunction): its header (PCI 3.0 §6.2, or the
 * type 1 header's common part), its BARs and ROM as their write masks size
 * them (§6.2.5), and its PM, MSI, MSI-X and PCI Express capabilities
 * where the list places them (§6.7). Device-specific registers and the
 * contents of its BARs are not known: the model does not predict them.
 */
import { barBytes, type BarDef } from './bar.ts';
import { capabilityList } from '../spec/cap-list.ts';
import { CAP_MSI, CAP_MSIX, CAP_PCIE, CAP_PM, PCIE, type Caps, type PcieType } from './capabilities.ts';
import * as H from './header.ts';
import type { LearnedFunction } from '../topology/types.ts';
import { hexToBytes } from '../util/hex.ts';

export interface LearnedLayout {
  size: number;
  /** Register values at reset: the snapshot, with unimplemented BARs read as zero (§6.2.5.1). */
  config: Uint8Array;
  wmask: Uint8Array;
  w1c: Uint8Array;
  /** Per byte, the bits whose value the model predicts. */
  known: Uint8Array;
  /** Register ranges [start, end) the specifications define and software may write: what generators may touch. */
  writable: [number, number][];
  bars: BarDef[];
  caps: Caps;
  /** 0 or 1: the header type without the multi-function bit. */
  headerType: number;
  /** A BAR register that reads non-zero although no address bit of it can be written (§6.2.5.1 hardwires it to zero). */
  zeroed: number[];
}

const u16 = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number): number => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
/** The lowest set bit of a mask: the size a BAR's writable address bits give it. */
const lowestBit = (m: bigint): bigint => m & -m;

const PCIE_TYPES: Record<number, PcieType> = { 0: 'endpoint', 1: 'legacy-endpoint', 4: 'root-port', 9: 'rc-integrated' };

const layouts = new WeakMap<LearnedFunction, LearnedLayout>();

export function learnedLayout(l: LearnedFunction): LearnedLayout {
  let out = layouts.get(l);
  if (out === undefined) layouts.set(l, (out = compute(l)));
  return out;
}

function compute(l: LearnedFunction): LearnedLayout {
  const config = hexToBytes(l.config)!;
  const wmask = hexToBytes(l.wmask)!;
  const size = config.length;
  const w1c = new Uint8Array(size);
  const known = new Uint8Array(size);
  const writable: [number, number][] = [];
  const headerType = config[H.HEADER_TYPE] & 0x7f;
  const setKnown = (off: number, len: number, bits = 0xff): void => {
    for (let i = off; i < Math.min(size, off + len); i++) known[i] = bits;
  };
  const writes = (off: number, len: number): void => {
    writable.push([off, off + len]);
  };

  // The header: identity, command, status, misc; type 1's bridge registers are the device's here.
  setKnown(0, headerType === 1 ? 0x18 : 0x40);
  if (headerType === 1) {
    setKnown(H.CAP_PTR, 4);
    setKnown(H.INTERRUPT_LINE, 2);
  }
  // BIST and the status bits a device sets itself (Interrupt Status, the error bits) are its own.
  known[H.BIST] = 0;
  known[H.STATUS] = 0xff & ~H.STATUS_INTERRUPT;
  known[H.STATUS + 1] = 0xff & ~(H.STATUS_W1C >> 8);
  w1c[H.STATUS + 1] = H.STATUS_W1C >> 8;
  // The bits that did not take the probe are what the header hardwires.
  for (const [off, len] of [[H.COMMAND, 2], [H.CACHE_LINE, 2], [H.INTERRUPT_LINE, 1]] as const) writes(off, len);

  const bars: BarDef[] = [];
  const zeroed: number[] = [];
  // What a BAR decodes: the region's size where the device declares one (vfio-user REGION_INFO), as a VMM
  // maps it; else what sizing gives. The register's own bits are the target's either way (the learned mask).
  const decodes = (region: number, sized: number): number => {
    const declared = l.regions?.[region] ?? 0;
    return declared > 0 ? declared : sized;
  };
  const zero = (reg: number, len: number): void => {
    if (config.subarray(reg, reg + len).some((b) => b !== 0)) zeroed.push(reg);
    config.fill(0, reg, reg + len);
    wmask.fill(0, reg, reg + len);
  };
  const barRegs = headerType === 1 ? 2 : 6;
  for (let i = 0; i < barRegs; i++) {
    const reg = H.BAR0 + 4 * i;
    const lo = u32(config, reg);
    const io = (lo & 1) === 1;
    const wide = !io && ((lo >> 1) & 3) === 2 && i + 1 < barRegs;
    let mask = BigInt(u32(wmask, reg) & (io ? 0xfffffffc : 0xfffffff0));
    if (wide) mask |= BigInt(u32(wmask, reg + 4)) << 32n;
    const bytes = wide ? 8 : 4;
    if (mask === 0n) {
      zero(reg, bytes);
      continue;
    }
    const def: BarDef = { region: i, kind: io ? 'io' : wide ? 'mem64' : 'mem32', size: decodes(i, Number(lowestBit(mask))), prefetch: !io && (lo & 8) !== 0, reg };
    bars[i] = def;
    writes(reg, barBytes(def));
    if (wide) i++;
  }
  const romReg = headerType === 1 ? H.ROM_TYPE1 : H.ROM_TYPE0;
  const romMask = u32(wmask, romReg) & 0xfffff800;
  if (romMask === 0) zero(romReg, 4);
  else {
    bars[6] = { region: 6, kind: 'rom', size: decodes(6, Number(lowestBit(BigInt(romMask)))), prefetch: false, reg: romReg };
    writes(romReg, 4);
  }
  if (headerType === 1) setKnown(H.ROM_TYPE1, 4);

  // Capabilities (PCI 3.0 §6.7): the ones whose registers the specifications define.
  const caps: Caps = {};
  for (const { id, off: ptr } of capabilityList((o) => config[o])) {
    setKnown(ptr, 2);
    const mask = (off: number, len: number, m: number, c = 0): void => {
      for (let k = 0; k < len; k++) {
        wmask[off + k] = (m >>> (8 * k)) & 0xff;
        w1c[off + k] = (c >>> (8 * k)) & 0xff;
      }
    };
    if (id === CAP_PM && caps.pm === undefined) {
      caps.pm = { off: ptr };
      setKnown(ptr + 2, 6);
      mask(ptr + 4, 2, 0x0103, 0x8000); // power state and PME_En; PME_Status RW1C (PCI PM 1.2 §3.2.4)
      known[ptr + 5] = 0xff & ~0x80; // PME_Status is the device's to set
      writes(ptr + 4, 2);
    } else if (id === CAP_MSI && caps.msi === undefined) {
      const ctl = u16(config, ptr + 2);
      const is64 = (ctl & 0x80) !== 0;
      const pvm = (ctl & 0x100) !== 0;
      const mmc = Math.min(5, (ctl >> 1) & 7);
      const data = ptr + (is64 ? 0x0c : 0x08);
      const maskReg = data + 4;
      const pending = maskReg + 4;
      caps.msi = { off: ptr, mmc, is64, pvm, data, mask: maskReg, pending };
      setKnown(ptr + 2, (pvm ? pending : data + 2) - (ptr + 2));
      mask(ptr + 2, 2, 0x0071);
      mask(ptr + 4, 4, 0xfffffffc);
      if (is64) mask(ptr + 8, 4, 0xffffffff);
      mask(data, 2, 0xffff);
      writes(ptr + 2, data + 2 - (ptr + 2));
      if (pvm) {
        mask(maskReg, 4, mmc === 5 ? 0xffffffff : (1 << (1 << mmc)) - 1);
        writes(maskReg, 4);
      }
    } else if (id === CAP_MSIX && caps.msix === undefined) {
      const ctl = u16(config, ptr + 2);
      const table = u32(config, ptr + 4);
      const pba = u32(config, ptr + 8);
      const vectors = (ctl & 0x7ff) + 1;
      setKnown(ptr + 2, 10);
      mask(ptr + 2, 2, 0xc000);
      writes(ptr + 2, 2);
      // The model keeps a table and PBA where they share a BAR, the PBA after the table (as function.ts reads them).
      const tableOff = (table & ~7) >>> 0;
      const pbaOff = (pba & ~7) >>> 0;
      if ((table & 7) === (pba & 7) && pbaOff >= tableOff + vectors * 16 && bars[table & 7] !== undefined) caps.msix = { off: ptr, vectors, bar: table & 7, table: tableOff, pba: pbaOff };
    } else if (id === CAP_PCIE && caps.pcie === undefined) {
      const flags = u16(config, ptr + PCIE.CAPS);
      const devcap = u32(config, ptr + PCIE.DEVCAP);
      caps.pcie = { off: ptr, type: PCIE_TYPES[(flags >> 4) & 0xf] ?? 'endpoint', flr: (devcap & (1 << 28)) !== 0 };
      // The capabilities registers are read-only; control and status are the device's.
      for (const r of [PCIE.CAPS, PCIE.DEVCAP, PCIE.LNKCAP, PCIE.SLTCAP, PCIE.DEVCAP2, PCIE.LNKCAP2]) setKnown(ptr + r, r === PCIE.CAPS ? 2 : 4);
    }
  }
  return { size, config, wmask, w1c, known, writable, bars, caps, headerType, zeroed };
}

/** Whether a config write of [reg, reg + size) stays within the registers the specifications define and software may write. */
export function learnedWritable(l: LearnedFunction, reg: number, size: number): boolean {
  return learnedLayout(l).writable.some(([a, b]) => reg >= a && reg + size <= b);
}
