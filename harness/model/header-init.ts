/**
 * Reset values and write masks of the standard headers:
 * type 0 per PCI 3.0 §6.2, type 1 per PCI-to-PCI Bridge 1.2 §3.2.
 */
import type { ConfigSpace } from './config-space.ts';
import * as H from './header.ts';

export interface Identity {
  vendor: number;
  device: number;
  /** 24-bit class code: base class, sub-class, programming interface. */
  classCode: number;
  revision: number;
  subsysVendor?: number;
  subsysId?: number;
  /** Interrupt Pin: 0 none, 1..4 = INTA..INTD. */
  pin: number;
  multifunction: boolean;
}

const COMMAND_RW = H.CMD_IO | H.CMD_MEMORY | H.CMD_MASTER | H.CMD_PARITY | H.CMD_SERR | H.CMD_INTX_DISABLE;

function common(cfg: ConfigSpace, id: Identity, headerType: number): void {
  cfg.set(H.VENDOR_ID, 2, id.vendor);
  cfg.set(H.DEVICE_ID, 2, id.device);
  cfg.set(H.REVISION, 1, id.revision);
  cfg.set(H.CLASS_PROG, 3, id.classCode);
  cfg.set(H.HEADER_TYPE, 1, headerType | (id.multifunction ? H.HEADER_MULTIFUNCTION : 0));
  cfg.set(H.INTERRUPT_PIN, 1, id.pin);
  cfg.setMask(H.COMMAND, 2, COMMAND_RW);
  cfg.setMask(H.STATUS, 2, 0, H.STATUS_W1C);
  cfg.setMask(H.CACHE_LINE, 1, 0xff);
  cfg.setMask(H.LATENCY_TIMER, 1, 0xff);
  cfg.setMask(H.INTERRUPT_LINE, 1, 0xff);
}

export function initType0(cfg: ConfigSpace, id: Identity): void {
  common(cfg, id, 0);
  cfg.set(H.SUBSYS_VENDOR, 2, id.subsysVendor ?? 0);
  cfg.set(H.SUBSYS_ID, 2, id.subsysId ?? 0);
}

export function initType1(cfg: ConfigSpace, id: Identity): void {
  common(cfg, id, 1);
  cfg.setMask(H.PRIMARY_BUS, 4, 0xffffffff); // primary, secondary, subordinate, secondary latency
  cfg.set(H.IO_BASE, 1, 0x01); // 32-bit IO addressing (Bridge 1.2 §3.2.5.6)
  cfg.set(H.IO_LIMIT, 1, 0x01);
  cfg.setMask(H.IO_BASE, 2, 0xf0f0);
  cfg.setMask(H.SEC_STATUS, 2, 0, H.STATUS_W1C);
  cfg.setMask(H.MEM_BASE, 4, 0xfff0fff0);
  cfg.set(H.PREF_BASE, 2, 0x0001); // 64-bit prefetchable (Bridge 1.2 §3.2.5.9)
  cfg.set(H.PREF_LIMIT, 2, 0x0001);
  cfg.setMask(H.PREF_BASE, 4, 0xfff0fff0);
  cfg.setMask(H.PREF_BASE_UPPER, 4, 0xffffffff);
  cfg.setMask(H.PREF_LIMIT_UPPER, 4, 0xffffffff);
  cfg.setMask(H.IO_BASE_UPPER, 4, 0xffffffff);
  cfg.setMask(H.BRIDGE_CONTROL, 2, 0x007f);
}

/**
 * QEMU's conventional type-0 header (hw/pci/pci.c): command writable bits
 * 0x0507, latency timer read-only zero, subsystem 1af4:1100, and the
 * device-specific area 0x40..0xff plain storage that reset leaves alone.
 */
export function initQemuType0(cfg: ConfigSpace, id: Identity): void {
  initType0(cfg, { subsysVendor: 0x1af4, subsysId: 0x1100, ...id });
  cfg.setMask(H.COMMAND, 2, H.CMD_IO | H.CMD_MEMORY | H.CMD_MASTER | H.CMD_SERR | H.CMD_INTX_DISABLE);
  cfg.setMask(H.LATENCY_TIMER, 1, 0);
  for (let o = 0x40; o < 0x100; o += 4) cfg.setMask(o, 4, 0xffffffff);
}

/**
 * QEMU's type 1 header of a PCI Express port (hw/pci/pci.c, pci_bridge.c,
 * pcie_port.c): command writable bits 0x0507, latency timer read-only
 * zero, a 16-bit IO window, secondary status and the IO upper registers
 * read-only zero, bridge control bits 0x5f writable, windows closed at
 * reset (base above limit), and every byte from 0x40 on plain storage
 * until a capability claims it.
 */
export function initQemuPortType1(cfg: ConfigSpace, id: Identity): void {
  initType1(cfg, id);
  cfg.setMask(H.COMMAND, 2, H.CMD_IO | H.CMD_MEMORY | H.CMD_MASTER | H.CMD_SERR | H.CMD_INTX_DISABLE);
  cfg.setMask(H.LATENCY_TIMER, 1, 0);
  cfg.set(H.IO_BASE, 2, 0x00f0);
  cfg.setMask(H.SEC_STATUS, 2, 0);
  cfg.set(H.MEM_BASE, 4, 0x0000fff0);
  cfg.set(H.PREF_BASE, 4, 0x0001fff1);
  cfg.setMask(H.IO_BASE_UPPER, 4, 0);
  cfg.setMask(H.BRIDGE_CONTROL, 2, H.BRCTL_PARITY | H.BRCTL_SERR | H.BRCTL_ISA | H.BRCTL_VGA | H.BRCTL_VGA_16BIT | H.BRCTL_SEC_BUS_RESET);
  for (let o = 0x40; o < cfg.size; o += 4) cfg.setMask(o, 4, 0xffffffff);
}
