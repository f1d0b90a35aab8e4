/**
 * One PCI function: its configuration space, BAR decode state and
 * interrupt logic. Personalities (endpoint, edu, pci-testdev, bridges)
 * subclass it and supply register semantics for their regions.
 */
import { ConfigSpace, type ConfigLayout } from './config-space.ts';
import { ADDR_LIMIT, ROM_REGION, barAddress, type BarDef } from './bar.ts';
import {
  ATS_ENABLE,
  MSIX_ENABLE,
  MSIX_MASKALL,
  MSI_ENABLE,
  PASID_ENABLE,
  PCIE,
  PM_STATE_MASK,
  within,
  type Caps,
} from './capabilities.ts';
import {
  registerAt,
  CMD_INTX_DISABLE,
  CMD_MASTER,
  CMD_MEMORY,
  COMMAND,
  INTERRUPT_PIN,
  STATUS,
  STATUS_INTERRUPT,
} from './header.ts';
import type { DeviceSpec } from '../topology/types.ts';
import type { Irq } from '../ops/observation.ts';

/** Where a region decoded before; `byReset`: a reset (of the function or above it) ended it. */
export interface FormerPlacement {
  base: number;
  size: number;
  byReset?: true;
}

/** No BARs: the one empty set every function starts with (a function is built per plug and per fresh sequence). */
export const NO_BARS: ReadonlySet<number> = new Set();

/** A place where a region decodes. seq orders mappings: a later mapping wins an overlap. */
export interface Placement {
  region: number;
  base: number;
  size: number;
  seq: number;
  /** Bytes at the start that nothing maps (a quirk: a hypervisor that maps from an unaligned address it cached); 0 when absent. */
  skip?: number;
  /** A ghost that decodes only while its function decodes memory (the quirk guestKeepsMappings: a stale p2m entry reaches the device). */
  whileDecoding?: true;
}

/** Result of a DMA issued by a device. */
export interface DmaResult {
  ok: boolean;
  data?: Uint8Array;
}

/** What a function may ask of the machine it is plugged into. */
export interface DeviceHost {
  /** An interrupt leaves the function: MSI/MSI-X message or INTx level change. */
  irq(fn: PciFunction, irq: Pick<Irq, 'kind' | 'vector' | 'addr' | 'data' | 'level'>): void;
  /** Bus Master Enable on every bridge between the function and its root (Bridge 1.2 §3.2.5.2). */
  upstreamMaster(fn: PciFunction): boolean;
  /** DMA from the function without PASID, through its IOMMU domain. */
  dma(fn: PciFunction, iova: number, len: number, write: Uint8Array | null): DmaResult;
  now(): number;
  schedule(fn: PciFunction, at: number, run: () => void): void;
  nextSeq(): number;
  decodeChanged(fn: PciFunction): void;
  keepStaleMappings: boolean;
  bar64High(hi: number): number;
  /** The function leaves the machine, as a hot-unplug would (a slot that ejects what it holds). */
  detach(fn: PciFunction): void;
  /** Whether an edu DMA of [addr, addr + count) aborts the target (a known bug's quirk; never in the reference model). */
  eduDmaAborts(addr: bigint, count: bigint): boolean;
  /** The target dies here (a known bug's quirk predicts it). */
  abort(why: string): void;
}

const TOUCHES_DECODE_TYPE0 = (off: number, size: number): boolean =>
  within(off, size, COMMAND, 2) || within(off, size, 0x10, 0x18) || within(off, size, 0x30, 4);

/** A built function's immutable parts, reused for later instances of the same description. */
interface Template {
  layout: ConfigLayout;
  bars: (BarDef | undefined)[];
  caps: Caps;
}

/**
 * Templates per device description and variant: whether it is multi-function
 * (which the header shows) and what else its placement in the topology shows.
 */
const templates = new WeakMap<DeviceSpec, Map<string, Template>>();

export abstract class PciFunction {
  readonly cfg: ConfigSpace;
  /** Built from a template: the subclass skips laying out registers. */
  protected readonly templated: boolean;
  /** Region-indexed BAR definitions (0..5, ROM_REGION). */
  bars: (BarDef | undefined)[] = [];
  caps: Caps = {};
  placements: (Placement | null)[] = [];
  /**
   * Memory BARs whose register moved while memory decode was on, under the
   * option 'ignore' of header.bar-write-while-decoding: they decode where
   * they were until memory decode turns off (a hypervisor maps BARs into a
   * p2m when decode turns on). Null: none.
   */
  private held: Set<number> | null = null;
  /** A decode enable failed under the quirk rule msixHoleClash; `stuckBars`: the memory BARs it marked mapped, which take no writes until one succeeds. */
  stuck = false;
  stuckBars: ReadonlySet<number> = NO_BARS;
  /** The option the model took for msix.address-low-bits: whether table entries keep Message Address bits 1:0. */
  msixKeepsAddressLowBits = false;
  /** Under the quirk rule barCachesWritten: each memory BAR's address as last written (low bits below its size kept), by region. */
  writtenBars: Map<number, bigint> | null = null;
  /** What a guest's view shows of Command while it differs from the device's (a failed decode enable); null: the device's. */
  guestCommand: number | null = null;
  /** Placements a region had before (for the leak oracle), newest last, capped. */
  readonly history = new Map<number, FormerPlacement[]>();
  /** Old placements kept decoding: the stale-bar mutant fills this, and the quirk guestKeepsMappings (those `whileDecoding`). */
  ghosts: Placement[] = [];
  /** Generation: bumped on reset so that pending timers of the old life are dropped. */
  gen = 0;
  /** Device-internal INTx request, and the level last signalled upstream. */
  private intxRequest = false;
  private intxOut = false;
  /** Power from the slot the function sits in: without it the function neither answers nor decodes. */
  private power = true;
  protected msixTable: Uint8Array | null = null;
  protected msixPending: Uint8Array | null = null;
  host!: DeviceHost;
  /** A small number unique in the topology; shows up in register values so misroutes are visible. */
  uid = 0;
  /** MSI's Multiple Message Enable was last written above what the function is capable of: its value is not predicted (configKnown). */
  private mmeUndefined = false;

  private readonly variant: string;

  constructor(
    readonly spec: DeviceSpec,
    readonly root: number,
    express: boolean,
    multifunction: boolean,
    variant = '',
  ) {
    this.variant = `${multifunction}/${variant}`;
    const t = templates.get(spec)?.get(this.variant);
    this.templated = t !== undefined;
    if (t !== undefined) {
      this.cfg = new ConfigSpace(t.layout.size, t.layout);
      this.bars = t.bars;
      this.caps = t.caps;
    } else {
      this.cfg = new ConfigSpace(express ? 0x1000 : 0x100);
    }
  }

  get id(): string {
    return this.spec.id;
  }
  /** Where the function sits now when not at its topology slot (the quirk rule guestFirstFreeSlot), else null. */
  movedTo: number | null = null;
  get devfn(): number {
    return ((this.movedTo ?? this.spec.slot) << 3) | this.spec.fn;
  }
  get isBridge(): boolean {
    return false;
  }

  /**
   * Subclasses call this last in their constructor: captures reset values
   * and keeps them as the template for later instances of this description.
   */
  protected seal(): void {
    if (this.caps.msix !== undefined) {
      this.msixTable = new Uint8Array(this.caps.msix.vectors * 16);
      this.msixPending = new Uint8Array(Math.ceil(this.caps.msix.vectors / 8) + 8);
      this.resetMsix();
    }
    if (this.templated) return;
    this.cfg.seal();
    let m = templates.get(this.spec);
    if (m === undefined) templates.set(this.spec, (m = new Map()));
    m.set(this.variant, { layout: this.cfg.layout(), bars: this.bars, caps: this.caps });
  }

  // ---- configuration space ------------------------------------------------

  /**
   * Of a config read of [off, off + size), the bits whose value the model
   * predicts: all of them, except where a function knows less (an opaque
   * function's unknown registers, a learned function's dynamic bits).
   */
  configKnown(off: number, size: number): bigint {
    const all = (1n << BigInt(8 * size)) - 1n;
    const msi = this.caps.msi;
    // Multiple Message Enable written above Multiple Message Capable: PCI 3.0 §6.8.1.3 leaves what it then holds undefined.
    if (!this.mmeUndefined || msi === undefined || off > msi.off + 2 || off + size <= msi.off + 2) return all;
    return all & ~(0x70n << BigInt(8 * (msi.off + 2 - off)));
  }

  /**
   * Whether a config write reaches a read-only register: a byte with no
   * bit software may write (PCI 3.0 §6.1). Read-only bits beside writable
   * ones are not: a write must reach the writable ones (a BAR's sizing
   * write sets every read-only bit below its size, §6.2.5.1).
   */
  writeReachesReadOnly(off: number, size: number): boolean {
    if (off >= this.cfg.size || !this.power) return false;
    for (let i = 0; i < size && off + i < this.cfg.size; i++) {
      const [start, len] = registerAt(off + i, this.isBridge);
      if (this.cfg.registerReadOnly(off + i, start, len)) return true;
    }
    return false;
  }

  /**
   * Where the memory BAR (either half of a 64-bit one) or the ROM BAR that
   * a config write reaches decodes now, if it does, and for the ROM only
   * when the write leaves it enabled: the writes the choice
   * header.bar-write-while-decoding is about. Null: not such a write.
   */
  decodingBarWritten(off: number, size: number, value: bigint): Placement | null {
    // BAR and ROM registers lie in 0x10..0x3b of either header: most writes are elsewhere.
    if (off >= 0x3c || off + size <= 0x10 || !this.power || (this.command & CMD_MEMORY) === 0) return null;
    for (const b of this.bars) {
      if (b === undefined || b.kind === 'io') continue;
      const len = b.kind === 'mem64' ? 8 : 4;
      if (off >= b.reg + len || off + size <= b.reg) continue;
      const p = this.placements[b.region] ?? null;
      if (p === null) return null;
      if (b.kind !== 'rom') return p;
      // The ROM's enable bit after the write: the written byte's bit 0, else the current one.
      const stays = off === b.reg ? (value & 1n) !== 0n : true;
      return stays ? p : null;
    }
    return null;
  }

  /** The memory BAR (by region) whose register (either half of a 64-bit one) a config write reaches, or null. */
  memoryBarWritten(off: number, size: number): number | null {
    const b = this.bars.find((x) => x !== undefined && x.kind !== 'io' && x.kind !== 'rom' && off < x.reg + (x.kind === 'mem64' ? 8 : 4) && off + size > x.reg);
    return b === undefined ? null : b.region;
  }

  /** Where a memory BAR's registers put it, decoding or not. */
  memoryBarBase(region: number): number {
    const b = this.bars[region]!;
    return (b.kind === 'mem64' ? this.cfg.read(b.reg + 4, 4) * 2 ** 32 : 0) + ((this.cfg.read(b.reg, 4) & 0xfffffff0) >>> 0);
  }

  /** The pages [first, last] of the MSI-X table and of the PBA where the function's BAR registers put them, or null without MSI-X. */
  msixPages(): [number, number][] | null {
    const x = this.caps.msix;
    const b = x === undefined ? undefined : this.bars[x.bar];
    if (x === undefined || b === undefined) return null;
    const base = this.memoryBarBase(x.bar);
    const span = (off: number, len: number): [number, number] => [Math.floor((base + off) / 0x1000), Math.floor((base + off + len - 1) / 0x1000)];
    return [span(x.table, x.vectors * 16), span(x.pba, Math.ceil(x.vectors / 64) * 8)];
  }

  /** A config write whose BARs keep decoding where they are until memory decode turns off (see `held`). */
  configWriteHeld(off: number, size: number, value: number): void {
    for (const b of this.bars) {
      if (b === undefined || b.kind === 'io' || b.kind === 'rom') continue;
      const len = b.kind === 'mem64' ? 8 : 4;
      if (off < b.reg + len && off + size > b.reg) (this.held ??= new Set()).add(b.region);
    }
    this.configWrite(off, size, value);
  }

  /** An unpowered function, or a register beyond its config space, reads all ones. */
  configRead(off: number, size: number): number {
    if (off >= this.cfg.size || !this.power) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return this.cfg.read(off, size);
  }

  configWrite(off: number, size: number, value: number): void {
    if (off >= this.cfg.size || !this.power) return;
    const pm = this.caps.pm;
    const oldState = pm !== undefined ? this.cfg.read(pm.off + 4, 2) & PM_STATE_MASK : 0;
    const oldMsi = this.msiEnabled();
    const oldMsix = this.msixEnabled();
    const oldMsixMasked = this.msixFunctionMasked();
    const oldCmd = this.cfg.read(COMMAND, 2);
    this.cfg.write(off, size, value);
    let decode = this.touchesDecode(off, size);
    if (pm !== undefined && within(off, size, pm.off + 4, 2)) {
      // Writes of an unsupported state (D1, D2) are ignored (PCI PM 1.2 §3.2.4).
      const s = this.cfg.read(pm.off + 4, 2) & PM_STATE_MASK;
      if (s === 1 || s === 2) this.cfg.set(pm.off + 4, 1, (this.cfg.read(pm.off + 4, 1) & ~PM_STATE_MASK) | oldState);
      decode = true;
    }
    if (within(off, size, COMMAND, 2) && ((oldCmd ^ this.cfg.read(COMMAND, 2)) & CMD_INTX_DISABLE) !== 0) this.updateIntx();
    const msi = this.caps.msi;
    if (msi !== undefined) {
      // Multiple Message Enable above what was requested is clamped to it, as QEMU does
      // (PCI 3.0 §6.8.1.3 leaves it undefined).
      const ctl = this.cfg.read(msi.off + 2, 2);
      if (within(off, size, msi.off + 2, 1)) this.mmeUndefined = ((ctl >> 4) & 7) > msi.mmc;
      if (((ctl >> 4) & 7) > msi.mmc) this.cfg.set(msi.off + 2, 2, (ctl & ~0x70) | (msi.mmc << 4));
      if (!oldMsi && this.msiEnabled()) this.dropIntxForMessages();
      if (msi.pvm && within(off, size, msi.mask, 4)) this.msiDeliverUnmasked();
    }
    if (this.caps.msix !== undefined) {
      if (!oldMsix && this.msixEnabled()) this.dropIntxForMessages();
      if ((oldMsixMasked && !this.msixFunctionMasked()) || (!oldMsix && this.msixEnabled())) this.msixDeliverPending();
    }
    const pcie = this.caps.pcie;
    if (pcie !== undefined && pcie.flr) {
      // Initiate Function Level Reset (DEVCTL bit 15) is write-only and reads 0 (PCIe Base §7.5.3.4).
      const hi = pcie.off + PCIE.DEVCTL + 1;
      if (off <= hi && hi < off + size && (((value >>> (8 * (hi - off))) & 0x80) !== 0)) {
        this.reset();
        return;
      }
    }
    this.onConfigWrite(off, size);
    if (decode) this.decodeWritten(off, size);
  }

  protected touchesDecode(off: number, size: number): boolean {
    return TOUCHES_DECODE_TYPE0(off, size);
  }

  /** A config write that touchesDecode named has landed: decode follows it. */
  protected decodeWritten(_off: number, _size: number): void {
    this.recomputeDecode();
  }

  /** Personality hook for config writes with side effects. */
  protected onConfigWrite(_off: number, _size: number): void {}

  get command(): number {
    return this.cfg.read(COMMAND, 2);
  }
  get busMaster(): boolean {
    return this.power && (this.command & CMD_MASTER) !== 0;
  }

  /**
   * The slot turns the function's power on or off. Losing power resets it
   * and stops its decode; regaining it does neither (QEMU's pci_set_power
   * in hw/pci/pci.c).
   */
  setPower(on: boolean): void {
    if (on === this.power) return;
    this.power = on;
    if (on) this.recomputeDecode();
    else this.reset();
  }
  /** D0 is the only state in which memory and IO decode (PCI PM 1.2 §5.4). */
  get inD0(): boolean {
    return this.caps.pm === undefined || (this.cfg.read(this.caps.pm.off + 4, 1) & PM_STATE_MASK) === 0;
  }
  get pasidEnabled(): boolean {
    const p = this.caps.pasid;
    return p !== undefined && (this.cfg.read(p.off + 6, 2) & PASID_ENABLE) !== 0;
  }
  get atsEnabled(): boolean {
    const a = this.caps.ats;
    return a !== undefined && (this.cfg.read(a.off + 6, 2) & ATS_ENABLE) !== 0;
  }

  // ---- decode ---------------------------------------------------------------

  /** Regions this function decodes now, computed from config space. */
  protected computePlacements(): (Placement | null)[] {
    const out: (Placement | null)[] = [];
    const d0 = this.inD0;
    if (this.held !== null && (this.command & CMD_MEMORY) === 0) this.held = null;
    for (const b of this.bars) {
      if (b === undefined) continue;
      if (this.held !== null && this.held.has(b.region)) {
        out[b.region] = this.placements[b.region] ?? null;
        continue;
      }
      const base = d0 ? barAddress(this.cfg, b, (hi) => this.host.bar64High(hi)) : null;
      out[b.region] = base === null ? null : { region: b.region, base, size: b.size, seq: 0 };
    }
    // Under the quirk barCachesWritten only: what a hypervisor mapped from the address it cached, its pages from there on.
    if (this.writtenBars !== null) for (const [region, w] of this.writtenBars) {
      const p = out[region];
      const skip = p === null || p === undefined ? 0 : Math.min(p.size, Math.max(0, Number(w & ~0xfffn) - p.base));
      if (skip > 0) out[region] = { ...p!, skip };
    }
    return out;
  }

  /**
   * Recomputes where the regions decode. A region that moved or turned on
   * gets a new sequence number (it is mapped last, so it wins overlaps).
   * `byReset`: a reset is why placements stop.
   */
  recomputeDecode(byReset = false): void {
    const next = this.power ? this.computePlacements() : [];
    let changed = false;
    const n = Math.max(next.length, this.placements.length);
    for (let r = 0; r < n; r++) {
      const old = this.placements[r] ?? null;
      const now = next[r] ?? null;
      if (old !== null && now !== null && old.base === now.base && old.size === now.size && old.skip === now.skip) {
        next[r] = old;
        continue;
      }
      if (old === null && now === null) continue;
      changed = true;
      if (old !== null) this.retire(old, byReset);
      if (now !== null) now.seq = this.host.nextSeq();
    }
    this.placements = next;
    if (changed) this.host.decodeChanged(this);
  }

  /** Records a placement that stopped decoding. */
  protected retire(p: Placement, byReset = false): void {
    let h = this.history.get(p.region);
    if (h === undefined) this.history.set(p.region, (h = []));
    const same = h.find((x) => x.base === p.base && x.size === p.size);
    if (same === undefined) {
      h.push(byReset ? { base: p.base, size: p.size, byReset: true } : { base: p.base, size: p.size });
      if (h.length > 32) h.shift();
    } else if (byReset) same.byReset = true;
    if (this.host.keepStaleMappings) this.ghosts.push(p);
  }

  /** Did `region` ever decode `addr` before its current placement? */
  decodedBefore(region: number, addr: number): boolean {
    const h = this.history.get(region);
    return h !== undefined && h.some((x) => addr >= x.base && addr < x.base + x.size);
  }

  /** Under guestKeepsMappings: the memory BARs' current places become ghosts that decode while the function decodes memory. */
  keepMappings(): void {
    for (const p of this.placements) if (p !== null && p !== undefined && this.bars[p.region]?.kind !== 'io' && p.region !== ROM_REGION) this.ghosts.push({ ...p, whileDecoding: true });
  }

  get decodesMemory(): boolean {
    return this.power && (this.command & CMD_MEMORY) !== 0;
  }

  /** Stops all decode (unplug): every placement is retired. */
  retireAll(): void {
    for (const p of this.placements) if (p !== null && p !== undefined) this.retire(p);
    this.placements = [];
    this.host.decodeChanged(this);
  }

  // ---- regions --------------------------------------------------------------

  /**
   * The parts of a region that claim accesses, as [offset, size] pairs;
   * null: all of it. Where a region claims nothing, accesses fall through
   * to whatever lies beneath (a QEMU container region with holes).
   */
  regionPieces(_region: number): readonly (readonly [number, number])[] | null {
    return null;
  }

  /** A memory or IO access to one of the function's regions; bigint values carry 1..8 bytes. */
  regionRead(region: number, off: number, size: number): bigint {
    const x = this.caps.msix;
    if (x !== undefined && region === x.bar && off >= x.table && off < x.pba + 0x800) return this.msixRead(off, size);
    return this.read(region, off, size);
  }

  /** What a region read would return, without what the read itself does (iommu-testdev's trigger runs a transfer): for weighing where an access goes. */
  peekRead(region: number, off: number, size: number): bigint {
    return this.regionRead(region, off, size);
  }

  /** Whether a region write sets Message Address bits 1:0 of an MSI-X table entry (choice msix.address-low-bits). */
  msixAddressLowBitsWritten(region: number, off: number, size: number, value: bigint): boolean {
    const x = this.caps.msix;
    if (x === undefined || region !== x.bar || off < x.table || off >= x.pba) return false;
    for (let i = 0; i < size; i++) if (((off - x.table + i) & 15) === 0 && ((value >> BigInt(8 * i)) & 3n) !== 0n) return true;
    return false;
  }

  regionWrite(region: number, off: number, size: number, value: bigint): void {
    const x = this.caps.msix;
    if (x !== undefined && region === x.bar && off >= x.table && off < x.pba + 0x800) {
      this.msixWrite(off, size, value);
      return;
    }
    this.write(region, off, size, value);
  }

  protected abstract read(region: number, off: number, size: number): bigint;

  /** A region's size as the device itself declares it (vfio-user DEVICE_GET_REGION_INFO), where it does; null: as its BAR sizes it. */
  declaredRegionSize(_region: number): number | null {
    return null;
  }

  /** An access to the MSI-X table or PBA that is not an aligned dword or qword: its result is undefined (PCI 3.0 §6.8.2). */
  msixUndefinedAccess(region: number, off: number, size: number): boolean {
    const x = this.caps.msix;
    return x !== undefined && region === x.bar && off >= x.table && off < x.pba + 0x800 && ((size !== 4 && size !== 8) || off % size !== 0);
  }

  /** Whether a region read has a value the model does not know (a driver's registers, a learned device's BAR). */
  unknownRegionRead(_region: number, _off: number, _size: number): boolean {
    return false;
  }

  /** The address the device puts on the bus for a DMA to `iova` (edu masks it to 28 bits). */
  dmaAddress(iova: number): number {
    return iova;
  }
  /** Where DMA data passes through the device (edu's buffer); nothing for a plain endpoint. */
  dmaBuffer(_data: Uint8Array): void {}
  protected abstract write(region: number, off: number, size: number, value: bigint): void;

  // ---- interrupts -----------------------------------------------------------

  msiEnabled(): boolean {
    const m = this.caps.msi;
    return m !== undefined && (this.cfg.read(m.off + 2, 2) & MSI_ENABLE) !== 0;
  }
  msixEnabled(): boolean {
    const m = this.caps.msix;
    return m !== undefined && (this.cfg.read(m.off + 2, 2) & MSIX_ENABLE) !== 0;
  }
  private msixFunctionMasked(): boolean {
    const m = this.caps.msix;
    return m !== undefined && (this.cfg.read(m.off + 2, 2) & MSIX_MASKALL) !== 0;
  }

  /**
   * The function requests interrupt `vector`: MSI-X if enabled, else MSI if
   * enabled, else INTx (PCI 3.0 §6.8: while MSI or MSI-X is enabled the
   * function must not use INTx).
   */
  signal(vector: number): void {
    if (this.msixEnabled()) this.msixSignal(vector);
    else if (this.msiEnabled()) this.msiSignal(vector);
    else {
      this.intxRequest = true;
      this.updateIntx();
    }
  }

  /** The device withdraws its INTx request. */
  lowerIntx(): void {
    this.intxRequest = false;
    this.updateIntx();
  }

  get intxRequested(): boolean {
    return this.intxRequest;
  }

  /** Whether the pin is asserted now (the request, unless Interrupt Disable or no pin). */
  get intxAsserted(): boolean {
    return this.intxOut;
  }

  /**
   * Whether the function may send this interrupt now, on its own: MSI-X
   * or MSI enabled with the vector unmasked (PCI 3.0 §6.8.1, §6.8.2) and
   * Bus Master set, or INTx while neither is enabled, Interrupt Disable is
   * clear and the function has a pin (§6.2.2, §6.8).
   */
  maySignal(kind: 'intx' | 'msi' | 'msix', vector: number): boolean {
    if (kind === 'intx') return !this.msiEnabled() && !this.msixEnabled() && (this.command & CMD_INTX_DISABLE) === 0 && this.cfg.read(INTERRUPT_PIN, 1) !== 0;
    if (!this.canSendMessage()) return false;
    if (kind === 'msix') {
      const x = this.caps.msix;
      return x !== undefined && this.msixEnabled() && !this.msixFunctionMasked() && vector < x.vectors && (this.msixTable![vector * 16 + 12] & 1) === 0;
    }
    const m = this.caps.msi;
    if (m === undefined || !this.msiEnabled() || this.msixEnabled()) return false;
    const mme = (this.cfg.read(m.off + 2, 2) >> 4) & 7;
    return vector < 1 << mme && !(m.pvm && ((this.cfg.read(m.mask, 4) >>> vector) & 1) !== 0);
  }

  /** Whether any MSI or MSI-X vector is pending (masked when it fired). */
  get messagesPending(): boolean {
    const m = this.caps.msi;
    if (m !== undefined && m.pvm && this.cfg.read(m.pending, 4) !== 0) return true;
    return this.msixPending !== null && this.msixPending.some((b) => b !== 0);
  }

  /** Interrupt Status follows the request; the pin follows it unless Interrupt Disable (PCI 3.0 §6.2.2, §6.2.3). */
  private updateIntx(): void {
    const st = this.cfg.read(STATUS, 2);
    this.cfg.set(STATUS, 2, this.intxRequest ? st | STATUS_INTERRUPT : st & ~STATUS_INTERRUPT);
    const out = this.intxRequest && (this.command & CMD_INTX_DISABLE) === 0 && this.cfg.read(INTERRUPT_PIN, 1) !== 0;
    if (out !== this.intxOut) {
      this.intxOut = out;
      this.host.irq(this, { kind: 'intx', level: out ? 1 : 0 });
    }
  }

  private dropIntxForMessages(): void {
    if (this.intxRequest) this.lowerIntx();
  }

  /** A message is a memory write: it needs Bus Master Enable here and above (PCI 3.0 §6.8.1). */
  private canSendMessage(): boolean {
    return this.busMaster && this.host.upstreamMaster(this);
  }

  /** MSI: the function sets the low MME bits of the data to the vector (PCI 3.0 §6.8.1.6). */
  private msiSignal(vector: number): void {
    const m = this.caps.msi!;
    const mme = (this.cfg.read(m.off + 2, 2) >> 4) & 7;
    const v = vector & ((1 << mme) - 1);
    if (m.pvm && ((this.cfg.read(m.mask, 4) >>> v) & 1) !== 0) {
      this.cfg.set(m.pending, 4, (this.cfg.read(m.pending, 4) | (1 << v)) >>> 0);
      return;
    }
    this.msiSend(v);
  }

  private msiSend(v: number): void {
    if (!this.canSendMessage()) return;
    const m = this.caps.msi!;
    const mme = (this.cfg.read(m.off + 2, 2) >> 4) & 7;
    const lo = this.cfg.read(m.off + 4, 4);
    const addr = m.is64 ? this.cfg.read(m.off + 8, 4) * 2 ** 32 + lo : lo;
    const mask = (1 << mme) - 1;
    const data = (this.cfg.read(m.data, 2) & ~mask) | v;
    this.host.irq(this, { kind: 'msi', vector: v, addr, data });
  }

  /** Pending vectors whose mask bit was cleared are sent (PCI 3.0 §6.8.1.7). */
  private msiDeliverUnmasked(): void {
    const m = this.caps.msi!;
    if (!this.msiEnabled()) return;
    const pending = this.cfg.read(m.pending, 4);
    const mask = this.cfg.read(m.mask, 4);
    for (let v = 0; v < 32; v++) {
      if (((pending >>> v) & 1) !== 0 && ((mask >>> v) & 1) === 0) {
        this.cfg.set(m.pending, 4, (this.cfg.read(m.pending, 4) & ~(1 << v)) >>> 0);
        this.msiSend(v);
      }
    }
  }

  private resetMsix(): void {
    const t = this.msixTable!;
    t.fill(0);
    // Vector Control resets to masked (PCI 3.0 §6.8.2.9).
    for (let i = 0; i < t.length; i += 16) t[i + 12] = 1;
    this.msixPending!.fill(0);
  }

  private msixSignal(vector: number): void {
    const x = this.caps.msix!;
    const v = vector % x.vectors;
    const t = this.msixTable!;
    if (this.msixFunctionMasked() || (t[v * 16 + 12] & 1) !== 0) {
      this.msixPending![v >> 3] |= 1 << (v & 7);
      return;
    }
    this.msixSend(v);
  }

  private msixSend(v: number): void {
    if (!this.canSendMessage()) return;
    const t = this.msixTable!;
    const o = v * 16;
    const lo = (t[o] | (t[o + 1] << 8) | (t[o + 2] << 16) | (t[o + 3] << 24)) >>> 0;
    const hi = (t[o + 4] | (t[o + 5] << 8) | (t[o + 6] << 16) | (t[o + 7] << 24)) >>> 0;
    const data = (t[o + 8] | (t[o + 9] << 8) | (t[o + 10] << 16) | (t[o + 11] << 24)) >>> 0;
    this.host.irq(this, { kind: 'msix', vector: v, addr: hi * 2 ** 32 + lo, data });
  }

  /** Sends pending vectors that are no longer masked (PCI 3.0 §6.8.2.9). */
  protected msixDeliverPending(): void {
    if (!this.msixEnabled() || this.msixFunctionMasked()) return;
    const x = this.caps.msix!;
    const t = this.msixTable!;
    const p = this.msixPending!;
    for (let v = 0; v < x.vectors; v++) {
      if ((p[v >> 3] & (1 << (v & 7))) !== 0 && (t[v * 16 + 12] & 1) === 0) {
        p[v >> 3] &= ~(1 << (v & 7));
        this.msixSend(v);
      }
    }
  }

  /** Table and PBA accept aligned DWORD and QWORD accesses only (PCI 3.0 §6.8.2). */
  private msixRead(off: number, size: number): bigint {
    const x = this.caps.msix!;
    if ((size !== 4 && size !== 8) || off % size !== 0) return 0n;
    const src = off < x.pba ? this.msixTable! : this.msixPending!;
    const base = off < x.pba ? off - x.table : off - x.pba;
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(base + i < src.length ? src[base + i] : 0);
    return v;
  }

  private msixWrite(off: number, size: number, value: bigint): void {
    const x = this.caps.msix!;
    if ((size !== 4 && size !== 8) || off % size !== 0 || off >= x.pba) return; // PBA is read-only
    const t = this.msixTable!;
    const base = off - x.table;
    for (let i = 0; i < size; i++) {
      const o = base + i;
      if (o >= t.length) return;
      const b = Number((value >> BigInt(8 * i)) & 0xffn);
      const field = o & 15;
      // Address bits 1:0 (a choice, msix.address-low-bits); Vector Control keeps only the mask bit.
      if (field === 0) t[o] = this.msixKeepsAddressLowBits ? b : b & 0xfc;
      else if (field === 12) t[o] = b & 1;
      else if (field > 12) t[o] = 0;
      else t[o] = b;
    }
    this.msixDeliverPending();
  }

  // ---- lifecycle ------------------------------------------------------------

  /**
   * Function-level reset (PCIe Base §6.6.2): registers to their reset
   * values, decode off, MSI/MSI-X off, INTx withdrawn, device state cleared.
   */
  reset(): void {
    this.gen++;
    this.stuck = false;
    this.stuckBars = NO_BARS;
    this.guestCommand = null;
    this.writtenBars = null;
    this.mmeUndefined = false;
    this.cfg.reset();
    if (this.msixTable !== null) this.resetMsix();
    this.intxRequest = false;
    this.updateIntx();
    this.resetState();
    this.recomputeDecode(true);
  }

  protected resetState(): void {}

  // ---- snapshot -------------------------------------------------------------

  snapshot(): FunctionSnapshot {
    return {
      cfg: this.cfg.snapshot(),
      placements: this.placements.map((p) => (p === null || p === undefined ? null : { ...p })),
      history: [...this.history].map(([r, h]) => [r, h.map((x) => ({ ...x }))]),
      ghosts: this.ghosts.map((g) => ({ ...g })),
      gen: this.gen,
      intx: [this.intxRequest, this.intxOut],
      power: this.power,
      msix: this.msixTable === null ? null : [this.msixTable.slice(), this.msixPending!.slice()],
      state: this.snapshotState(),
      ...(this.mmeUndefined ? { mmeUndefined: true } : {}),
      ...(this.held !== null ? { held: [...this.held] } : {}),
      ...(this.stuck ? { stuck: [...this.stuckBars] } : {}),
      ...(this.guestCommand !== null ? { guestCommand: this.guestCommand } : {}),
    };
  }

  restore(s: FunctionSnapshot): void {
    this.cfg.restore(s.cfg);
    this.placements = s.placements.map((p) => (p === null ? null : { ...p }));
    this.history.clear();
    for (const [r, h] of s.history) this.history.set(r, h.map((x) => ({ ...x })));
    this.ghosts = s.ghosts.map((g) => ({ ...g }));
    this.gen = s.gen;
    [this.intxRequest, this.intxOut] = s.intx;
    this.power = s.power;
    this.mmeUndefined = s.mmeUndefined === true;
    this.held = s.held === undefined ? null : new Set(s.held);
    this.stuck = s.stuck !== undefined;
    this.stuckBars = new Set(s.stuck ?? []);
    this.guestCommand = s.guestCommand ?? null;
    if (s.msix !== null) {
      this.msixTable!.set(s.msix[0]);
      this.msixPending!.set(s.msix[1]);
    }
    this.restoreState(s.state);
  }

  protected snapshotState(): unknown {
    return null;
  }
  protected restoreState(_s: unknown): void {}
}

export interface FunctionSnapshot {
  cfg: Uint8Array;
  placements: (Placement | null)[];
  history: [number, FormerPlacement[]][];
  ghosts: Placement[];
  gen: number;
  intx: [boolean, boolean];
  power: boolean;
  msix: [Uint8Array, Uint8Array] | null;
  state: unknown;
  mmeUndefined?: boolean;
  held?: number[];
  stuck?: number[];
  guestCommand?: number;
}

export { ROM_REGION, ADDR_LIMIT };
