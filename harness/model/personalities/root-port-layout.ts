/**
 * The registers of QEMU 7.2's pcie-root-port (hw/pci-bridge/pcie_root_port.c
 * with gen_pcie_root_port.c), as `-device pcie-root-port,chassis=1,slot=N`
 * builds it on q35: where each capability sits, its reset values, which
 * bits software may write or clear, and which bytes a reset leaves alone.
 * Behaviour lives in root-port.ts.
 */
import { installBar, layoutBars, type BarDef } from '../bar.ts';
import { CAP_MSIX, CAP_PCIE, CAP_SSVID, EXT_ACS, EXT_AER, MSIX_ENABLE, MSIX_MASKALL, PCIE, type Caps } from '../capabilities.ts';
import type { ConfigSpace } from '../config-space.ts';
import { initQemuPortType1 } from '../header-init.ts';
import * as H from '../header.ts';

/**
 * Capability offsets. QEMU places each capability in the first free space
 * in the order it adds them and links each new one at the head of the
 * list, so the list runs PCIe (0x54), MSI-X (0x48), Subsystem IDs (0x40).
 */
const RP_SSVID = 0x40;
const RP_MSIX = 0x48;
export const RP_PCIE = 0x54;
const RP_AER = 0x100;
const RP_ACS = 0x148;
const SSVID_SIZE = 8;
const MSIX_SIZE = 12;
const AER_SIZE = 0x48;
const ACS_SIZE = 8;

/** One MSI-X vector in an exclusive 4 KiB BAR 0: table at 0, PBA at 0x800 (msix_init_exclusive_bar in hw/pci/msix.c). */
const RP_MSIX_BAR_SIZE = 0x1000;
export const RP_MSIX_TABLE_SIZE = 16;
export const RP_MSIX_PBA = 0x800;
/** The PBA covers 64 vectors at least: 8 bytes. */
export const RP_MSIX_PBA_SIZE = 8;

/** Link Capabilities: x32 at 16 GT/s (the x-width and x-speed defaults), L0s, bandwidth notification, DLL Link Active reporting. */
const LNKCAP = 0x00300604;
/** Slot Capabilities below the Physical Slot Number: attention button, power controller, attention and power indicators, hot-plug surprise and capable, electromechanical interlock. */
const SLTCAP = 0x0002007b;

// Advanced Error Reporting registers (PCIe Base §7.8.4), offsets in the capability.
const AER = { UNCOR_STATUS: 0x04, UNCOR_SEVER: 0x0c, COR_STATUS: 0x10, COR_MASK: 0x14, CAP: 0x18, ROOT_COMMAND: 0x2c, ROOT_STATUS: 0x30 } as const;
/** Uncorrectable errors QEMU emulates, and those fatal by default (PCIe Base §6.2.7). */
const AER_UNCOR = 0x03fff030;
const AER_UNCOR_FATAL = 0x00462030;
/** Correctable errors QEMU emulates, and those masked by default. */
const AER_COR = 0x0000f1c1;
const AER_COR_MASKED = 0x0000e000;

/** Bytes a reset leaves as software wrote them (QEMU's reset touches only what each capability resets). */
const KEPT_ON_RESET: readonly [number, number][] = [
  [RP_PCIE + PCIE.DEVCTL2 + 1, 1], // End-End TLP Prefix Blocking
  [RP_AER + AER.UNCOR_SEVER, 4],
  [RP_AER + AER.COR_MASK, 8], // and the AER capabilities and control
  [RP_PCIE + PCIE.SIZE, 0x100 - (RP_PCIE + PCIE.SIZE)], // storage after the last standard capability
  [RP_ACS + ACS_SIZE, 0x1000 - (RP_ACS + ACS_SIZE)], // storage after the last extended capability
];

/** A standard capability: header bytes read-only, the rest read-only until the caller says otherwise. */
function standardCap(cfg: ConfigSpace, at: number, id: number, size: number, next: number): void {
  cfg.clearMasks(at, size);
  cfg.set(at, 1, id);
  cfg.set(at + 1, 1, next);
}

/** An extended capability header: id, version and next (PCIe Base §7.6.3). */
function extendedCap(cfg: ConfigSpace, at: number, id: number, version: number, size: number, next: number): void {
  cfg.clearMasks(at, size);
  cfg.set(at, 4, (id | (version << 16) | (next << 20)) >>> 0);
}

/** PCI Express capability v2 of a root port with a slot (PCIe Base §7.5.3). */
function pcieCap(cfg: ConfigSpace, slot: number): void {
  const at = RP_PCIE;
  standardCap(cfg, at, CAP_PCIE, PCIE.SIZE, RP_MSIX);
  cfg.set(at + PCIE.CAPS, 2, 0x0142); // version 2, root port, slot implemented
  cfg.set(at + PCIE.DEVCAP, 4, 1 << 15); // role-based error reporting
  cfg.setMask(at + PCIE.DEVCTL, 2, 0x000f); // error reporting enables
  cfg.setMask(at + PCIE.DEVSTA, 2, 0, 0x000f); // error detected bits
  cfg.set(at + PCIE.LNKCAP, 4, LNKCAP);
  cfg.set(at + PCIE.LNKSTA, 2, 0x0204); // as LNKCAP until a read syncs it with the device below
  cfg.set(at + PCIE.SLTCAP, 4, (SLTCAP | (slot << 19)) >>> 0);
  cfg.setMask(at + PCIE.SLTCTL, 2, 0x0ff9); // indicators, power controller, interlock, event enables
  cfg.set(at + PCIE.SLTCTL, 2, 0x07c0); // empty slot: power and both indicators off
  cfg.setMask(at + PCIE.SLTSTA, 2, 0, 0x0019); // attention button, presence detect changed, command completed
  cfg.setMask(at + PCIE.RTCTL, 2, 0x0007); // system error on correctable, non-fatal, fatal errors
  cfg.set(at + PCIE.DEVCAP2, 4, 0x00300020); // ARI forwarding, extended fmt field, end-end TLP prefix
  cfg.setMask(at + PCIE.DEVCTL2, 2, 0x8020);
  cfg.set(at + PCIE.LNKCAP2, 4, 0x1e); // 2.5, 5, 8 and 16 GT/s
  cfg.set(at + PCIE.LNKCTL2, 2, 0x0004); // target link speed 16 GT/s, read-only
}

/** AER (PCIe Base §7.8.4) with QEMU's root port additions; no error is ever injected, so the status bits stay clear. */
function aerCap(cfg: ConfigSpace): void {
  const at = RP_AER;
  extendedCap(cfg, at, EXT_AER, 2, AER_SIZE, RP_ACS);
  cfg.setMask(at + AER.UNCOR_STATUS, 4, 0, AER_UNCOR);
  cfg.set(at + AER.UNCOR_SEVER, 4, AER_UNCOR_FATAL);
  cfg.setMask(at + AER.UNCOR_SEVER, 4, AER_UNCOR);
  cfg.setMask(at + AER.COR_STATUS, 4, 0, AER_COR);
  cfg.set(at + AER.COR_MASK, 4, AER_COR_MASKED);
  cfg.setMask(at + AER.COR_MASK, 4, AER_COR);
  cfg.set(at + AER.CAP, 4, 0x02a0); // ECRC generation and check capable, multiple header recording capable
  cfg.setMask(at + AER.CAP, 4, 0x0540); // ... and their enables
  cfg.setMask(at + AER.ROOT_COMMAND, 4, 0x7);
  cfg.setMask(at + AER.ROOT_STATUS, 4, 0, 0x7f);
}

/** ACS (PCIe Base §7.7.8): source validation, translation blocking, P2P request and completion redirect, upstream forwarding, direct translated P2P. */
function acsCap(cfg: ConfigSpace): void {
  extendedCap(cfg, RP_ACS, EXT_ACS, 1, ACS_SIZE, 0);
  cfg.set(RP_ACS + 4, 2, 0x005f);
  cfg.setMask(RP_ACS + 6, 2, 0x005f);
}

/**
 * Lays out a root port with Physical Slot Number `slot`. `multifunction`
 * is the header's multi-function bit: QEMU sets it only where it is asked
 * to (function 0 of a multi-function slot).
 */
export function layOutRootPort(cfg: ConfigSpace, slot: number, multifunction: boolean): { caps: Caps; bars: BarDef[] } {
  initQemuPortType1(cfg, { vendor: 0x1b36, device: 0x000c, classCode: 0x060400, revision: 0, pin: 1, multifunction });
  cfg.set(H.STATUS, 2, H.STATUS_CAP_LIST);
  cfg.set(H.CAP_PTR, 1, RP_PCIE);
  standardCap(cfg, RP_SSVID, CAP_SSVID, SSVID_SIZE, 0);
  cfg.set(RP_SSVID + 4, 2, 0x1b36); // subsystem vendor: the port's own vendor; subsystem 0
  standardCap(cfg, RP_MSIX, CAP_MSIX, MSIX_SIZE, RP_SSVID);
  cfg.setMask(RP_MSIX + 2, 2, MSIX_ENABLE | MSIX_MASKALL);
  cfg.set(RP_MSIX + 8, 4, RP_MSIX_PBA); // table at 0 and PBA in BAR 0
  pcieCap(cfg, slot);
  aerCap(cfg);
  acsCap(cfg);
  for (const [off, len] of KEPT_ON_RESET) cfg.keepOnReset(off, len);
  const bars = layoutBars([{ kind: 'mem32', size: RP_MSIX_BAR_SIZE }]);
  for (const b of bars) installBar(cfg, b);
  return {
    caps: { msix: { off: RP_MSIX, vectors: 1, bar: 0, table: 0, pba: RP_MSIX_PBA }, pcie: { off: RP_PCIE, type: 'root-port', flr: false }, acs: { off: RP_ACS } },
    bars,
  };
}
