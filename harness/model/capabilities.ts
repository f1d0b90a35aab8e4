/**
 * Capability structures: the standard list (PCI 3.0 §6.7) and the
 * extended list at 0x100 (PCIe Base §7.6). Each is laid out with its
 * read-only, read-write and RW1C bits; behaviour lives in function.ts.
 */
import type { ConfigSpace } from './config-space.ts';
import { CAP_PTR, STATUS, STATUS_CAP_LIST } from './header.ts';

export const CAP_PM = 0x01;
export const CAP_MSI = 0x05;
export const CAP_SSVID = 0x0d;
export const CAP_PCIE = 0x10;
export const CAP_MSIX = 0x11;
export const EXT_AER = 0x0001;
export const EXT_ACS = 0x000d;
export const EXT_ATS = 0x000f;
export const EXT_PASID = 0x001b;

export type PcieType = 'endpoint' | 'legacy-endpoint' | 'root-port' | 'rc-integrated';
const PCIE_TYPE_CODE: Record<PcieType, number> = { endpoint: 0, 'legacy-endpoint': 1, 'root-port': 4, 'rc-integrated': 9 };

export interface MsiCap {
  off: number;
  /** log2 of the vectors requested (Multiple Message Capable). */
  mmc: number;
  is64: boolean;
  /** Per-vector masking. */
  pvm: boolean;
  data: number;
  mask: number;
  pending: number;
}

export interface MsixCap {
  off: number;
  vectors: number;
  /** Region (BAR) holding table and PBA. */
  bar: number;
  table: number;
  pba: number;
}

export interface PcieCap {
  off: number;
  type: PcieType;
  flr: boolean;
}

export interface PasidCap {
  off: number;
  /** Max PASID Width (PCIe Base §7.8.8.2). */
  width: number;
}

export interface Caps {
  pm?: { off: number };
  msi?: MsiCap;
  msix?: MsixCap;
  pcie?: PcieCap;
  pasid?: PasidCap;
  ats?: { off: number };
  acs?: { off: number };
}

export interface CapRequest {
  pm?: boolean;
  msi?: { vectors: number; is64: boolean; pvm: boolean };
  msix?: { vectors: number; bar: number };
  pcie?: { type: PcieType; flr: boolean };
  pasid?: { width: number };
  ats?: boolean;
  acs?: boolean;
}

/** PCIe capability register offsets (PCIe Base §7.5.3). */
export const PCIE = {
  CAPS: 0x02,
  DEVCAP: 0x04,
  DEVCTL: 0x08,
  DEVSTA: 0x0a,
  LNKCAP: 0x0c,
  LNKCTL: 0x10,
  LNKSTA: 0x12,
  SLTCAP: 0x14,
  SLTCTL: 0x18,
  SLTSTA: 0x1a,
  RTCTL: 0x1c,
  DEVCAP2: 0x24,
  DEVCTL2: 0x28,
  LNKCAP2: 0x2c,
  LNKCTL2: 0x30,
  SIZE: 0x3c,
} as const;
export const DEVCAP_FLR = 1 << 28;
export const DEVCTL_FLR = 1 << 15;
/** Slot Control (PCIe Base §7.5.3.10): an event's enable sits at the bit of the Slot Status event it enables. */
export const SLTCTL_PDCE = 1 << 3;
export const SLTCTL_HPIE = 1 << 5;
export const SLTCTL_AIC_OFF = 0x00c0;
/** Power Indicator Control: on, blink, off. */
export const SLTCTL_PIC = 0x0300;
export const SLTCTL_PIC_ON = 0x0100;
export const SLTCTL_PIC_OFF = 0x0300;
/** Power Controller Control: 1 is power off. */
export const SLTCTL_PCC = 0x0400;
export const SLTCTL_EIC = 0x0800;
/** Slot Status (PCIe Base §7.5.3.11). */
export const SLTSTA_ABP = 1 << 0;
export const SLTSTA_PDC = 1 << 3;
export const SLTSTA_CC = 1 << 4;
export const SLTSTA_PDS = 1 << 6;
export const SLTSTA_EIS = 1 << 7;
export const LNKSTA_DLLLA = 1 << 13;

export const MSI_ENABLE = 1;
export const MSIX_ENABLE = 1 << 15;
export const MSIX_MASKALL = 1 << 14;
export const PASID_ENABLE = 1;
export const ATS_ENABLE = 1 << 15;
export const PM_STATE_MASK = 3;

/** Offsets of MSI registers (PCI 3.0 §6.8.1, figure 6-9). */
function msiLayout(off: number, is64: boolean): { data: number; mask: number; pending: number; size: number } {
  return is64
    ? { data: off + 0x0c, mask: off + 0x10, pending: off + 0x14, size: 0x18 }
    : { data: off + 0x08, mask: off + 0x0c, pending: off + 0x10, size: 0x14 };
}

/** Lays out the requested capabilities from 0x40 (standard) and 0x100 (extended). */
export function installCaps(cfg: ConfigSpace, req: CapRequest, start = 0x40): Caps {
  const caps: Caps = {};
  let off = start;
  let prevNext = CAP_PTR;
  const link = (id: number, size: number): number => {
    const at = off;
    cfg.clearMasks(at, size);
    cfg.set(prevNext, 1, at);
    cfg.set(at, 1, id);
    prevNext = at + 1;
    off = (at + size + 3) & ~3;
    return at;
  };
  if (req.pm === true) {
    const at = link(CAP_PM, 8);
    cfg.set(at + 2, 2, 0x0003); // PMC: version 1.2 (PCI PM 1.2 §3.2.3)
    cfg.set(at + 4, 2, 1 << 3); // PMCSR: No_Soft_Reset, D0
    cfg.setMask(at + 4, 2, 0x0103, 0x8000); // power state and PME_En RW; PME_Status RW1C
    caps.pm = { off: at };
  }
  if (req.msi !== undefined) {
    const { vectors, is64, pvm } = req.msi;
    const mmc = Math.log2(vectors);
    const lay = msiLayout(0, is64);
    const at = link(CAP_MSI, pvm ? lay.size : lay.data + 2);
    const l = msiLayout(at, is64);
    cfg.set(at + 2, 2, (mmc << 1) | (is64 ? 0x80 : 0) | (pvm ? 0x100 : 0));
    cfg.setMask(at + 2, 2, 0x0071); // enable and Multiple Message Enable
    cfg.setMask(at + 4, 4, 0xfffffffc); // DWORD-aligned address
    if (is64) cfg.setMask(at + 8, 4, 0xffffffff);
    cfg.setMask(l.data, 2, 0xffff);
    if (pvm) cfg.setMask(l.mask, 4, vectors === 32 ? 0xffffffff : (1 << vectors) - 1);
    caps.msi = { off: at, mmc, is64, pvm, data: l.data, mask: l.mask, pending: l.pending };
  }
  if (req.msix !== undefined) {
    const at = link(CAP_MSIX, 12);
    cfg.set(at + 2, 2, req.msix.vectors - 1);
    cfg.setMask(at + 2, 2, MSIX_ENABLE | MSIX_MASKALL);
    cfg.set(at + 4, 4, 0x1000 | req.msix.bar);
    cfg.set(at + 8, 4, 0x1800 | req.msix.bar);
    caps.msix = { off: at, vectors: req.msix.vectors, bar: req.msix.bar, table: 0x1000, pba: 0x1800 };
  }
  if (req.pcie !== undefined) {
    const { type, flr } = req.pcie;
    const at = link(CAP_PCIE, PCIE.SIZE);
    cfg.set(at + PCIE.CAPS, 2, 0x2 | (PCIE_TYPE_CODE[type] << 4));
    cfg.set(at + PCIE.DEVCAP, 4, flr ? DEVCAP_FLR : 0);
    cfg.setMask(at + PCIE.DEVCTL, 2, 0x7fff); // bit 15 (Initiate FLR) is write-only, handled in function.ts
    cfg.setMask(at + PCIE.DEVSTA, 2, 0, 0x000f);
    cfg.setMask(at + PCIE.LNKCTL, 2, 0x0fff);
    cfg.setMask(at + PCIE.DEVCTL2, 2, 0x0020); // ARI Forwarding Enable
    caps.pcie = { off: at, type, flr };
  }
  cfg.set(STATUS, 2, cfg.read(STATUS, 2) | (prevNext === CAP_PTR ? 0 : STATUS_CAP_LIST));

  // Extended capabilities: header = id | version<<16 | next<<20 (PCIe Base §7.6.3).
  let ext = 0x100;
  let prevHeader = -1;
  const extLink = (id: number, version: number, size: number): number => {
    const at = ext;
    cfg.clearMasks(at, size);
    if (prevHeader >= 0) cfg.set(prevHeader, 4, (cfg.read(prevHeader, 4) & 0x000fffff) | (at << 20));
    cfg.set(at, 4, id | (version << 16));
    prevHeader = at;
    ext += size;
    return at;
  };
  if (req.pasid !== undefined) {
    const at = extLink(EXT_PASID, 1, 8);
    cfg.set(at + 4, 2, req.pasid.width << 8); // no execute, no privileged mode
    cfg.setMask(at + 6, 2, PASID_ENABLE);
    caps.pasid = { off: at, width: req.pasid.width };
  }
  if (req.ats === true) {
    const at = extLink(EXT_ATS, 1, 8);
    cfg.set(at + 4, 2, 0x20); // page-aligned requests, queue depth 32 (encoded 0)
    cfg.setMask(at + 6, 2, ATS_ENABLE | 0x1f);
    caps.ats = { off: at };
  }
  if (req.acs === true) {
    const at = extLink(EXT_ACS, 1, 8);
    cfg.set(at + 4, 2, 0x001f); // SV, TB, RR, CR, UF
    cfg.setMask(at + 6, 2, 0x001f);
    caps.acs = { off: at };
  }
  return caps;
}

/** The ranges of a capability's registers, for routing config writes to their behaviour. */
export const within = (off: number, size: number, start: number, len: number): boolean => off < start + len && off + size > start;
