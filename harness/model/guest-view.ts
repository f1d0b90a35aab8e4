/**
 * A function's configuration space as Xen's vPCI shows it to a guest
 * domain (4.21 and later; RootSpec.view 'xen-vpci-guest'), byte by byte.
 * Xen registers handlers for a few registers and answers the rest itself:
 * a register without a handler reads all ones and drops writes
 * (xen/drivers/vpci/vpci.c vpci_read_hw for a domU). Written from 4.22.0:
 *   - Command: the guest's own copy, with IO, parity, wait, SERR,
 *     fast back-to-back and bits 15:11 reserved-preserve (read 0, kept)
 *     (header.c init_header, vpci_add_register_mask for PCI_COMMAND);
 *     Interrupt Disable set when MSI or MSI-X turns on, and kept set by
 *     Command writes while either is on (header.c cmd_write; msi.c and
 *     msix.c control_write: pci_intx(pdev, false) on the device too);
 *   - Status: the device's, reserved bits read 0 (cap.c:235-241);
 *   - memory BARs: the guest's addresses (guest_mem_bar_read/write);
 *     unused BAR slots read 0; IO BARs have no handler on x86
 *     (header.c:840-846); the ROM BAR reads 0, writes dropped (:919-925);
 *   - the capability pointer and, for MSI and MSI-X only, their ID and
 *     next bytes (cap.c:170-228);
 *   - MSI: control, address, upper address, data (two bytes) and the mask
 *     bits (msi.c:270-321); not the pending bits;
 *   - MSI-X: control only (msix.c:777), not the table and PBA offsets;
 *   - the extended capability header at 0x100 reads 0 (cap.c:251-254:
 *     pdev->ext_cfg, set when the host's MMCFG reaches the device's
 *     extended space, which it does for a conventional device too).
 * The model's endpoint shows a guest MSI and MSI-X only, so the list of
 * capabilities a guest walks is the device's.
 */
import type { PciFunction } from './function.ts';

/** What a guest sees of one byte: the model's register, all ones, zero, or the Command register's guest copy. */
export type GuestByte = 'device' | 'ones' | 'zero' | 'command';

/** Command's Interrupt Disable (PCI 3.0 §6.2.2). */
export const GUEST_INTX_DISABLE = 0x0400;

/** Command bits a guest cannot set (PCI_COMMAND_IO | PARITY | WAIT | SERR | FAST_BACK | RSVDP_MASK). */
export const GUEST_COMMAND_RSVDP = 0x0001 | 0x0040 | 0x0080 | 0x0100 | 0x0200 | 0xf800;

/** Per function layout (keyed by its write mask, which functions built from one description share). */
const layouts = new WeakMap<Uint8Array, Uint8Array>();

const DEVICE = 0;
const ONES = 1;
const ZERO = 2;
const COMMAND = 3;
const KINDS: readonly GuestByte[] = ['device', 'ones', 'zero', 'command'];

function layoutOf(fn: PciFunction): Uint8Array {
  let l = layouts.get(fn.cfg.wmask);
  if (l !== undefined && l.length === fn.cfg.size) return l;
  l = new Uint8Array(fn.cfg.size).fill(ONES);
  const set = (off: number, len: number, k: number): void => {
    l!.fill(k, off, off + len);
  };
  set(0x04, 2, COMMAND);
  set(0x06, 2, DEVICE);
  for (const b of fn.bars) {
    if (b === undefined) continue;
    if (b.kind === 'rom') continue;
    if (b.kind !== 'io') set(b.reg, b.kind === 'mem64' ? 8 : 4, DEVICE);
  }
  // Unused BAR slots read 0 (vpci_read_val).
  for (let reg = 0x10; reg < 0x28; reg += 4) if (l[reg] === ONES && !fn.bars.some((b) => b !== undefined && b.kind === 'io' && b.reg === reg)) set(reg, 4, ZERO);
  set(0x30, 4, ZERO);
  set(0x34, 1, DEVICE);
  const msi = fn.caps.msi;
  if (msi !== undefined) {
    set(msi.off, 4, DEVICE); // ID, next, control
    set(msi.off + 4, 4, DEVICE);
    if (msi.is64) set(msi.off + 8, 4, DEVICE);
    set(msi.data, 2, DEVICE);
    if (msi.pvm) set(msi.mask, 4, DEVICE);
  }
  const msix = fn.caps.msix;
  if (msix !== undefined) set(msix.off, 4, DEVICE); // ID, next, control
  if (fn.cfg.size > 0x100) set(0x100, 4, ZERO);
  layouts.set(fn.cfg.wmask, l);
  return l;
}

/** What a guest sees of byte `off` of the function's configuration space. */
export const guestByte = (fn: PciFunction, off: number): GuestByte => (off >= 0x100 && off < 0x104 ? 'zero' : off >= fn.cfg.size ? 'ones' : KINDS[layoutOf(fn)[off]]);
