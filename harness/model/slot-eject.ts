/**
 * The eject an OS does at a PCIe hot-plug slot (PCIe Base §6.7.1.8):
 * power controller and power indicator off. QEMU removes a device from
 * a powered slot on the Slot Control write that turns both off (not on
 * one that finds them off already), and has no other way without the
 * guest; isoroot's dev.unplug at a root port is this eject, with Slot
 * Control put back after it and Command Completed cleared if it was
 * clear, so that the slot otherwise looks as a removal leaves it.
 */
import { PCIE, SLTCTL_PCC, SLTCTL_PIC, SLTCTL_PIC_OFF, SLTSTA_CC } from './capabilities.ts';

/** Power controller off and power indicator off. */
export function slotOff(ctl: number): boolean {
  return (ctl & SLTCTL_PCC) !== 0 && (ctl & SLTCTL_PIC) === SLTCTL_PIC_OFF;
}

/** One 2-byte config write, at an offset in the PCI Express capability. */
export interface SlotWrite {
  reg: number;
  value: number;
}

/** The writes that eject what is in a slot whose Slot Control and Slot Status read `ctl` and `sta`. */
export function ejectWrites(ctl: number, sta: number): SlotWrite[] {
  const w = (reg: number, value: number): SlotWrite => ({ reg, value });
  return [
    ...(slotOff(ctl) ? [w(PCIE.SLTCTL, ctl & ~SLTCTL_PCC)] : []),
    w(PCIE.SLTCTL, ctl | SLTCTL_PCC | SLTCTL_PIC_OFF),
    w(PCIE.SLTCTL, ctl),
    ...((sta & SLTSTA_CC) === 0 ? [w(PCIE.SLTSTA, SLTSTA_CC)] : []),
  ];
}
