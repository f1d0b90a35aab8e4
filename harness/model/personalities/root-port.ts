/**
 * QEMU 7.2's pcie-root-port (1b36:000c) as isoroot's QEMU target builds it:
 * the registers of root-port-layout.ts, and the behaviour of QEMU's
 * hw/pci/pcie.c, pcie_aer.c and msix.c behind them:
 *
 * - Slot (PCIe Base §6.7): writing Slot Control completes the command at
 *   once (Command Completed), Electromechanical Interlock Control toggles
 *   the interlock status, and the Power Controller powers the functions
 *   below on or off (off resets them; they read all ones until power
 *   returns). Turning power and the power indicator off while a device is
 *   present ejects it. A write of 1 to a Slot Status event bit that was not
 *   set puts every event bit back as it was.
 * - Hot-plug signalling: an enabled event (Attention Button, Presence
 *   Detect Changed, Command Completed) raises INTx or MSI-X vector 0 when
 *   it starts being signalled (and MSI-X again when it stops). Every config
 *   write re-evaluates the AER root error interrupt, which, with no error
 *   ever reported, lowers INTx.
 * - Hot-plug is native (PCIe Base §6.7.3): the QEMU target turns off
 *   q35's ACPI hot-plug of bridges (acpi-pci-hotplug-with-bridge-support),
 *   which would otherwise take over the ports on the main root bus.
 * - Link Status width and speed follow the device below on every read.
 * - BAR 0 holds the MSI-X table (16 bytes at 0) and PBA (8 bytes at
 *   0x800). Accesses are split as QEMU's memory core splits them; only
 *   whole dwords reach the table, which stores what is written. The rest
 *   of the BAR claims nothing: QEMU's MSI-X BAR is a container whose holes
 *   let whatever lies beneath answer.
 * - Reset restores only what QEMU's reset handlers restore
 *   (root-port-layout.ts); Secondary Bus Reset acts on its 0 to 1 edge.
 */
import { Bridge } from './bridge.ts';
import { ejectWrites, slotOff } from '../slot-eject.ts';
import { LNKSTA_DLLLA, PCIE, SLTCTL_AIC_OFF, SLTCTL_EIC, SLTCTL_HPIE, SLTCTL_PCC, SLTCTL_PIC_OFF, SLTCTL_PIC_ON, SLTSTA_ABP, SLTSTA_CC, SLTSTA_EIS, SLTSTA_PDC, SLTSTA_PDS, within } from '../capabilities.ts';
import * as H from '../header.ts';
import { RP_MSIX_PBA, RP_MSIX_PBA_SIZE, RP_MSIX_TABLE_SIZE, RP_PCIE, layOutRootPort } from './root-port-layout.ts';
import type { DeviceSpec } from '../../topology/types.ts';

/** What a root port's place in the topology decides: its Physical Slot Number. */
export interface PortPlacement {
  slot: number;
}

const MSIX_PIECES = [[0, RP_MSIX_TABLE_SIZE], [RP_MSIX_PBA, RP_MSIX_PBA_SIZE]] as const;

/** A root port built outside a topology (for its capability layout only). */
const UNPLACED: PortPlacement = { slot: 0 };

const SLTCTL = RP_PCIE + PCIE.SLTCTL;
const SLTSTA = RP_PCIE + PCIE.SLTSTA;
const LNKSTA = RP_PCIE + PCIE.LNKSTA;
const LNKCAP = RP_PCIE + PCIE.LNKCAP;

/** Events QEMU signals; each has its enable at the same bit of Slot Control. */
const SIGNALLED_EVENTS = SLTSTA_ABP | SLTSTA_PDC | SLTSTA_CC;
/** Event bits a stray write of 1 must not clear: attention button, power fault, MRL sensor, presence detect, command completed. */
const GUARDED_EVENTS = 0x001f;
/** Link Status Negotiated Link Width and Current Link Speed, at the same bits as Link Capabilities' maxima. */
const LNK_WIDTH = 0x03f0;
const LNK_SPEED = 0x000f;

export class RootPort extends Bridge {
  /** Whether an enabled hot-plug event is being signalled now. */
  private signalling = false;

  constructor(
    spec: DeviceSpec,
    root: number,
    uid: number,
    multifunction: boolean,
    readonly port: PortPlacement = UNPLACED,
  ) {
    super(spec, root, uid, multifunction, true, String(port.slot));
    if (!this.templated) ({ caps: this.caps, bars: this.bars } = layOutRootPort(this.cfg, port.slot, multifunction && spec.fn === 0));
    this.seal();
  }

  private reg(off: number): number {
    return this.cfg.read(off, 2);
  }
  private setReg(off: number, value: number): void {
    this.cfg.set(off, 2, value);
  }

  /**
   * QEMU finds a bus by walking from the root (pci_find_bus_nr in
   * hw/pci/pci.c): a secondary bus matches by its number alone where it
   * hangs directly off a bus the walk has reached; the walk goes further
   * down only through a port whose range holds the number and which is not
   * holding its secondary bus in reset. An expander root is reached only
   * the second way.
   */
  override forwards(bus: number, byNumber: boolean): boolean {
    const sec = this.secondaryBus;
    if (sec === 0) return false;
    if (byNumber && sec === bus) return true;
    return (this.reg(H.BRIDGE_CONTROL) & H.BRCTL_SEC_BUS_RESET) === 0 && sec <= bus && bus <= this.subordinateBus;
  }

  /**
   * QEMU sends a device's DMA and messages straight to its root's address
   * space (pci_device_iommu_address_space in hw/pci/pci.c): a port's Bus
   * Master Enable gates only its own requests.
   */
  override get forwardsUpstream(): boolean {
    return true;
  }

  // ---- configuration space -------------------------------------------------------

  override configRead(off: number, size: number): number {
    if (within(off, size, LNKSTA, 2)) this.syncLink();
    return super.configRead(off, size);
  }

  override configWrite(off: number, size: number, value: number): void {
    const v = size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1);
    const ctl = this.reg(SLTCTL);
    const sta = this.reg(SLTSTA);
    const brctl = this.reg(H.BRIDGE_CONTROL);
    super.configWrite(off, size, v);
    if ((~brctl & this.reg(H.BRIDGE_CONTROL) & H.BRCTL_SEC_BUS_RESET) !== 0) this.resetSecondary();
    if (within(off, size, SLTSTA, 2)) this.slotStatusWritten(v, sta);
    if (within(off, size, SLTCTL, 2)) this.slotControlWritten(v, ctl);
    if (!this.msixEnabled()) this.lowerIntx();
  }

  /** Width and speed of the link as the device below reports them, capped by this port's; x1 at 2.5 GT/s where unknown. */
  private syncLink(): void {
    const cap = this.reg(LNKCAP);
    const below = this.secondary.at(0);
    const exp = below?.caps.pcie;
    let sta = cap;
    if (below !== undefined && exp !== undefined) {
      sta = below.cfg.read(exp.off + PCIE.LNKSTA, 2);
      if ((sta & LNK_WIDTH) > (cap & LNK_WIDTH)) sta = (sta & ~LNK_WIDTH) | (cap & LNK_WIDTH);
      if ((sta & LNK_SPEED) > (cap & LNK_SPEED)) sta = (sta & ~LNK_SPEED) | (cap & LNK_SPEED);
    }
    if ((sta & LNK_WIDTH) === 0) sta |= 0x10;
    if ((sta & LNK_SPEED) === 0) sta |= 0x1;
    this.setReg(LNKSTA, (this.reg(LNKSTA) & ~(LNK_WIDTH | LNK_SPEED)) | (sta & (LNK_WIDTH | LNK_SPEED)));
  }

  /** `value` as written (QEMU tests it unshifted, whatever the access's offset); `old` the status before. */
  private slotStatusWritten(value: number, old: number): void {
    if ((value & ~old & GUARDED_EVENTS) !== 0) this.setReg(SLTSTA, (this.reg(SLTSTA) & ~GUARDED_EVENTS) | (old & GUARDED_EVENTS));
    this.signalling = this.eventPending();
  }

  /** A Slot Control write is one command (PCIe Base §6.7.3.2), completed at once. */
  private slotControlWritten(value: number, old: number): void {
    const ctl = this.reg(SLTCTL);
    if ((ctl & SLTCTL_EIC) !== 0) {
      this.setReg(SLTCTL, ctl & ~SLTCTL_EIC);
      this.setReg(SLTSTA, this.reg(SLTSTA) ^ SLTSTA_EIS);
    }
    if (this.ejects(value, old)) for (const f of [...this.secondary.functions()]) this.host.detach(f);
    this.updatePower();
    this.notify();
    this.event(SLTSTA_CC);
  }

  /** Power controller and power indicator turned off (this write turning off at least one) with a device present. */
  private ejects(value: number, old: number): boolean {
    return (this.reg(SLTSTA) & SLTSTA_PDS) !== 0 && slotOff(value) && !slotOff(old);
  }

  /**
   * dev.unplug below a root port is the eject of slot-eject.ts: config
   * writes, with their effects (the command's events, and INTx set to the
   * AER root interrupt, dropping a pending hot-plug INTx).
   */
  override ejectBelow(): void {
    for (const w of ejectWrites(this.reg(SLTCTL), this.reg(SLTSTA))) this.configWrite(RP_PCIE + w.reg, 2, w.value);
  }

  // ---- slot power and events --------------------------------------------------------

  /** The power controller (PCIe Base §6.7.1.8) powers every function below. */
  private updatePower(): void {
    const on = (this.reg(SLTCTL) & SLTCTL_PCC) === 0;
    for (const f of this.secondary.functions()) f.setPower(on);
  }

  private eventPending(): boolean {
    const ctl = this.reg(SLTCTL);
    return (ctl & SLTCTL_HPIE) !== 0 && (this.reg(SLTSTA) & ctl & SIGNALLED_EVENTS) !== 0;
  }

  /**
   * Software notification (PCIe Base §6.7.3.4) when signalling starts or
   * stops: INTx follows it; MSI-X sends vector 0 on either change.
   */
  private notify(): void {
    const was = this.signalling;
    this.signalling = this.eventPending();
    if (was === this.signalling) return;
    if (this.msixEnabled() || this.signalling) this.signal(0);
    else this.lowerIntx();
  }

  private event(bits: number): void {
    const sta = this.reg(SLTSTA);
    if ((sta & bits) === bits) return;
    this.setReg(SLTSTA, sta | bits);
    this.notify();
  }

  /** Presence Detect State and Data Link Layer Link Active show the device below. */
  private showPresence(shown: boolean): void {
    const sta = this.reg(SLTSTA);
    this.setReg(SLTSTA, shown ? sta | SLTSTA_PDS : sta & ~SLTSTA_PDS);
    const lnk = this.reg(LNKSTA);
    this.setReg(LNKSTA, shown ? lnk | LNKSTA_DLLLA : lnk & ~LNKSTA_DLLLA);
  }

  /**
   * A device below was hot-plugged or removed: presence shows, Presence
   * Detect Changed (and Attention Button Pressed, on a plug) is signalled,
   * and a plug gets the slot's current power.
   */
  override slotEvent(present: boolean): void {
    if (present) {
      this.showPresence(true);
      this.event(SLTSTA_PDC | SLTSTA_ABP);
      this.updatePower();
      return;
    }
    this.showPresence(!this.secondary.empty);
    this.setReg(SLTSTA, this.reg(SLTSTA) | SLTSTA_PDC);
    this.notify();
  }

  override slotLocked(): boolean {
    return (this.reg(SLTSTA) & SLTSTA_EIS) !== 0;
  }

  /** The slot at reset: powered if populated (its power indicator as the spec says), off otherwise; attention indicator off; no events. */
  override setPresence(present: boolean): void {
    const indicator = this.spec.resetPowerIndicator === 'off' ? SLTCTL_PIC_OFF : SLTCTL_PIC_ON;
    this.setReg(SLTCTL, SLTCTL_AIC_OFF | (present ? indicator : SLTCTL_PCC | SLTCTL_PIC_OFF));
    this.setReg(SLTSTA, 0);
    this.showPresence(present);
    this.updatePower();
    this.signalling = false;
  }

  // ---- BAR 0: MSI-X table and PBA ------------------------------------------------------

  /** QEMU's MSI-X BAR is a container holding only the table and the PBA: its holes are transparent. */
  override regionPieces(region: number): readonly (readonly [number, number])[] | null {
    return region === 0 ? MSIX_PIECES : null;
  }

  override regionRead(_region: number, off: number, size: number): bigint {
    let v = 0n;
    for (const [o, n] of pieces(off, size)) v |= this.msixDwords(o, n) << BigInt(8 * (o - off));
    return v;
  }

  override regionWrite(_region: number, off: number, size: number, value: bigint): void {
    for (const [o, n] of pieces(off, size)) {
      if (n < 4 || o >= RP_MSIX_TABLE_SIZE) continue; // PBA writes and holes are dropped
      for (let d = 0; d < n; d += 4) {
        storeDword(this.msixTable!, o + d, Number((value >> BigInt(8 * (o + d - off))) & 0xffffffffn));
        this.msixDeliverPending();
      }
    }
  }

  /** One access the memory core lets through: whole dwords of the table or PBA; anything else reads zero. */
  private msixDwords(o: number, n: number): bigint {
    if (n < 4) return 0n;
    const table = o < RP_MSIX_TABLE_SIZE;
    if (!table && (o < RP_MSIX_PBA || o >= RP_MSIX_PBA + RP_MSIX_PBA_SIZE)) return 0n;
    const src = table ? this.msixTable! : this.msixPending!;
    const base = table ? o : o - RP_MSIX_PBA;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(src[base + i]);
    return v;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  protected override snapshotState(): unknown {
    return this.signalling;
  }
  protected override restoreState(s: unknown): void {
    this.signalling = s as boolean;
  }
}

/**
 * How QEMU's memory core cuts an access to a region that takes up to
 * 8 bytes and no unaligned access: pieces no larger than the alignment of
 * their offset (hw/pci/msix.c's table and PBA ops, softmmu/physmem.c).
 */
function* pieces(off: number, size: number): Generator<[number, number]> {
  for (let o = off, left = size; left > 0; ) {
    let n = 8;
    const align = o & -o;
    if (align !== 0 && align < n) n = align;
    while (n > left) n >>= 1;
    yield [o, n];
    o += n;
    left -= n;
  }
}

function storeDword(t: Uint8Array, o: number, v: number): void {
  for (let i = 0; i < 4; i++) t[o + i] = (v >>> (8 * i)) & 0xff;
}
