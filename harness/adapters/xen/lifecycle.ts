/**
 * Hot-plug and device reset on xen-vpci:guest, done as the toolstack and
 * the hardware domain do them:
 *  - unplug (`xl pci-detach`): XEN_DOMCTL_deassign_device, after libxl has
 *    revoked the guest's iomem permissions (vPCI leaves the device; nothing
 *    is unmapped from the guest's p2m), then libxl resets the device;
 *  - plug (`xl pci-attach`): the permissions, then XEN_DOMCTL_assign_device.
 *    Xen gives the first free virtual slot (vpci.c add_virtual_device), so
 *    free slots below the device's own are taken by filler devices first
 *    and given back after, as at setup;
 *  - root reset: the guest reboots (a new domain: its devices leave and
 *    are reset, its RAM, p2m and ioreq servers go), then the toolstack
 *    assigns its present devices again, each at its own slot;
 *  - reset: the hardware domain resets the device as xen-pciback does (a
 *    function-level reset, then PHYSDEVOP_pci_device_reset, which runs
 *    vpci_reset_device: vPCI leaves the device and takes it again, giving it
 *    the first free virtual slot once more).
 * After an assignment and after a reset Xen shows the guest its host BAR
 * addresses (header.c init_header: guest_addr = addr); the session then
 * writes the guest's memory BAR registers to 0, as at setup, so the guest
 * starts where the model's functions start.
 *
 * The bookkeeping here is the toolstack's: which device sits where, and
 * what it refuses before Xen is asked (plugging a present device,
 * unplugging an absent one). Where Xen put a device is read from its
 * replies, never assumed.
 */
import { X, type Cmd, type Placed, type Sbdf } from './agent.ts';
import { sbdfOf } from './platform.ts';

export interface GuestDevice {
  id: string;
  domid: number;
  /** Its slot in the topology: where the guest should see it. */
  slot: number;
  host: Sbdf;
  /** The config offsets of its memory BAR registers. */
  bars: readonly number[];
}

/** The filler device that takes virtual slot `slot` of guest `domid` while a device behind it is placed. */
export const fillerSbdf = (domid: number, slot: number): Sbdf => sbdfOf(0x80 + domid, slot, 0, 0);

/** The guest's BDF of virtual slot `slot` (bus 0, function 0). */
export const guestSbdf = (slot: number): Sbdf => sbdfOf(0, slot, 0, 0);

/** Writes the guest's memory BAR registers of the device at `vsbdf` to 0. */
export const zeroGuestBars = (d: GuestDevice, vsbdf: Sbdf): Cmd<unknown>[] => d.bars.map((reg) => X.cfgWrite(d.domid, vsbdf, reg, 4, 0));

export class GuestBuses {
  private readonly byId = new Map<string, GuestDevice>();
  /** Per guest: the virtual slot each present device sits at. */
  private readonly at = new Map<string, number>();
  private readonly fillers = new Set<Sbdf>();

  /** `present`: the devices assigned at setup, each at its own slot; `fillers`: the filler devices setup created. */
  constructor(devices: readonly GuestDevice[], present: Iterable<string>, fillers: Iterable<Sbdf>) {
    for (const d of devices) this.byId.set(d.id, d);
    for (const id of present) this.at.set(id, this.byId.get(id)!.slot);
    for (const f of fillers) this.fillers.add(f);
  }

  device(id: string): GuestDevice | undefined {
    return this.byId.get(id);
  }

  present(id: string): boolean {
    return this.at.has(id);
  }

  /** Deassign, then the reset libxl does on detach (the device belongs to nobody then: the hardware domain resets it). */
  unplug(d: GuestDevice): Cmd<unknown>[] {
    this.at.delete(d.id);
    return [X.devDeassign(d.domid, d.host), X.devReset(0, d.host)];
  }

  /** The commands that assign `d` at its own slot: fillers into the free slots below it, the device, the fillers out. The device's assignment is at index `assign`. */
  plug(d: GuestDevice): { cmds: Cmd<unknown>[]; assign: number } {
    const taken = new Set(this.slotsOf(d.domid));
    const cmds: Cmd<unknown>[] = [];
    const fill: Sbdf[] = [];
    for (let s = 0; s < d.slot; s++) {
      if (taken.has(s)) continue;
      const f = fillerSbdf(d.domid, s);
      if (!this.fillers.has(f)) {
        cmds.push(X.devAddRaw(0, f, 'bar0=0x1000'));
        this.fillers.add(f);
      }
      cmds.push(X.devAssignGuest(d.domid, f));
      fill.push(f);
    }
    const assign = cmds.length;
    cmds.push(X.devAssignGuest(d.domid, d.host));
    for (const f of fill) cmds.push(X.devDeassign(d.domid, f));
    return { cmds, assign };
  }

  /**
   * After guest `domid` was rebuilt (a root reset: its devices left it): its present devices assigned again in slot
   * order, each at its own slot (fillers below as for a plug). Each device's assignment is at `at` in `cmds`.
   */
  rebuild(domid: number): { cmds: Cmd<unknown>[]; assigns: { d: GuestDevice; at: number }[] } {
    const present = [...this.at.keys()].map((id) => this.byId.get(id)!).filter((d) => d.domid === domid);
    present.sort((a, b) => a.slot - b.slot);
    for (const d of present) this.at.delete(d.id);
    const cmds: Cmd<unknown>[] = [];
    const assigns: { d: GuestDevice; at: number }[] = [];
    for (const d of present) {
      const p = this.plug(d);
      assigns.push({ d, at: cmds.length + p.assign });
      cmds.push(...p.cmds);
      // Taken from here on, so the next device's fillers leave it alone; its reply says where it really went (placed).
      this.at.set(d.id, d.slot);
    }
    return { cmds, assigns };
  }

  /** Where Xen put `d` (after a plug or a reset): a virtual SBDF, or nowhere. */
  placed(d: GuestDevice, p: Placed): void {
    if (p.vsbdf === undefined) this.at.delete(d.id);
    else this.at.set(d.id, parseInt(p.vsbdf.slice(8, 10), 16));
  }

  private slotsOf(domid: number): number[] {
    const out: number[] = [];
    for (const [id, slot] of this.at) if (this.byId.get(id)!.domid === domid) out.push(slot);
    return out;
  }
}
