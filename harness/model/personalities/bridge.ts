/**
 * PCI-to-PCI bridges and PCIe root ports (type 1 header). Windows decode
 * downstream (PCI-to-PCI Bridge 1.2 §4.1–§4.3): IO in 4 KiB units, memory
 * and prefetchable memory in 1 MiB units, each only while the bridge's
 * command register enables that space. Regions 7, 8, 9 are the IO,
 * memory and prefetchable windows; a bridge's own BARs keep regions 0..1.
 */
import { PciFunction, type Placement } from '../function.ts';
import { installCaps, within } from '../capabilities.ts';
import { initType1 } from '../header-init.ts';
import * as H from '../header.ts';
import { Bus } from '../bus.ts';
import type { DeviceSpec } from '../../topology/types.ts';

export const IO_WINDOW = 7;
export const MEM_WINDOW = 8;
export const PREF_WINDOW = 9;
const TWO32 = 2 ** 32;

export interface BridgeRules {
  /** Maps the decoded memory-window limit (the identity, except in a mutant). */
  memLimit(limit: number): number;
  /** A reset leaves the windows decoding until they are written again (a quirk: QEMU 7.2's bridges). */
  keepWindowsOnReset: boolean;
}

/** What every bridge shares: the secondary bus, the windows and the hot reset of what is below. */
/** The bridge's rules as the specification writes them (a model variant replaces them). */
const SPEC_BRIDGE_RULES: BridgeRules = { memLimit: (l) => l, keepWindowsOnReset: false };

/** A window from its base and limit registers: a limit below the base opens nothing (Bridge 1.2 §3.2.5.6, .8). */
const windowAt = (region: number, base: number, limit: number): Placement | null => (limit >= base ? { region, base, size: limit - base + 1, seq: 0 } : null);

export abstract class Bridge extends PciFunction {
  readonly secondary: Bus;
  rules: BridgeRules = SPEC_BRIDGE_RULES;
  /** Windows held over a reset (keepWindowsOnReset) until a write maps them again. */
  private heldWindows: (Placement | null)[] | null = null;

  /** Subclasses lay out their registers (unless templated) and seal. */
  constructor(spec: DeviceSpec, root: number, uid: number, multifunction: boolean, express: boolean, variant?: string) {
    super(spec, root, express, multifunction, variant);
    this.uid = uid;
    this.secondary = new Bus(this, root, express);
  }

  override get isBridge(): boolean {
    return true;
  }
  get secondaryBus(): number {
    return this.cfg.read(H.SECONDARY_BUS, 1);
  }
  get subordinateBus(): number {
    return this.cfg.read(H.SUBORDINATE_BUS, 1);
  }

  /**
   * Whether a configuration request for `bus` arriving on the primary bus
   * goes through: secondary ≤ bus ≤ subordinate (Bridge 1.2 §3.1.2.1).
   * `byNumber`: the primary bus is one where a secondary bus may also be
   * found by its number alone (see RootPort).
   */
  forwards(bus: number, _byNumber: boolean): boolean {
    const sec = this.secondaryBus;
    return sec !== 0 && sec <= bus && bus <= this.subordinateBus;
  }

  /**
   * A write to the command, window or bridge control registers maps the
   * windows again, changed or not, as QEMU's bridges do
   * (hw/pci/pci_bridge.c): they become the latest mappings.
   */
  private remapsWindows(off: number, size: number): boolean {
    return within(off, size, H.COMMAND, 2) || within(off, size, H.IO_BASE, 2) || within(off, size, H.MEM_BASE, 0x14) || within(off, size, H.BRIDGE_CONTROL, 2);
  }

  protected override touchesDecode(off: number, size: number): boolean {
    return this.remapsWindows(off, size) || within(off, size, H.BAR0, 8);
  }

  protected override decodeWritten(off: number, size: number): void {
    if (this.remapsWindows(off, size)) this.heldWindows = null;
    super.decodeWritten(off, size);
    if (!this.remapsWindows(off, size)) return;
    // QEMU maps the prefetchable window first, then memory, then IO: the later wins an overlap.
    for (const w of [PREF_WINDOW, MEM_WINDOW, IO_WINDOW]) {
      const p = this.placements[w];
      if (p !== null && p !== undefined) p.seq = this.host.nextSeq();
    }
    this.host.decodeChanged(this);
  }

  /** BARs, then the windows as placements; a window whose limit is below its base is closed. */
  protected override computePlacements(): (Placement | null)[] {
    const out = super.computePlacements();
    const cmd = this.command;
    const c = this.cfg;
    if (this.heldWindows !== null) {
      for (const w of [IO_WINDOW, MEM_WINDOW, PREF_WINDOW]) out[w] = this.heldWindows[w] ?? null;
      return out;
    }
    if (!this.inD0) return out;
    if ((cmd & H.CMD_IO) !== 0) {
      // Bridge 1.2 §3.2.5.6: bits 15:12 in the base/limit, 31:16 in the upper registers.
      const base = ((c.read(H.IO_BASE, 1) & 0xf0) << 8) + c.read(H.IO_BASE_UPPER, 2) * 0x10000;
      const limit = (((c.read(H.IO_LIMIT, 1) & 0xf0) << 8) | 0xfff) + c.read(H.IO_LIMIT_UPPER, 2) * 0x10000;
      out[IO_WINDOW] = windowAt(IO_WINDOW, base, limit);
    }
    if ((cmd & H.CMD_MEMORY) !== 0) {
      // Bridge 1.2 §3.2.5.8: bits 31:20; the limit's low 20 bits are all ones.
      const base = (c.read(H.MEM_BASE, 2) & 0xfff0) * 0x10000;
      const limit = this.rules.memLimit((c.read(H.MEM_LIMIT, 2) & 0xfff0) * 0x10000 + 0xfffff);
      out[MEM_WINDOW] = windowAt(MEM_WINDOW, base, limit);
      // Bridge 1.2 §3.2.5.9–.10: 64-bit prefetchable window.
      const pbase = (c.read(H.PREF_BASE, 2) & 0xfff0) * 0x10000 + c.read(H.PREF_BASE_UPPER, 4) * TWO32;
      const plimit = (c.read(H.PREF_LIMIT, 2) & 0xfff0) * 0x10000 + 0xfffff + c.read(H.PREF_LIMIT_UPPER, 4) * TWO32;
      out[PREF_WINDOW] = windowAt(PREF_WINDOW, pbase, plimit);
    }
    return out;
  }

  /** Whether DMA and messages from below go through: Bus Master Enable (Bridge 1.2 §3.2.5.2). */
  get forwardsUpstream(): boolean {
    return this.busMaster;
  }

  /** Resets every function below (a hot reset, Bridge 1.2 §3.2.5.18). */
  protected resetSecondary(): void {
    for (const f of this.secondary.functions()) f.reset();
  }

  protected read(): bigint {
    return 0n;
  }
  protected write(): void {}

  /** A device below was hot-plugged (true) or removed (false). A conventional bridge has no slot to show it. */
  slotEvent(_present: boolean): void {}

  /** Removes what is below the way the slot's hot-plug controller does; a conventional bridge has none (the removal is a surprise). */
  ejectBelow(): void {}

  /** Whether the slot's electromechanical interlock holds it (PCIe Base §6.7.1.4): nothing can be plugged in. */
  slotLocked(): boolean {
    return false;
  }

  /** The slot registers at reset, for what is plugged below now. A conventional bridge has none. */
  setPresence(_present: boolean): void {}

  override reset(): void {
    // QEMU's bridges reset their registers without mapping the windows again (hw/pci/pci_bridge.c).
    if (this.rules.keepWindowsOnReset) this.heldWindows = [IO_WINDOW, MEM_WINDOW, PREF_WINDOW].reduce<(Placement | null)[]>((a, w) => ((a[w] = this.placements[w] ?? null), a), []);
    super.reset();
    this.setPresence(!this.secondary.empty);
    this.resetSecondary();
  }
}

/** The generic PCI-to-PCI bridge (1b36:0001) with one MSI vector. */
export class PciBridge extends Bridge {
  constructor(spec: DeviceSpec, root: number, uid: number, multifunction: boolean) {
    super(spec, root, uid, multifunction, false);
    if (!this.templated) {
      initType1(this.cfg, { vendor: 0x1b36, device: 0x0001, classCode: 0x060400, revision: 0, pin: 1, multifunction });
      this.caps = installCaps(this.cfg, { msi: { vectors: 1, is64: true, pvm: false } });
    }
    this.seal();
  }

  protected override onConfigWrite(off: number, size: number): void {
    // Secondary Bus Reset resets everything below while set (Bridge 1.2 §3.2.5.18).
    if (within(off, size, H.BRIDGE_CONTROL, 1) && (this.cfg.read(H.BRIDGE_CONTROL, 1) & H.BRCTL_SEC_BUS_RESET) !== 0) this.resetSecondary();
  }
}
