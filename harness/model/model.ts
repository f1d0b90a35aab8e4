/**
 * The reference model: executable semantics of PCI across several roots.
 * apply(op) performs one operation and returns the observation a
 * conforming target must produce. Deterministic: the same topology and
 * operations always give the same observations.
 */
import { VfioHost } from './vfio/host.ts';
import { AddressSpace } from './address-space.ts';
import { Bus } from './bus.ts';
import { EmulatorTable, type EmulatorDecide } from './emulators.ts';
import type { Decoder } from './flat-view.ts';
import { NO_BARS, type DeviceHost, type DmaResult, type PciFunction } from './function.ts';
import { CMD_MEMORY, COMMAND, INTERRUPT_PIN } from './header.ts';
import { IommuDomain, type Chunk } from './iommu.ts';
import { PasidContext, stageOffered, type PasidBinding, type Stage } from './pasid-context.ts';
import { StaleTranslations } from './stale-translations.ts';
import { Bridge } from './personalities/bridge.ts';
import { createFunction } from './personalities/index.ts';
import { Learned } from './personalities/learned.ts';
import { IommuTestdev, ITD, isItdPattern, overreachingLength, type ItdHost, type PagedOutcome } from './personalities/iommu-testdev.ts';
import { Ram } from './ram.ts';
import { REFERENCE_RULES, type Rules } from './rules.ts';
import { claimedRoot, rootForBus, routeConfig } from './config-route.ts';
import { slotsOf, type DeviceSlot } from './slots.ts';
import { translateDma } from './dma.ts';
import { assertedLines, lineChanges, routesLines, type IntxArrival } from './intx-lines.ts';
import { isDriven } from './dma-engine.ts';
import { regionAccess, type RegionHost } from './region-access.ts';
import { mayRemovePins, writeValue, type Op, type OpOf } from '../ops/catalog.ts';
import { unhandled } from '../ops/exhaustive.ts';
import { CONFIG_ADDRESS_PORT, configAddress, configDataPort, configMechanisms, ecamAddress } from '../bus/config-access.ts';
import { spaceOfBar, type BarToken, type BusSpace } from '../bus/bar.ts';
import { ADDR_LIMIT } from './bar.ts';
import type { ChoiceId } from '../spec/choices.ts';
import type { RuleId } from '../spec/rules.ts';
import { DEFAULT_CHOOSER, type ChoiceMade, type Chooser, type Option } from './choose.ts';
import { OP_RULES, configRule, regionRule } from './register-rules.ts';
import { allOnes, regionName, type Delivery, type Irq, type Observation, type Reason, type Status } from '../ops/observation.ts';
import { bdf as mkBdf, busOf, devfnOf, ecamDecode } from '../topology/bdf.ts';
import { GUEST_COMMAND_RSVDP, GUEST_INTX_DISABLE, guestByte } from './guest-view.ts';
import { DEFAULT_ECAM, DEFAULT_RAM, ECAM_BUSES, ownerOf, resetReach, type Topology } from '../topology/types.ts';

interface Timer {
  at: number;
  seq: number;
  fn: PciFunction;
  run: () => void;
}


/** The x86 interrupt address range: a write there is an interrupt request, not DMA (Intel SDM Vol. 3A, "Message Address Register Format": bits 31:20 are 0xFEE). */
const INTERRUPT_RANGE = { base: 0xfee00000, size: 0x100000 };

const ok = (extra: Partial<Observation> = {}): Observation => ({ status: 'ok', ...extra });
const err = (reason: Reason): Observation => ({ status: 'error', reason });
/** Either way a BAR write while decoding completes: the write's own observation cannot tell the options apart. */
const SAME_OK: Observation = { status: 'ok' };
const BAR_WRITE_WHILE_DECODING: readonly Option[] = [
  { option: 'take', obs: SAME_OK },
  { option: 'ignore', obs: SAME_OK },
];
const EMULATOR_OVERLAP: readonly Option[] = [
  { option: 'refuse', obs: err('busy') },
  { option: 'newest', obs: SAME_OK },
];
const EMULATOR_UNMAP_PARTIAL: readonly Option[] = [
  { option: 'refuse', obs: err('not-registered') },
  { option: 'split', obs: SAME_OK },
];
const ROOT_RESET_RAM: readonly Option[] = [
  { option: 'keep', obs: SAME_OK },
  { option: 'clear', obs: SAME_OK },
];
const fault = (reason: Reason, extra: Partial<Observation> = {}): Observation => ({ status: 'fault', reason, ...extra });
/** Pages as QEMU's address-space writes split them. */
const PAGE = 0x1000;

/** How a device issues a DMA (Model.deviceDma). */
interface DmaHow {
  /** It needs Bus Master Enable (on itself and every bridge above). */
  master: boolean;
  /** Its op's observation does not show the outcome. */
  blind: boolean;
}
const CHECKED: DmaHow = { master: true, blind: false };

const sameChunks = (a: readonly Chunk[], b: readonly Chunk[]): boolean => a.length === b.length && a.every((c, i) => c.gpa === b[i].gpa && c.len === b[i].len);

/** An access to a reserved platform range: it completes, with a value the model cannot know. */
function reservedAccess(d: Decoder, addr: number, size: number, value: bigint | null): Observation {
  const to: Delivery = { root: d.root, region: 'platform', offset: addr - d.base };
  return value === null ? ok({ value: allOnes(size), to, unknown: true }) : ok({ to });
}

/** A configuration access no function takes: nobody on the bus, no such function, or another emulator's BDF. */
function missedConfig(status: Status, root: number, rule: RuleId, via: string | undefined, value: bigint | null, size: number): Observation {
  const o: Observation = { status, to: via === undefined ? { root } : { root, via }, rule };
  if (value === null) o.value = allOnes(size);
  return o;
}

export class Model implements DeviceHost, ItdHost {
  readonly devices = new Map<string, DeviceSlot>();
  /** The slots of learned functions: the only ones that may master DMA unprompted (most topologies have none). */
  private readonly learnedSlots: DeviceSlot[] = [];
  readonly rootBuses: Bus[] = [];
  private readonly busOf = new Map<PciFunction, Bus>();
  private readonly mem = new Map<number, AddressSpace>();
  private readonly io = new Map<number, AddressSpace>();
  private readonly rams = new Map<number, Ram>();
  private readonly domains = new Map<number, IommuDomain[]>();
  /** Attachments by ridKey(): the device's, or under VT-d scalable mode its PASID table's RID_PASID entry. */
  private readonly attached = new Map<string, number>();
  /** ridKeys whose RID_PASID entry uses first-stage tables (a pasid.bind of PASID 0 said so). */
  private readonly firstStage = new Set<string>();
  /** ridKeys whose RID_PASID entry holds a binding's fields, present or not (written, and not cleared whole since). */
  private readonly ridFields = new Set<string>();
  private readonly stale = new StaleTranslations();
  private readonly pasid = new Map<string, PasidContext>();
  private readonly emus = new Map<number, EmulatorTable>();
  private readonly cf8 = new Map<number, number>();
  private timers: Timer[] = [];
  private time = 0;
  private seq = 0;
  private timerSeq = 0;
  private irqs: Irq[] | null = null;
  /** While a write is tried for a choice (writeIrqs): its messages are not written to memory. */
  private trying = false;
  /**
   * RAM that a learned function may have written by DMA of its own (its
   * device-specific behaviour): [start, end) per memory owner. Reads there
   * are unknown; what the function could reach is still its root's.
   */
  private readonly deviceWritten = new Map<number, [number, number][]>();
  /** The chooser of the op being applied, and the first choice it met. */
  private chooser: Chooser = DEFAULT_CHOOSER;
  private made: ChoiceMade | null = null;
  /** Platform lines asserted after the last op, when the topology routes INTx to lines; null: not known (recomputed). */
  private lines: Set<string> | null = null;
  private readonly routesLines: boolean;
  /** Per root: whether software sees its functions through Xen's guest view (RootSpec.view), read once here, off the hot path. */
  private readonly guestView: boolean[];
  /** Per root: whether its DMA goes through VT-d in scalable mode (RootSpec.scalable of its DMA owner), read once here, off the DMA path. */
  private readonly scalableRoot: boolean[];
  readonly keepStaleMappings: boolean;
  /** What a variant of the model changes in its bridges: one object for all of them. */
  private readonly bridgeRules: Bridge['rules'];

  /** Linux's VFIO over this topology (harness/model/vfio/host.ts), made when a VFIO op first asks. */
  private vfioHost: VfioHost | null = null;
  get vfio(): VfioHost {
    return (this.vfioHost ??= new VfioHost(this.topology));
  }

  constructor(
    readonly topology: Topology,
    readonly rules: Rules = REFERENCE_RULES,
    /** The RAM of each memory owner; a vfio-user server puts its client's memory there. */
    ramOf: (root: number, size: number) => Ram = (_r, size) => new Ram(size),
  ) {
    this.keepStaleMappings = rules.keepStaleMappings;
    this.bridgeRules = { memLimit: (l) => rules.bridgeMemLimit(l), keepWindowsOnReset: rules.keepWindowsOnReset };
    const t = topology;
    this.routesLines = routesLines(t);
    this.guestView = t.roots.map((r) => r.view === 'xen-vpci-guest');
    this.scalableRoot = t.roots.map((_, r) => {
      const owner = t.roots[ownerOf(t, r, 'dma')];
      return owner.iommu === true && owner.scalable !== undefined;
    });
    for (let r = 0; r < t.roots.length; r++) {
      const spec = t.roots[r];
      this.rootBuses.push(new Bus(null, r, false));
      this.emus.set(r, new EmulatorTable(t.emulators ?? []));
      if (ownerOf(t, r, 'memory') === r) {
        this.rams.set(r, ramOf(r, spec.ram ?? DEFAULT_RAM));
        this.mem.set(r, new AddressSpace('memory', r));
      }
      if (rules.ioOwner(t, r) === r) this.io.set(r, new AddressSpace('io', r));
      if (ownerOf(t, r, 'dma') === r && spec.iommu === true)
        this.domains.set(r, Array.from({ length: spec.domains ?? 0 }, (_, i) => new IommuDomain(r, i)));
    }
    for (let r = 0; r < t.roots.length; r++) {
      const spec = t.roots[r];
      this.mem.get(ownerOf(t, r, 'memory'))!.buses.push({ root: r, bus: this.rootBuses[r] });
      this.io.get(rules.ioOwner(t, r))!.buses.push({ root: r, bus: this.rootBuses[r] });
      if (ownerOf(t, r, 'config') === r) {
        const ram = this.mem.get(ownerOf(t, r, 'memory'))!;
        const ecam = spec.ecam === undefined ? DEFAULT_ECAM : spec.ecam;
        if (ecam !== null) ram.platform.push({ kind: 'ecam', root: r, fn: null, region: -1, base: ecam, size: ECAM_BUSES << 20, seq: Infinity });
        if (spec.cf8 === true) this.io.get(rules.ioOwner(t, r))!.platform.push({ kind: 'cf8', root: r, fn: null, region: -1, base: 0xcf8, size: 8, seq: Infinity });
      }
    }
    for (const [r, ram] of this.rams) this.mem.get(r)!.platform.unshift({ kind: 'ram', root: r, fn: null, region: -1, base: 0, size: ram.size, seq: Infinity });
    // Reserved ranges come first: they outrank RAM too (firmware ROM over low RAM).
    for (let r = 0; r < t.roots.length; r++)
      for (const x of [...(t.roots[r].reserved ?? [])].reverse()) {
        const sp = x.space === 'io' ? this.io.get(r) : this.mem.get(r);
        sp?.platform.unshift({ kind: 'reserved', root: r, fn: null, region: -1, base: x.base, size: x.size, seq: x.pciWins === true ? -Infinity : Infinity, name: x.name });
      }

    // Written out, not spread: V8 spreads into a slow object here, and every slot store after it pays (bench:model).
    for (const d of slotsOf(t)) this.devices.set(d.spec.id, { spec: d.spec, root: d.root, parent: d.parent, uid: d.uid, multifunction: d.multifunction, port: d.port, fn: null, last: null });
    for (const slot of this.devices.values()) if (slot.spec.kind === 'opaque' && slot.spec.learned !== undefined) this.learnedSlots.push(slot);
    for (const slot of this.devices.values()) if (slot.spec.present !== false && (slot.parent === null || this.devices.get(slot.parent.id)!.fn !== null)) this.plugSlot(slot, false);
    for (const slot of this.devices.values()) if (slot.fn !== null) this.attachAsSpecified(slot);
  }

  /** A present device takes the domain its spec names (a shared RID_PASID entry keeps the one it has). */
  private attachAsSpecified(s: DeviceSlot): void {
    if (s.spec.domain === undefined || !this.domains.has(ownerOf(this.topology, s.root, 'dma'))) return;
    const key = this.ridKey(s.spec.id);
    if (this.attached.has(key)) return;
    this.attached.set(key, s.spec.domain);
    this.ridFields.add(key);
    if (this.scalable(s.root) && this.stageFor(s.root, undefined) === 'first') this.firstStage.add(key);
  }

  /** Whether a root's DMA goes through VT-d in scalable mode (RootSpec.scalable). */
  private scalable(root: number): boolean {
    return this.scalableRoot[root];
  }

  /** The stage a binding takes: the one asked for if the IOMMU offers it (else null), by default second-stage where offered. */
  private stageFor(root: number, asked: Stage | undefined): Stage | null {
    const offers = this.topology.roots[ownerOf(this.topology, root, 'dma')].scalable ?? 'second';
    return stageOffered(offers, asked);
  }

  /**
   * Where a device's requests without a PASID find their translation: the
   * device itself, or under VT-d scalable mode its PASID table's RID_PASID
   * entry (§9.4), which the devices of one PASID context share.
   */
  private ridKey(dev: string): string {
    const s = this.devices.get(dev);
    if (s === undefined || !this.scalable(s.root)) return dev;
    const key = this.contextKey(dev);
    // One IOMMU's table: a context spanning roots with IOMMUs of their own has a table in each.
    return key === null ? dev : `ctx:${ownerOf(this.topology, s.root, 'dma')}:${this.rules.pasidNamespace(key, dev)}`;
  }

  /** Why a request without a PASID faults under scalable mode when RID_PASID is not bound: its entry is not present. */
  private ridMissing(dev: string): Reason {
    return this.rules.pasidTypeBeforePresent && !this.ridFields.has(this.ridKey(dev)) ? 'pasid-invalid' : 'pasid-unbound';
  }

  /** The binding a device's requests without a PASID use now, if any. */
  private untaggedBinding(dev: string): PasidBinding | undefined {
    const key = this.ridKey(dev);
    const domain = this.attached.get(key);
    return domain === undefined ? undefined : { domain, stage: this.firstStage.has(key) ? 'first' : 'second' };
  }

  // ---- DeviceHost -------------------------------------------------------------

  now(): number {
    return this.time;
  }

  nextSeq(): number {
    return ++this.seq;
  }

  bar64High(hi: number): number {
    return this.rules.bar64High(hi);
  }

  eduDmaAborts(addr: bigint, count: bigint): boolean {
    return this.rules.eduDmaAborts(addr, count);
  }

  /** Why the target died, when a quirk predicts that it does (never in the reference model). */
  aborted: string | null = null;

  abort(why: string): void {
    this.aborted ??= why;
  }

  detach(fn: PciFunction): void {
    const s = this.devices.get(fn.id);
    if (s?.fn === fn) this.unplugSlot(s);
  }

  decodeChanged(fn: PciFunction): void {
    this.mem.get(ownerOf(this.topology, fn.root, 'memory'))!.invalidate();
    this.io.get(this.rules.ioOwner(this.topology, fn.root))!.invalidate();
  }

  schedule(fn: PciFunction, at: number, run: () => void): void {
    this.timers.push({ at, seq: ++this.timerSeq, fn, run });
    this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  upstreamMaster(fn: PciFunction): boolean {
    for (let b = this.busOf.get(fn); b !== undefined && b.upstream !== null; b = this.busOf.get(b.upstream)) if (!(b.upstream as Bridge).forwardsUpstream) return false;
    return true;
  }

  irq(fn: PciFunction, irq: Pick<Irq, 'kind' | 'vector' | 'addr' | 'data' | 'level'>): void {
    if (this.irqs === null) return;
    const t = this.topology;
    if (irq.kind === 'intx') {
      this.irqs.push({ space: ownerOf(t, fn.root, 'irq'), dev: fn.id, kind: 'intx', pin: this.rootPin(fn), level: irq.level });
      return;
    }
    this.irqs.push({ space: this.rules.msiSpace(t, fn.root), dev: fn.id, ...irq });
    // A message is a DWORD memory write (PCI 3.0 §6.8.1): outside the interrupt range it lands where the function's DMA would.
    if (!this.trying && irq.addr !== undefined && irq.data !== undefined && Number.isSafeInteger(irq.addr + 4) && (irq.addr < INTERRUPT_RANGE.base || irq.addr >= INTERRUPT_RANGE.base + INTERRUPT_RANGE.size)) {
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setUint32(0, irq.data >>> 0, true);
      this.deviceDma(fn, irq.addr, 4, bytes, undefined);
    }
  }

  /** INTx pin at the root: each bridge maps pin x of device D to (x + D) mod 4 (PCI-to-PCI Bridge 1.2 §9.1). */
  private rootPin(fn: PciFunction): number {
    return this.intxArrival(fn).pin;
  }

  /** The root-bus slot a function's INTx enters by, and the pin there. */
  private intxArrival(fn: PciFunction): IntxArrival {
    let pin = (fn.cfg.read(INTERRUPT_PIN, 1) - 1) & 3;
    let cur: PciFunction = fn;
    for (let b = this.busOf.get(cur); b !== undefined && b.upstream !== null; b = this.busOf.get(cur)) {
      pin = (pin + cur.spec.slot) & 3;
      cur = b.upstream;
    }
    return { root: fn.root, slot: cur.spec.slot, pin };
  }

  /** The platform lines asserted now: every present function's asserted pin, routed. */
  private assertedLines(): Set<string> {
    const arrivals: IntxArrival[] = [];
    for (const s of this.devices.values()) if (s.fn !== null && s.fn.intxAsserted) arrivals.push(this.intxArrival(s.fn));
    return assertedLines(this.topology, arrivals, this.rules.intxLine);
  }

  dma(fn: PciFunction, iova: number, len: number, write: Uint8Array | null): DmaResult {
    const o = this.deviceDma(fn, iova, len, write, undefined);
    return { ok: o.status === 'ok', data: o.data };
  }

  // ---- operations -------------------------------------------------------------

  /**
   * Applies one op and predicts its observation. `chooser` takes the
   * implementation choices the op meets (harness/spec/choices.ts); the
   * prediction names the rule it rests on and, at a choice, the other
   * outcomes the specifications allow.
   */
  apply(op: Op, chooser: Chooser = DEFAULT_CHOOSER): Observation {
    this.irqs = [];
    this.chooser = chooser;
    this.made = null;
    const before = this.routesLines ? (this.lines ??= this.assertedLines()) : null;
    const o = this.dispatch(op);
    this.noteDeviceWrites();
    o.rule ??= o.status === 'error' && o.reason === 'no-device' ? 'op.names' : OP_RULES[op.op];
    const made = this.madeChoice();
    if (made !== null) {
      o.choice = { id: made.id, option: made.option, declared: made.declared };
      if (made.departs !== undefined) o.choice.departs = made.departs;
      o.allowed = made.others.map((x) => ({ option: x.option, obs: x.obs }));
    }
    // Topology.clock "immediate": the work an op started is done before it completes.
    if (this.topology.clock === 'immediate') for (let n = 0; n < 64 && this.timers.length > 0; n++) this.advanceTo(this.timers.at(-1)!.at);
    // A line can change only when a pin did, or a function came or went.
    if (before !== null && (this.irqs.some((i) => i.kind === 'intx') || mayRemovePins(op))) {
      this.lines = this.assertedLines();
      this.irqs.push(...lineChanges(before, this.lines));
    }
    if (this.irqs.length > 0) o.irqs = this.irqs;
    this.irqs = null;
    this.chooser = DEFAULT_CHOOSER;
    return o;
  }

  private madeChoice(): ChoiceMade | null {
    return this.made;
  }

  /** What learned functions that master DMA can write now joins the RAM the model no longer knows. */
  private noteDeviceWrites(): void {
    for (const s of this.learnedSlots) {
      const fn = s.fn;
      if (!(fn instanceof Learned) || !fn.busMaster || !this.upstreamMaster(fn)) continue;
      const owner = this.rules.dmaMemoryOwner(this.topology, fn.root);
      const ram = this.rams.get(owner)!;
      const domains = this.domains.get(ownerOf(this.topology, fn.root, 'dma'));
      let list = this.deviceWritten.get(owner);
      if (list === undefined) this.deviceWritten.set(owner, (list = []));
      if (domains === undefined) {
        // Identity-mapped DMA reaches all of the root's RAM.
        if (!list.some(([a, b]) => a === 0 && b === ram.size)) list.push([0, ram.size]);
        continue;
      }
      const attached = this.attached.get(this.ridKey(fn.id));
      const d = attached === undefined ? undefined : domains[attached];
      for (const m of d?.mappings() ?? []) if (m.perm !== 'r' && !list.some(([a, b]) => a <= m.gpa && m.gpa + m.size <= b)) list.push([m.gpa, m.gpa + m.size]);
    }
  }

  /** Whether a learned function may have written [addr, addr + size) of this memory owner's RAM. */
  private writtenByDevice(owner: number, addr: number, size: number): boolean {
    return (this.deviceWritten.get(owner) ?? []).some(([a, b]) => addr < b && a < addr + size);
  }

  /** Takes an implementation choice; the first one an op meets is reported with its prediction. */
  private choose(id: ChoiceId, options: readonly Option[]): Option {
    const pick = this.chooser(id, options);
    const chosen = options.find((x) => x.option === pick.option) ?? options[0];
    this.made ??= { id, option: chosen.option, declared: pick.declared, others: options.filter((x) => x !== chosen), ...(pick.departs !== undefined ? { departs: pick.departs } : {}) };
    return chosen;
  }

  /**
   * A choice that the op's own observation cannot show (every option observes
   * alike): the chooser decides by the profile alone, and the prediction does
   * not report it (there is no other outcome to allow), so a choice the op
   * meets later, which it can show, is the one reported.
   */
  private chooseUnseen(id: ChoiceId, options: readonly Option[]): Option {
    const pick = this.chooser(id, options);
    return options.find((x) => x.option === pick.option) ?? options[0];
  }

  private dispatch(op: Op): Observation {
    switch (op.op) {
      case 'cfg.read':
      case 'cfg.write':
        return this.cfgOp(op);
      case 'mmio.read':
        return this.memAccess(op.root, op.addr, op.size, null);
      case 'mmio.write':
        return this.memAccess(op.root, op.addr, op.size, op.value);
      case 'pio.read':
        return this.ioAccess(op.root, op.port, op.size, null);
      case 'pio.write':
        return this.ioAccess(op.root, op.port, op.size, op.value);
      case 'dma.map': {
        const d = this.domain(op.root, op.domain);
        if (typeof d === 'string') return err(d);
        const m = { iova: op.iova, size: op.size, gpa: op.gpa, perm: op.perm };
        let alignment: 'page' | 'any' = 'page';
        if (!d.aligned(m)) {
          const any = d.wouldMap(m, 'any');
          alignment = this.choose('dma-map.alignment', [
            { option: 'page', obs: err('align') },
            { option: 'any', obs: any === null ? ok() : err(any) },
          ]).option as 'page' | 'any';
        }
        const r = d.map(m, alignment);
        if (r === null) this.stale.domainChanged(ownerOf(this.topology, op.root, 'dma'), op.domain, op.iova, op.size);
        return r === null ? ok() : err(r);
      }
      case 'dma.unmap': {
        const d = this.domain(op.root, op.domain);
        if (typeof d === 'string') return err(d);
        let alignment: 'page' | 'any' = 'page';
        if (op.size !== 0 && d.wouldUnmap(op.iova, op.size, 'page') === 'align') {
          const any = d.wouldUnmap(op.iova, op.size, 'any');
          alignment = this.choose('dma-map.alignment', [
            { option: 'page', obs: err('align') },
            { option: 'any', obs: any === null ? ok() : err(any) },
          ]).option as 'page' | 'any';
        }
        const r = d.unmap(op.iova, op.size, alignment);
        if (typeof r !== 'string') this.stale.domainChanged(ownerOf(this.topology, op.root, 'dma'), op.domain, op.iova, op.size);
        return typeof r === 'string' ? err(r) : ok();
      }
      case 'dma.attach': {
        const s = this.present(op.dev);
        if (typeof s === 'string') return err(s);
        const d = this.domain(s.root, op.domain);
        if (typeof d === 'string') return err(d);
        const key = this.ridKey(op.dev);
        const cur = this.attached.get(key);
        if (cur !== undefined && cur !== op.domain) return err('busy');
        if (cur === undefined) {
          if (this.stageFor(s.root, undefined) === 'first') this.firstStage.add(key);
          else this.firstStage.delete(key);
          this.ridFields.add(key);
          this.stale.rewritten(key, 0);
        }
        this.attached.set(key, op.domain);
        return ok();
      }
      case 'dma.detach': {
        const s = this.present(op.dev);
        if (typeof s === 'string') return err(s);
        // A detach invalidates what it removes: nothing of it translates after (but under a known bug, see rules).
        const key = this.ridKey(op.dev);
        const b = this.untaggedBinding(op.dev);
        if (b === undefined) return err('no-domain');
        this.attached.delete(key);
        if (this.scalable(s.root) && this.rules.pasidPresentIgnoredWhenCached) this.stale.cleared(ownerOf(this.topology, s.root, 'dma'), key, 0, b, true);
        return ok();
      }
      case 'dma.read':
      case 'dma.write':
        return this.dmaOp(op);
      case 'pasid.alloc':
      case 'pasid.free':
      case 'pasid.bind':
      case 'pasid.unbind':
      case 'pasid.invalidate':
        return this.pasidOp(op);
      case 'emu.map-bdf':
      case 'emu.unmap-bdf':
      case 'emu.map-range':
      case 'emu.unmap-range':
        return this.emuOp(op);
      case 'dev.plug': {
        const s = this.devices.get(op.dev);
        if (s === undefined) return err('no-device');
        if (s.fn !== null) return err('present');
        const above = s.parent === null ? null : this.devices.get(s.parent.id)!.fn;
        if (above === null && s.parent !== null) return err('no-slot');
        if (above instanceof Bridge && above.slotLocked()) return err('busy');
        this.plugSlot(s, true);
        return ok();
      }
      case 'dev.unplug': {
        const s = this.present(op.dev);
        if (typeof s === 'string') return err(s);
        const above = s.parent === null ? null : this.devices.get(s.parent.id)!.fn;
        if (above instanceof Bridge) above.ejectBelow();
        if (s.fn !== null) this.unplugSlot(s);
        return ok();
      }
      case 'dev.reset': {
        const s = this.present(op.dev);
        if (typeof s === 'string') return err(s);
        if (this.rules.guestKeepsMappings && this.guestView[s.root]) s.fn!.keepMappings();
        s.fn!.reset();
        if (this.rules.guestFirstFreeSlot && this.guestView[s.root]) this.takeFirstFreeSlot(s.fn!);
        return ok();
      }
      case 'root.reset':
        if (op.root >= this.topology.roots.length) return err('no-device');
        this.resetRoot(op.root);
        return ok();
      case 'clock.step':
        this.advance(op.ns);
        return ok();
      case 'region.read':
      case 'region.write':
        return regionAccess(this.regionHost, op);
      // What is left are Linux VFIO's ops (a new kind of another family does not compile here).
      default:
        return this.vfio.apply(op);
    }
  }

  /** Region access (region-access.ts) through the model's own config and space paths. */
  private readonly regionHost: RegionHost = {
    fn: (dev) => {
      const s = this.present(dev);
      return typeof s === 'string' ? s : s.fn!;
    },
    config: (fn, reg, size, value) => {
      const b = this.bdfOf(fn.id)!;
      return this.configAccess(ownerOf(this.topology, fn.root, 'config'), fn.root, busOf(b), devfnOf(b), reg, size, value);
    },
    space: (fn, at, size, value) => this.barAccess(fn.root, at, size, value),
    choose: (id, options) => this.choose(id, options),
  };

  // ---- configuration access (PCI 3.0 §3.2.2.3, PCIe Base §7.2.2) -----------------

  private cfgOp(op: OpOf<'cfg.read'> | OpOf<'cfg.write'>): Observation {
    const t = this.topology;
    if (op.root >= t.roots.length) return err('no-device');
    // The mechanism is the config owner's: its ECAM window sits in the owner's memory space, its CF8/CFC in its IO space.
    // The accesses land in the model's spaces, which decode them (ECAM: configAccess; the latch: ioAccess).
    const m = configMechanisms(t, op.root);
    const value = writeValue(op);
    // The encoder is the bus seam's (harness/bus/config-access.ts), without building the access list on this hot path.
    if (op.via === 'ecam') return m.ecam === null ? err('no-ecam') : this.memAccess(m.owner, ecamAddress(m.ecam, op.bdf, op.reg), op.size, value);
    if (!m.cf8) return err('no-cf8');
    this.ioAccess(m.owner, CONFIG_ADDRESS_PORT, 4, BigInt(configAddress(op.bdf, op.reg)));
    return this.ioAccess(m.owner, configDataPort(op.reg), op.size, value);
  }

  private configAccess(owner: number, issuer: number, bus: number, devfn: number, reg: number, size: number, value: bigint | null): Observation {
    const r = this.rules.expanderBusClaims ? claimedRoot(this.topology, this.rootBuses, owner, bus) : rootForBus(this.topology, owner, bus);
    if (r < 0) return missedConfig('ur', issuer, 'config.routing', undefined, value, size);
    const b = mkBdf(bus, devfn >> 3, devfn & 7);
    const via = this.rules.emulatorsAfterInternal ? undefined : this.emulatorFor(this.emus.get(owner)!, b);
    const fn = routeConfig(this.topology, this.rootBuses, r, bus, devfn);
    if (typeof fn === 'string') return missedConfig(fn, r, 'config.absent-function', via, value, size);
    if ((fn.spec.emulator ?? undefined) !== via) return missedConfig('ur', r, 'emulator.routing', via, value, size);
    const to: Delivery = { root: r, dev: fn.id, region: 'cfg', offset: reg };
    if (via !== undefined) to.via = via;
    // Routed, the access is the register's: its rule decides the outcome.
    const valueRule = configRule(fn, reg);
    const rule: RuleId = via === undefined ? valueRule : 'emulator.routing';
    if (value === null && this.guestView[r]) return this.guestRead(fn, reg, size, to, rule, valueRule);
    if (value === null) {
      const known = fn.configKnown(reg, size);
      if (known === 0n) return ok({ value: allOnes(size), to, unknown: true, rule, valueRule });
      const o: Observation = { status: 'ok', value: BigInt(fn.configRead(reg, size)), to, rule, valueRule };
      if (known !== allOnes(size)) o.known = known;
      return o;
    }
    if (this.guestView[r]) return this.guestWrite(fn, reg, size, value, to, rule);
    return this.registerWrite(fn, reg, size, value, to, rule);
  }

  /** A config write that reaches the function's registers. */
  private registerWrite(fn: PciFunction, reg: number, size: number, value: bigint, to: Delivery, rule: RuleId): Observation {
    if (fn.stuck) {
      const bar = fn.memoryBarWritten(reg, size);
      if (bar !== null && fn.stuckBars.has(bar)) return ok({ to, rule });
    }
    // The reference model needs neither: no quirk, no extra reads on this hot path.
    if (!this.rules.msixHoleClash && !this.rules.barCachesWritten && !this.rules.mapFailureDropsDecode) return this.registerWriteThrough(fn, reg, size, value, to, rule);
    const oldCmd = fn.command;
    const before = fn.cfg.read(reg & ~3, 4);
    const o = this.registerWriteThrough(fn, reg, size, value, to, rule);
    const command = reg <= COMMAND + 1 && COMMAND < reg + size;
    if (this.rules.mapFailureDropsDecode && command) this.unmappableDecode(fn, oldCmd);
    if (this.rules.msixHoleClash && command) this.decodeEnabled(fn, oldCmd);
    if (this.rules.barCachesWritten) this.cacheWrittenBar(fn, reg, size, value, before, oldCmd, command);
    return o;
  }

  /**
   * Under barCachesWritten (the hardware domain's bar_write, xen/drivers/vpci/header.c): a BAR write taken while the BAR is not mapped
   * is cached as written (only the type bits cleared), and a decode enable maps from there; one that wraps past 2^64 fails Xen's
   * ASSERT(s <= e) in rangeset_add_range.
   */
  private cacheWrittenBar(fn: PciFunction, reg: number, size: number, value: bigint, before: number, oldCmd: number, command: boolean): void {
    if (this.guestView[fn.root]) return;
    const bar = fn.memoryBarWritten(reg, size);
    // Taken: with decode off, or (a BAR that was not mapped) the register changed.
    if (bar !== null && ((oldCmd & CMD_MEMORY) === 0 || fn.cfg.read(reg & ~3, 4) !== before)) {
      const b = fn.bars[bar]!;
      // The dword as written: the bytes written over the register's previous value.
      const d = reg & ~3;
      let dword = BigInt(before);
      for (let i = 0; i < size; i++) dword = (dword & ~(0xffn << BigInt(8 * (reg - d + i)))) | (((value >> BigInt(8 * i)) & 0xffn) << BigInt(8 * (reg - d + i)));
      const cur = fn.writtenBars?.get(bar) ?? BigInt(fn.memoryBarBase(bar));
      const next = d === b.reg ? (cur & ~0xffffffffn) | (dword & 0xfffffff0n) : (cur & 0xffffffffn) | (dword << 32n);
      (fn.writtenBars ??= new Map()).set(bar, next);
      fn.recomputeDecode();
    }
    if (command && (oldCmd & CMD_MEMORY) === 0 && (fn.command & CMD_MEMORY) !== 0)
      for (const [r, w] of fn.writtenBars ?? []) if (w + BigInt(fn.bars[r]!.size) - 1n >= 1n << 64n) this.abort(`Assertion 's <= e' failed at xen/common/rangeset.c (BAR ${r} cached at 0x${w.toString(16)})`);
  }

  /** Under mapFailureDropsDecode (the hardware domain's vpci_process_pending, xen/drivers/vpci/header.c): a decode enable with a memory BAR past the address width ends with memory decode off. */
  private unmappableDecode(fn: PciFunction, oldCmd: number): void {
    if (this.guestView[fn.root] || (oldCmd & CMD_MEMORY) !== 0 || (fn.command & CMD_MEMORY) === 0) return;
    const past = fn.bars.some((b) => b !== undefined && (b.kind === 'mem32' || b.kind === 'mem64') && fn.memoryBarBase(b.region) + b.size > ADDR_LIMIT);
    if (!past) return;
    fn.cfg.set(COMMAND, 2, fn.command & ~CMD_MEMORY);
    fn.recomputeDecode();
  }

  /** Under msixHoleClash: a decode enable whose MSI-X pages cannot be trapped leaves the device's Command as it was (guest-view: the guest's copy takes it). */
  private decodeEnabled(fn: PciFunction, oldCmd: number): void {
    const now = fn.command;
    const guest = this.guestView[fn.root];
    if ((now & CMD_MEMORY) !== 0 && ((oldCmd & CMD_MEMORY) === 0 || fn.stuck)) {
      if (this.msixClash(fn)) {
        // The BARs modify_decoding marked mapped: a guest's all; the hardware domain's outside RAM (pci_check_bar).
        const marked = new Set<number>();
        for (const b of fn.bars) if (b !== undefined && b.kind !== 'io' && b.kind !== 'rom' && (guest || fn.memoryBarBase(b.region) >= this.ramOf(ownerOf(this.topology, fn.root, 'memory')).size)) marked.add(b.region);
        fn.cfg.set(COMMAND, 2, oldCmd);
        fn.recomputeDecode();
        // Those marked before stay marked: nothing cleared them.
        fn.stuckBars = new Set([...fn.stuckBars, ...marked]);
        fn.stuck = true;
        fn.guestCommand = guest ? now : null;
      } else {
        fn.stuck = false;
        fn.stuckBars = NO_BARS;
        fn.guestCommand = null;
      }
    } else if (fn.stuck) fn.guestCommand = null;
  }

  /** Whether a page of the function's MSI-X table or PBA is RAM, or (for a guest) mapped by another function. */
  private msixClash(fn: PciFunction): boolean {
    const pages = fn.msixPages();
    if (pages === null) return false;
    const ramPages = Math.ceil(this.ramOf(ownerOf(this.topology, fn.root, 'memory')).size / 0x1000);
    const guest = this.guestView[fn.root];
    for (const [first, last] of pages)
      for (let p = first; p <= last; p++) {
        if (p < ramPages) return true;
        if (guest && this.mappedByOther(fn, p * 0x1000)) return true;
      }
    return false;
  }

  private mappedByOther(fn: PciFunction, addr: number): boolean {
    for (const s of this.devices.values()) {
      const other = s.fn;
      if (other === null || other === fn || s.root !== fn.root) continue;
      for (const p of other.placements) if (p !== null && p !== undefined && other.bars[p.region]?.kind !== 'io' && addr >= p.base && addr < p.base + p.size) return true;
    }
    return false;
  }

  private registerWriteThrough(fn: PciFunction, reg: number, size: number, value: bigint, to: Delivery, rule: RuleId): Observation {
    // A write that reaches read-only bits may be refused (a vfio-user server may fail it) or complete.
    if (fn.writeReachesReadOnly(reg, size)) {
      const pick = this.choose('config.read-only-write', [
        { option: 'ignore', obs: ok({ to, rule }) },
        { option: 'refuse', obs: { status: 'error', reason: 'read-only', to, rule: 'config.read-only' } },
      ]);
      if (pick.option === 'refuse') return pick.obs;
    }
    const placed = fn.decodingBarWritten(reg, size, value);
    if (placed !== null) {
      // Ignored, a write to a BAR under RAM is still taken by its register: such a BAR is not mapped (RAM outranks it; a
      // hypervisor maps BARs in holes of the memory map only), and it is mapped at the new place when memory decode turns on again.
      if (this.chooseUnseen('header.bar-write-while-decoding', BAR_WRITE_WHILE_DECODING).option === 'ignore') {
        if (!this.guestView[fn.root] && this.underRam(fn.root, placed.base, placed.size)) fn.configWriteHeld(reg, size, Number(value));
        return { status: 'ok', to, rule };
      }
    }
    fn.configWrite(reg, size, Number(value));
    const msi = fn.caps.msi;
    if (msi !== undefined && reg <= msi.off + 4 && msi.off + 4 < reg + size) {
      const low = this.rules.msiAddressLowBits(Number((value >> BigInt(8 * (msi.off + 4 - reg))) & 3n));
      if (low !== 0) fn.cfg.set(msi.off + 4, 1, (fn.cfg.read(msi.off + 4, 1) & ~3) | low);
    }
    return { status: 'ok', to, rule };
  }

  // ---- a guest's view through Xen's vPCI (guest-view.ts) ------------------------

  private guestRead(fn: PciFunction, reg: number, size: number, to: Delivery, rule: RuleId, valueRule: RuleId): Observation {
    let v = 0n;
    let own = true;
    for (let i = size - 1; i >= 0; i--) {
      const k = guestByte(fn, reg + i);
      const b = k === 'device' ? fn.configRead(reg + i, 1) : k === 'ones' ? 0xff : k === 'zero' ? 0 : (((fn.guestCommand ?? fn.command) & ~GUEST_COMMAND_RSVDP) >> (8 * ((reg + i) & 1))) & 0xff;
      if (k !== 'device' && k !== 'command') own = false;
      v = (v << 8n) | BigInt(b);
    }
    return own ? { status: 'ok', value: v, to, rule, valueRule } : { status: 'ok', value: v, to, rule: 'view.xen-vpci-guest', valueRule: 'view.xen-vpci-guest' };
  }

  /**
   * Only the bytes a guest reaches are written, run by run; the guest's
   * Command keeps its reserved-preserve bits, and Interrupt Disable is set
   * while MSI or MSI-X is on (guest-view.ts).
   */
  private guestWrite(fn: PciFunction, reg: number, size: number, value: bigint, to: Delivery, rule: RuleId): Observation {
    const messagesWere = fn.msiEnabled() || fn.msixEnabled();
    // Interrupt Disable is bit 2 of Command's second byte (a negative BigInt shift shifts right: a write starting there).
    if (messagesWere && reg <= COMMAND + 1 && COMMAND + 1 < reg + size) value |= BigInt(GUEST_INTX_DISABLE) << BigInt(8 * (COMMAND - reg));
    const out = this.guestRuns(fn, reg, size, value, to, rule);
    if (!messagesWere && (fn.msiEnabled() || fn.msixEnabled())) fn.configWrite(COMMAND, 2, fn.command | GUEST_INTX_DISABLE);
    const keeps = this.rules.guestCommandKeeps & 0xff;
    if (keeps !== 0 && reg <= COMMAND && COMMAND < reg + size) {
      const written = Number((value >> BigInt(8 * (COMMAND - reg))) & 0xffn);
      fn.cfg.set(COMMAND, 1, (fn.cfg.read(COMMAND, 1) & ~keeps) | (written & keeps));
    }
    return out;
  }

  private guestRuns(fn: PciFunction, reg: number, size: number, value: bigint, to: Delivery, rule: RuleId): Observation {
    let out: Observation = ok({ to, rule: 'view.xen-vpci-guest' });
    for (let i = 0; i < size; ) {
      if (guestByte(fn, reg + i) === 'ones' || guestByte(fn, reg + i) === 'zero') {
        i++;
        continue;
      }
      let j = i;
      let v = 0n;
      while (j < size && (guestByte(fn, reg + j) === 'device' || guestByte(fn, reg + j) === 'command')) {
        let b = Number((value >> BigInt(8 * j)) & 0xffn);
        if (guestByte(fn, reg + j) === 'command') {
          const m = (GUEST_COMMAND_RSVDP >> (8 * ((reg + j) & 1))) & 0xff;
          b = (b & ~m) | (((fn.command >> (8 * ((reg + j) & 1))) & 0xff) & m);
        }
        v |= BigInt(b) << BigInt(8 * (j - i));
        j++;
      }
      // A run is 1 to 4 bytes; a 3-byte run goes as a 2- and a 1-byte write.
      for (let k = i; k < j; ) {
        const n = j - k >= 4 && (reg + k) % 4 === 0 ? 4 : j - k >= 2 && (reg + k) % 2 === 0 ? 2 : 1;
        const o = this.registerWrite(fn, reg + k, n, (v >> BigInt(8 * (k - i))) & ((1n << BigInt(8 * n)) - 1n), { ...to, offset: reg + k }, rule);
        if (o.status !== 'ok') return o;
        out = o;
        k += n;
      }
      i = j;
    }
    return { ...out, to };
  }

  /** Whether [base, base + size) overlaps the RAM of root r's memory owner. */
  private underRam(r: number, base: number, size: number): boolean {
    return base < this.rams.get(ownerOf(this.topology, r, 'memory'))!.size && size > 0;
  }

  private emulatorFor(table: EmulatorTable, b: number): string | undefined {
    return table.empty ? undefined : table.bdfOwner(this.rules.emulatorKeys(b));
  }

  // ---- memory and IO space ------------------------------------------------------

  memSpaceOf(r: number): AddressSpace {
    return this.mem.get(ownerOf(this.topology, r, 'memory'))!;
  }

  ioSpaceOf(r: number): AddressSpace {
    return this.io.get(this.rules.ioOwner(this.topology, r))!;
  }

  /** Root r's memory or IO space, as the bus names it. */
  spaceOf(r: number, space: BusSpace): AddressSpace {
    return space === 'io' ? this.ioSpaceOf(r) : this.memSpaceOf(r);
  }

  ramOf(memOwner: number): Ram {
    return this.rams.get(memOwner)!;
  }

  private memAccess(issuer: number, addr: number, size: number, value: bigint | null): Observation {
    if (issuer >= this.topology.roots.length) return err('no-device');
    const sp = this.memSpaceOf(issuer);
    const d = sp.lookup(addr);
    if (d !== null && d.kind === 'ram') {
      const ram = this.rams.get(d.root)!;
      const to: Delivery = { root: d.root, region: 'ram', offset: addr };
      if (value === null) return ok({ value: ram.readValue(addr, size), to, rule: 'decode.ram', ...(this.writtenByDevice(d.root, addr, size) ? { unknown: true } : {}) });
      ram.writeValue(addr, size, value);
      return ok({ to, rule: 'decode.ram' });
    }
    if (d !== null && d.kind === 'ecam') {
      const e = ecamDecode(addr - d.base);
      const bus = this.rules.ecamBus(e.bus);
      const { devfn, reg } = e;
      // Config registers are at most 4 bytes wide: an 8-byte access is two (as QEMU splits it).
      if (size === 8) {
        const lo = this.configAccess(d.root, issuer, bus, devfn, reg, 4, value === null ? null : value & 0xffffffffn);
        const hi = this.configAccess(d.root, issuer, bus, devfn, reg + 4, 4, value === null ? null : value >> 32n);
        if (value === null) {
          lo.value = (lo.value ?? 0n) | ((hi.value ?? 0n) << 32n);
          const known = (lo.unknown === true ? 0n : (lo.known ?? allOnes(4))) | ((hi.unknown === true ? 0n : (hi.known ?? allOnes(4))) << 32n);
          delete lo.unknown;
          delete lo.known;
          if (known === 0n) lo.unknown = true;
          else if (known !== allOnes(8)) lo.known = known;
        }
        return lo;
      }
      return this.configAccess(d.root, issuer, bus, devfn, reg, size, value);
    }
    if (d !== null && d.kind === 'reserved') return reservedAccess(d, addr, size, value);
    const pick = this.overlapPick(sp, d, addr, size, value);
    return this.deliver(pick, issuer, addr, size, value, this.claimFor(sp.owner, 'mmio', addr, pick), 'memory.unassigned-read');
  }

  private ioAccess(issuer: number, port: number, size: number, value: bigint | null): Observation {
    if (issuer >= this.topology.roots.length) return err('no-device');
    const sp = this.ioSpaceOf(issuer);
    const cf8 = sp.platform.find((p) => p.kind === 'cf8');
    if (cf8 !== undefined) {
      // Only DWORD accesses hit CONFIG_ADDRESS; others pass through (PCI 3.0 §3.2.2.3.2).
      if (port === 0xcf8 && size === 4) {
        const to: Delivery = { root: cf8.root, region: 'cf8' };
        if (value === null) return ok({ value: BigInt(this.cf8.get(sp.owner) ?? 0), to, rule: 'config.cf8' });
        this.cf8.set(sp.owner, this.rules.cf8Latch(Number(value)));
        return ok({ to, rule: 'config.cf8' });
      }
      const reg = this.cf8.get(sp.owner) ?? 0;
      if (port >= 0xcfc && port + size <= 0xd00 && (reg & 0x80000000) !== 0) {
        return this.configAccess(cf8.root, issuer, (reg >>> 16) & 0xff, (reg >>> 8) & 0xff, this.rules.cf8Register(reg, port), size, value);
      }
    }
    let d = sp.lookup(port);
    // A partial access to CONFIG_ADDRESS passed through: a reserved platform range there (the target's own ports) answers.
    if (d !== null && d.kind === 'cf8') d = sp.platform.find((x) => x.kind === 'reserved' && x.base <= port && port < x.base + x.size) ?? null;
    if (d !== null && d.kind === 'reserved') return reservedAccess(d, port, size, value);
    const pick = d !== null && d.kind === 'bar' ? this.overlapPick(sp, d, port, size, value) : null;
    return this.deliver(pick, issuer, port, size, value, this.claimFor(sp.owner, 'pio', port, pick), 'io.unassigned-read');
  }

  /**
   * A server's access to a BAR at its address in the root's space: the
   * BAR that claims it there (the one mapped last, where BARs overlap),
   * which is another device's if the root's BARs collide. RAM, ECAM and
   * the platform's ranges are the CPU's, not the server's to reach.
   */
  private barAccess(root: number, at: BarToken, size: number, value: bigint | null): Observation {
    const { addr, io } = at;
    const sp = this.spaceOf(root, spaceOfBar(at));
    let d: Decoder | null = null;
    for (const c of sp.flat.claimants(addr)) if (c.kind === 'bar' && c.fn !== null && (d === null || c.seq > d.seq)) d = c;
    const via = this.claimFor(sp.owner, io ? 'pio' : 'mmio', addr, d);
    return this.deliver(d, root, addr, size, value, via, io ? 'io.unassigned-read' : 'memory.unassigned-read');
  }

  /**
   * The emulator whose claim takes a memory or IO access at `addr`, if any.
   * Under emulatorsAfterInternal (Xen) a function's decoding BAR takes it
   * first (vPCI mapped it in the p2m: the access never exits), and of the
   * IO ports only CF8..CFF exit at all (the hardware domain's own ports).
   */
  private claimFor(owner: number, space: 'mmio' | 'pio', addr: number, d: Decoder | null): string | undefined {
    const table = this.emus.get(owner)!;
    if (table.empty) return undefined;
    if (this.rules.emulatorsAfterInternal && ((d !== null && d.kind === 'bar' && d.fn !== null) || (space === 'pio' && (addr < 0xcf8 || addr > 0xcff)))) return undefined;
    return table.rangeOwner(space, addr);
  }

  /** A memory or IO access reaches the handler (root or emulator); the decoder answers if that handler hosts it. */
  private deliver(d: Decoder | null, issuer: number, addr: number, size: number, value: bigint | null, via: string | undefined, unassigned: ChoiceId): Observation {
    const fn = d?.fn ?? null;
    const rule: RuleId = via === undefined ? 'decode.bar' : 'emulator.routing';
    if (d === null || fn === null || (fn.spec.emulator ?? undefined) !== via) {
      const to: Delivery = { root: issuer };
      if (via !== undefined) to.via = via;
      const miss: RuleId = via === undefined ? 'decode.master-abort' : 'emulator.routing';
      if (value !== null) return { status: 'ma', to, rule: miss };
      // What the CPU gets for a read nobody claims is the platform's (an implementation choice).
      return this.choose(unassigned, [
        { option: 'ones', obs: { status: 'ma', value: allOnes(size), to, rule: miss } },
        { option: 'zeros', obs: { status: 'ma', value: 0n, to, rule: miss } },
      ]).obs;
    }
    const off = addr - d.base + (d.offset ?? 0);
    const to: Delivery = { root: d.root, dev: fn.id, region: regionName(d.region), offset: off };
    if (via !== undefined) to.via = via;
    // A device isoroot only learned may refuse an access to its own registers (its semantics are its own).
    if (fn instanceof Learned && fn.unknownRegionRead(d.region, off, size)) {
      const pick = this.choose('device.refusal', [
        { option: 'complete', obs: ok({ to, rule, unknown: true }) },
        { option: 'refuse', obs: { status: 'error', reason: 'unsupported', to, rule } },
      ]);
      if (pick.option === 'refuse') return pick.obs;
    }
    if (value === null) {
      const v = fn.regionRead(d.region, off, size);
      const o = ok({ value: v, to, rule, valueRule: regionRule(fn, d.region, off) });
      if (fn.unknownRegionRead(d.region, off, size) || fn.msixUndefinedAccess(d.region, off, size)) o.unknown = true;
      return o;
    }
    if (fn.msixAddressLowBitsWritten(d.region, off, size, value)) {
      const done = ok({ to, rule });
      const pick = this.choose('msix.address-low-bits', [
        { option: 'zero', obs: done },
        { option: 'keep', obs: done },
      ]);
      fn.msixKeepsAddressLowBits = pick.option === 'keep';
    }
    // isoroot's own bound on iommu-testdev transfers (rule harness.itd-length): the QEMU target refuses the write.
    if (fn instanceof IommuTestdev && d.region === 0 && overreachingLength(off, size, value) !== null) return { status: 'error', reason: 'unsupported', source: 'harness', to, rule: 'harness.itd-length' };
    fn.regionWrite(d.region, off, size, value);
    return ok({ to, rule });
  }

  /**
   * Where decoders of two functions overlap, which answers is undefined
   * (PCI 3.0 §6.2.5.1): the one mapped last (the model's default, QEMU's),
   * or the one mapped first (choice decode.overlap). A function's own BARs
   * come into decode together, in BAR order: the later one wins either way.
   */
  private overlapPick(sp: AddressSpace, d: Decoder | null, addr: number, size: number, value: bigint | null): Decoder | null {
    if (d === null || d.kind !== 'bar' || !sp.flat.overlaps) return d;
    let first = d;
    for (const c of sp.flat.claims) if (c.d.kind === 'bar' && c.d.fn !== null && c.d.fn !== d.fn && c.d.seq < first.seq && c.s <= addr && addr + size - 1 <= c.e) first = c.d;
    if (first === d) return d;
    // A write is told apart by the interrupts it raises through each decoder (a doorbell in one BAR, a table entry in the other).
    const tried = value !== null && !isDriven(d.fn!) && !isDriven(first.fn!);
    const peek = (x: Decoder): Option => {
      const off = addr - x.base + (x.offset ?? 0);
      const to: Delivery = { root: x.root, dev: x.fn!.id, region: regionName(x.region), offset: off };
      if (value === null) return { option: '', obs: ok({ value: x.fn!.peekRead(x.region, off, size), to }) };
      if (!tried) return { option: '', obs: ok({ to }) };
      const irqs = this.writeIrqs(x.fn!, x.region, off, size, value);
      return { option: '', obs: ok(irqs.length > 0 ? { to, irqs } : { to }), withIrqs: true };
    };
    return this.choose('decode.overlap', [
      { ...peek(d), option: 'later' },
      { ...peek(first), option: 'earlier' },
    ]).option === 'earlier'
      ? first
      : d;
  }

  /**
   * The interrupts a region write would raise, tried on the function and
   * undone (its state restored, nothing else touched: a message outside the
   * interrupt range is not written to memory while trying). Functions whose
   * writes start DMA (isDriven) are not tried.
   */
  private writeIrqs(fn: PciFunction, region: number, off: number, size: number, value: bigint): Irq[] {
    const kept = this.irqs;
    const before = fn.snapshot();
    this.irqs = [];
    this.trying = true;
    try {
      fn.regionWrite(region, off, size, value);
      return this.irqs;
    } finally {
      this.trying = false;
      this.irqs = kept;
      fn.restore(before);
    }
  }

  // ---- DMA (translation per device, VT-d §3; PASID per PCIe Base §6.20) ---------

  private domain(r: number, index: number): IommuDomain | Reason {
    if (r >= this.topology.roots.length) return 'no-device';
    const ds = this.domains.get(ownerOf(this.topology, r, 'dma'));
    if (ds === undefined) return 'no-iommu';
    return ds[index] ?? 'no-domain';
  }

  private present(id: string): DeviceSlot | Reason {
    const s = this.devices.get(id);
    if (s === undefined) return 'no-device';
    if (s.fn === null) return 'not-present';
    return s;
  }

  private dmaOp(op: OpOf<'dma.read'> | OpOf<'dma.write'>): Observation {
    const s = this.present(op.dev);
    if (typeof s === 'string') return err(s);
    const fn = s.fn!;
    if (fn instanceof IommuTestdev) return this.itdDma(fn, op);
    // Only endpoints, edu and iommu-testdev master DMA; pci-testdev, bridges and opaque functions are not asked to.
    if (s.spec.kind !== 'endpoint' && s.spec.kind !== 'edu') return err('unsupported');
    if (isDriven(fn)) {
      // A driver must reach the engine's registers, waits for it to be idle, then for its transfer.
      if (!fn.engineRegisters.every((off) => this.cpuReaches(fn, fn.engineRegion, off))) return err('unreachable');
      const pending = fn.pendingDeadline();
      if (pending !== null) this.advanceTo(pending);
      const b = fn.transferBuffer('data' in op ? op.data.length : op.len);
      // A target whose engine rejects the range dies here (a known bug's quirk; never the reference model).
      if (this.rules.eduDmaAborts(b.addr, b.count)) {
        this.abort(`the DMA engine's range check rejects ${b.count} bytes at ${b.addr.toString(16)}`);
        return err('unsupported');
      }
      this.advanceTo(fn.transferDeadline(this.time));
    }
    const iova = fn.dmaAddress(op.iova);
    let o: Observation;
    if ('data' in op) {
      fn.dmaBuffer(op.data);
      o = this.deviceDma(fn, iova, op.data.length, op.data, op.pasid);
    } else {
      o = this.deviceDma(fn, iova, op.len, null, op.pasid);
      fn.dmaBuffer(o.data ?? new Uint8Array(op.len));
    }
    if (isDriven(fn)) fn.driven();
    return o;
  }

  /**
   * dma.write on iommu-testdev, as a driver runs it (IommuTestdev.driverWrite):
   * its registers must be reachable, and what it writes is its pattern.
   * It cannot read memory by DMA.
   */
  private itdDma(fn: IommuTestdev, op: OpOf<'dma.read'> | OpOf<'dma.write'>): Observation {
    if (!('data' in op) || op.pasid !== undefined) return err('unsupported');
    if (!isItdPattern(op.data)) return err('unsupported');
    if (!Object.values(ITD).every((off) => this.cpuReaches(fn, 0, off))) return err('unreachable');
    return fn.driverWrite(op.iova, op.data.length).obs;
  }

  /** Whether a CPU access to a function's region at `off` reaches it now (through its root's memory space). */
  private cpuReaches(fn: PciFunction, region: number, off: number): boolean {
    const p = fn.placements[region];
    if (p === null || p === undefined || off >= p.size) return false;
    const d = this.memSpaceOf(fn.root).lookup(p.base + off);
    return d !== null && d.fn === fn && d.region === region;
  }

  /**
   * The translation a DMA takes when a stale one may still be cached
   * (choice translation.stale): what each would observe, a fault or RAM's
   * bytes, tells them apart.
   */
  private staleOrFresh(fresh: Chunk[] | Reason, cached: Chunk[], write: Uint8Array | null, pasid: number | undefined, owner: Ram): Chunk[] | Reason {
    const observe = (c: Chunk[] | Reason): Observation => {
      if (typeof c === 'string') return fault(c, { rule: pasid === undefined ? 'dma.rid-pasid' : 'dma.pasid' });
      // As the rest of deviceDma observes these chunks: beyond RAM a fault, a write ok, a read RAM's bytes.
      if (!c.every((x) => owner.contains(x.gpa, x.len))) return fault('no-memory', { rule: 'dma.memory' });
      if (write !== null) return ok();
      const data = new Uint8Array(c.reduce((n, x) => n + x.len, 0));
      let at = 0;
      for (const x of c) {
        data.set(owner.read(x.gpa, x.len), at);
        at += x.len;
      }
      return ok({ data });
    };
    const pick = this.choose('translation.stale', [
      { option: 'fresh', obs: observe(fresh) },
      { option: 'stale', obs: observe(cached) },
    ]);
    return pick.option === 'stale' ? cached : fresh;
  }

  /**
   * A DMA issued by a device: Bus Master, then translation, then RAM of the
   * root's memory space. `how.master` false: the device does not consult
   * Bus Master Enable (iommu-testdev). `how.blind`: the op's observation
   * does not show this DMA's outcome, so a choice between a stale and a
   * fresh translation cannot be followed: the RAM either reaches becomes
   * unknown, and so does the outcome (observation marked unknown).
   */
  deviceDma(fn: PciFunction, iova: number, len: number, write: Uint8Array | null, pasid: number | undefined, how: DmaHow = CHECKED): Observation {
    const t = this.topology;
    if (how.master && (!fn.busMaster || !this.upstreamMaster(fn))) return fault('bus-master-disabled', { rule: 'dma.bus-master' });
    const domains = this.domains.get(ownerOf(t, fn.root, 'dma'));
    const scalable = this.scalable(fn.root);
    const untagged = { binding: this.untaggedBinding(fn.id), missing: scalable ? this.ridMissing(fn.id) : ('no-domain' as const) };
    let chunks = translateDma(domains, untagged, () => this.pasidContext(fn.id), fn, iova, len, write !== null, pasid);
    // Between a PASID entry's clearing and the IOTLB invalidation it needs, what was cached may still translate.
    const table = pasid === undefined ? this.ridKey(fn.id) : this.pasidContext(fn.id)?.key;
    const old = scalable && domains !== undefined && table !== undefined ? this.stale.lookup(table, pasid ?? 0, iova, len) : null;
    const cached = old === null ? null : domains![old.domain].translate(iova, len, write !== null, old.stage);
    const owner = this.rules.dmaMemoryOwner(t, fn.root);
    let unknown = false;
    if (cached !== null && typeof cached !== 'string') {
      if (how.blind || (write !== null && typeof chunks !== 'string' && !sameChunks(chunks, cached))) {
        // Either translation may write: what each reaches is unknown from now on.
        if (write !== null) for (const c of [...cached, ...(typeof chunks === 'string' ? [] : chunks)]) this.forgetRam(owner, c.gpa, c.len);
        unknown = how.blind;
      } else chunks = this.staleOrFresh(chunks, cached, write, pasid, this.rams.get(owner)!);
    }
    const o = this.landDma(fn, chunks, len, write, pasid, owner);
    if (unknown) o.unknown = true;
    return o;
  }

  /** Where a translated DMA lands: a fault, or RAM of the memory owner (all of it, or nothing beyond RAM). */
  private landDma(fn: PciFunction, chunks: Chunk[] | Reason, len: number, write: Uint8Array | null, pasid: number | undefined, memOwner: number): Observation {
    const scalable = this.scalable(fn.root);
    if (typeof chunks === 'string') return fault(chunks, { rule: pasid !== undefined ? 'dma.pasid' : scalable ? 'dma.rid-pasid' : 'dma.translation' });
    if (chunks.length === 0) return fault('no-memory', { rule: 'dma.memory' }); // an address past 2^53, where no memory is
    const ram = this.rams.get(memOwner)!;
    for (const c of chunks) if (!ram.contains(c.gpa, c.len)) return fault('no-memory', { rule: 'dma.memory' });
    const to: Delivery = { root: memOwner, region: 'ram', offset: chunks[0].gpa };
    if (write !== null) {
      let done = 0;
      for (const c of chunks) {
        ram.write(c.gpa, write.subarray(done, done + c.len));
        done += c.len;
      }
      return ok({ to });
    }
    const data = new Uint8Array(len);
    let done = 0;
    for (const c of chunks) {
      data.set(ram.read(c.gpa, c.len), done);
      done += c.len;
    }
    return ok({ data, to, ...(chunks.some((c) => this.writtenByDevice(memOwner, c.gpa, c.len)) ? { unknown: true } : {}) });
  }

  /** RAM of `owner` at [addr, addr + len) holds what the model cannot know from now on. */
  private forgetRam(owner: number, addr: number, len: number): void {
    let list = this.deviceWritten.get(owner);
    if (list === undefined) this.deviceWritten.set(owner, (list = []));
    if (!list.some(([a, b]) => a <= addr && addr + len <= b)) list.push([addr, addr + len]);
  }

  /**
   * A DMA write as QEMU's address space runs it for iommu-testdev: page by
   * page, each landing or failing on its own, Bus Master not consulted.
   * The reason is the first translation fault (the one VT-d records), else
   * no-memory. A page that misses RAM where something else decodes (a BAR,
   * a reserved range such as the harness's own RAM) makes the outcome
   * unknown: QEMU writes there, the model does not follow.
   */
  pagedWrite(fn: PciFunction, iova: number, data: Uint8Array, blind: boolean): PagedOutcome {
    const owner = this.rules.dmaMemoryOwner(this.topology, fn.root);
    const pages: [number, number][] = [];
    for (let at = 0; at < data.length; ) {
      const n = Math.min(data.length - at, PAGE - ((iova + at) % PAGE));
      pages.push([at, n]);
      at += n;
    }
    // One page: its own observation, choices and all. Several: the stale choice of each page is taken once, for
    // the whole transfer (every page that may use a cached translation uses it, or none does).
    const single = pages.length === 1;
    const how: DmaHow = { master: false, blind: blind || !single };
    const fresh = { translation: null as Observation | null, missed: null as Observation | null };
    const stale = { translation: null as Observation | null, missed: null as Observation | null };
    let cached = false;
    let unknown = false;
    let last: Observation = ok();
    for (const [at, n] of pages) {
      const o = (last = this.deviceDma(fn, iova + at, n, data.subarray(at, at + n), undefined, how));
      // A page with a cached translation (only blind DMA marks it so): taken, it would have landed.
      const mayBeCached = how.blind && o.unknown === true;
      cached ||= mayBeCached;
      if (o.status === 'ok') continue;
      const beyond = o.reason === 'no-memory';
      if (beyond && this.decodedBeyondRam(fn, iova + at, n, owner)) unknown = true;
      for (const f of mayBeCached ? [fresh] : [fresh, stale]) {
        if (!beyond) f.translation ??= o;
        else f.missed ??= o;
      }
    }
    const outcome = (f: typeof fresh): Observation => {
      const failed = f.translation ?? f.missed;
      if (failed === null) return single ? last : ok();
      const { unknown: _, ...rest } = failed;
      return rest;
    };
    let obs = outcome(fresh);
    if (cached && blind) unknown = true;
    else if (cached) obs = this.choose('translation.stale', [
      { option: 'fresh', obs },
      { option: 'stale', obs: outcome(stale) },
    ]).obs;
    return { ok: obs.status === 'ok', unknown, obs: unknown && obs.status !== 'ok' ? { ...obs, unknown: true } : obs };
  }

  /** Whether an untagged DMA of `fn` at [iova, iova + len), translated, reaches something other than RAM that decodes there. */
  private decodedBeyondRam(fn: PciFunction, iova: number, len: number, owner: number): boolean {
    const domains = this.domains.get(ownerOf(this.topology, fn.root, 'dma'));
    const untagged = { binding: this.untaggedBinding(fn.id), missing: 'no-domain' as const };
    const chunks = translateDma(domains, untagged, () => null, fn, iova, len, true, undefined);
    if (typeof chunks === 'string') return false;
    const ram = this.rams.get(owner)!;
    const sp = this.memSpaceOf(owner);
    return chunks.some((c) => !ram.contains(c.gpa, c.len) && (sp.lookup(c.gpa) !== null || sp.lookup(c.gpa + c.len - 1) !== null));
  }

  /** System memory as iommu-testdev's read-back reads it: RAM the model knows, else null. */
  systemRead(fn: PciFunction, gpa: number, len: number): Uint8Array | null {
    const owner = ownerOf(this.topology, fn.root, 'memory');
    const ram = this.rams.get(owner)!;
    if (!ram.contains(gpa, len) || this.writtenByDevice(owner, gpa, len)) return null;
    return ram.read(gpa, len);
  }

  // ---- PASID ----------------------------------------------------------------------

  /** The topology's PASID context key of a device ("owner:index"), or null. */
  contextKey(dev: string): string | null {
    const s = this.devices.get(dev);
    if (s === undefined || s.spec.pasidContext === undefined) return null;
    return `${ownerOf(this.topology, s.root, 'pasid')}:${s.spec.pasidContext}`;
  }

  private pasidContext(dev: string): PasidContext | null {
    const key = this.contextKey(dev);
    if (key === null) return null;
    const ns = this.rules.pasidNamespace(key, dev);
    let c = this.pasid.get(ns);
    // Under scalable mode a context is one table its devices share (VT-d §9.4).
    if (c === undefined) this.pasid.set(ns, (c = new PasidContext(ns, this.scalable(this.devices.get(dev)!.root))));
    return c;
  }

  private pasidOp(op: OpOf<'pasid.alloc' | 'pasid.free' | 'pasid.bind' | 'pasid.unbind' | 'pasid.invalidate'>): Observation {
    const s = this.present(op.dev);
    if (typeof s === 'string') return err(s);
    const ctx = this.pasidContext(op.dev);
    if (ctx === null) return err('no-context');
    const scalable = this.scalable(s.root);
    if (scalable && op.op !== 'pasid.alloc' && op.pasid === 0) return this.ridPasidOp(op, s.root);
    const owner = ownerOf(this.topology, s.root, 'dma');
    switch (op.op) {
      case 'pasid.alloc': {
        const p = ctx.alloc();
        return typeof p === 'string' ? err(p) : ok({ value: BigInt(p) });
      }
      case 'pasid.free': {
        const gone = this.rules.freeUnbinds ? ctx.bindingsOf(op.pasid) : [];
        const r = ctx.free(op.pasid, this.rules.freeUnbinds);
        const lingers = op.clear !== 'zero' && this.rules.pasidPresentIgnoredWhenCached;
        if (r === null && scalable) for (const b of gone) this.stale.cleared(owner, ctx.key, op.pasid, b, lingers);
        return r === null ? ok() : err(r);
      }
      case 'pasid.bind': {
        const d = this.domain(s.root, op.domain);
        if (typeof d === 'string') return err(d);
        const stage = scalable ? this.stageFor(s.root, op.stage) : (op.stage ?? 'second');
        if (stage === null) return err('unsupported');
        const r = ctx.bind(op.dev, op.pasid, { domain: op.domain, stage });
        // A bind invalidates the PASID's caches with its entry.
        if (r === null) this.stale.rewritten(ctx.key, op.pasid);
        return r === null ? ok() : err(r);
      }
      case 'pasid.unbind': {
        const r = ctx.unbind(op.dev, op.pasid);
        if (typeof r === 'string') return err(r);
        if (scalable) this.stale.cleared(owner, ctx.key, op.pasid, r, op.clear !== 'zero' && this.rules.pasidPresentIgnoredWhenCached);
        return ok();
      }
      case 'pasid.invalidate':
        // Scalable mode: an IOTLB invalidation, of any PASID (a freed one's cached translations too).
        if (scalable) {
          this.stale.invalidate(ctx.key, op.pasid, op.iova ?? null);
          return ok();
        }
        // Strict translation: map, unmap, bind and free take effect at once, so there
        // is nothing cached to drop; the PASID must still be live in the context.
        return ctx.isAllocated(op.pasid) ? ok() : err('invalid-pasid');
    }
  }

  /**
   * PASID 0 under scalable mode is RID_PASID (VT-d §9.4): the entry requests
   * without a PASID use, never allocated nor freed, bound by dma.attach or
   * by pasid.bind, and shared by the devices of the context.
   */
  private ridPasidOp(op: OpOf<'pasid.free' | 'pasid.bind' | 'pasid.unbind' | 'pasid.invalidate'>, root: number): Observation {
    const key = this.ridKey(op.dev);
    switch (op.op) {
      case 'pasid.free':
        return err('invalid-pasid');
      case 'pasid.bind': {
        const d = this.domain(root, op.domain);
        if (typeof d === 'string') return err(d);
        const stage = this.stageFor(root, op.stage);
        if (stage === null) return err('unsupported');
        if (this.attached.has(key)) return err('bound');
        this.attached.set(key, op.domain);
        this.ridFields.add(key);
        if (stage === 'first') this.firstStage.add(key);
        else this.firstStage.delete(key);
        this.stale.rewritten(key, 0);
        return ok();
      }
      case 'pasid.unbind': {
        const b = this.untaggedBinding(op.dev);
        if (b === undefined) return err('not-bound');
        this.attached.delete(key);
        if (op.clear === 'zero') this.ridFields.delete(key);
        this.stale.cleared(ownerOf(this.topology, root, 'dma'), key, 0, b, op.clear !== 'zero' && this.rules.pasidPresentIgnoredWhenCached);
        return ok();
      }
      case 'pasid.invalidate':
        this.stale.invalidate(key, 0, op.iova ?? null);
        return ok();
    }
  }

  // ---- emulators --------------------------------------------------------------------

  private emuOp(op: OpOf<'emu.map-bdf' | 'emu.unmap-bdf' | 'emu.map-range' | 'emu.unmap-range'>): Observation {
    const t = this.topology;
    if (op.root >= t.roots.length) return err('no-device');
    if (!(t.emulators ?? []).includes(op.emulator)) return err('no-emulator');
    if ('space' in op && op.space === 'pio' && op.start + op.size > 0x10000) return err('unsupported');
    const r = this.emuChange(op);
    return r === null ? ok() : err(r);
  }

  /** One change to the emulator table that owns the op's space: config for a BDF, memory or IO for a range. */
  private emuChange(op: OpOf<'emu.map-bdf' | 'emu.unmap-bdf' | 'emu.map-range' | 'emu.unmap-range'>): Reason | null {
    const t = this.topology;
    const bdfs = (): EmulatorTable => this.emus.get(ownerOf(t, op.root, 'config'))!;
    const ranges = (space: 'mmio' | 'pio'): EmulatorTable => this.emus.get(space === 'mmio' ? ownerOf(t, op.root, 'memory') : this.rules.ioOwner(t, op.root))!;
    // Each decision is observed: the op's ok or refusal tells the options apart.
    const decide: EmulatorDecide = {
      overlap: () => this.choose('emulator.overlap', EMULATOR_OVERLAP).option === 'newest',
      partialUnmap: () => this.choose('emulator.unmap-partial', EMULATOR_UNMAP_PARTIAL).option === 'split',
    };
    switch (op.op) {
      case 'emu.map-bdf':
        return bdfs().mapBdf(op.bdf, op.emulator, decide);
      case 'emu.unmap-bdf':
        return bdfs().unmapBdf(op.bdf, op.emulator);
      case 'emu.map-range':
        return ranges(op.space).mapRange(op.space, op.start, op.size, op.emulator, decide);
      case 'emu.unmap-range':
        return ranges(op.space).unmapRange(op.space, op.start, op.size, op.emulator, decide);
    }
    return unhandled(op);
  }

  // ---- lifecycle --------------------------------------------------------------------

  /** Creates the function of a slot and puts it on its bus; a root port sees the presence change. */
  private plugSlot(s: DeviceSlot, hot: boolean): void {
    const fn = createFunction(s.spec, s.root, s.uid, s.multifunction, s.port);
    fn.host = this;
    if (fn instanceof Bridge) fn.rules = this.bridgeRules;
    if (s.last !== null) for (const [r, h] of s.last.history) fn.history.set(r, [...h]);
    // Under guestKeepsMappings the guest's p2m still maps where the unplugged function's BARs were: they reach the device again.
    if (s.last !== null && this.rules.guestKeepsMappings) fn.ghosts = s.last.ghosts.filter((g) => g.whileDecoding === true);
    const bus = s.parent === null ? this.rootBuses[s.root] : (this.devices.get(s.parent.id)!.fn as Bridge).secondary;
    // Under guestFirstFreeSlot a plugged function takes its own slot when free (the slots below are filled first), else the lowest free one above.
    if (hot && this.rules.guestFirstFreeSlot && this.guestView[s.root]) while (bus.at(fn.devfn) !== undefined) fn.movedTo = (fn.devfn >> 3) + 1;
    bus.add(fn);
    this.busOf.set(fn, bus);
    s.fn = fn;
    s.last = fn;
    for (const c of s.spec.children ?? []) {
      const cs = this.devices.get(c.id)!;
      if (c.present !== false) this.plugSlot(cs, hot);
    }
    if (fn instanceof Bridge) fn.setPresence(!fn.secondary.empty);
    if (hot) {
      this.attachAsSpecified(s);
      if (bus.upstream instanceof Bridge) bus.upstream.slotEvent(true);
    }
  }

  /**
   * Under guestFirstFreeSlot (Xen's vpci_reset_device and assign_device on a
   * guest: vpci_assign_device → add_virtual_device): the function leaves its
   * slot and takes the lowest free one of the guest's bus.
   */
  private takeFirstFreeSlot(fn: PciFunction): void {
    const bus = this.busOf.get(fn)!;
    bus.remove(fn);
    let slot = 0;
    while (bus.at(slot << 3) !== undefined) slot++;
    fn.movedTo = slot === fn.spec.slot ? null : slot;
    bus.add(fn);
  }

  /**
   * Hot-unplug tears down the function and everything below it: its
   * decode, its INTx, its timers, its IOMMU attachment and its PASID
   * bindings. Mappings of the domain stay (they belong to the domain).
   */
  private unplugSlot(s: DeviceSlot): void {
    const fn = s.fn!;
    if (fn instanceof Bridge) for (const c of fn.secondary.functions()) this.unplugSlot(this.devices.get(c.id)!);
    if (fn.intxRequested) fn.lowerIntx();
    if (this.rules.guestKeepsMappings && this.guestView[s.root]) fn.keepMappings();
    fn.retireAll();
    const bus = this.busOf.get(fn)!;
    bus.remove(fn);
    this.busOf.delete(fn);
    this.timers = this.timers.filter((x) => x.fn !== fn);
    // A PASID table the device shares keeps its RID_PASID entry for the others.
    if (this.ridKey(fn.id) === fn.id) this.attached.delete(fn.id);
    for (const c of this.pasid.values()) c.forget(fn.id);
    s.fn = null;
    if (bus.upstream instanceof Bridge) bus.upstream.slotEvent(false);
  }

  /**
   * Root reset: the host bridge that serves the root's config space
   * resets, and with it every root it serves (roots that share config
   * space, as QEMU's expander roots share the machine's, which
   * system_reset resets as one).
   */
  private resetRoot(r: number): void {
    for (const x of resetReach(this.topology, r)) this.resetOneRoot(x);
  }

  /**
   * One root's reset: every function of the root is reset (as by a hot
   * reset, which bridges propagate downstream), and the state the root
   * owns is torn down: IOMMU mappings, PASID allocations and bindings,
   * emulator claims and the CF8 latch. RAM and hot-plugged devices stay.
   */
  private resetOneRoot(r: number): void {
    const t = this.topology;
    for (const fn of this.rootBuses[r].functions()) fn.reset();
    if (this.guestView[r]) this.rebuildGuestBus(r);
    // What the root's RAM holds after: kept, or zeros where the root is rebuilt (choice root-reset.ram, the profile's).
    if (ownerOf(t, r, 'memory') === r && this.chooseUnseen('root-reset.ram', ROOT_RESET_RAM).option === 'clear') this.rams.get(r)!.clear();
    for (const d of this.domains.get(r) ?? []) d.clear();
    this.stale.resetOwner(r);
    // New tables: only the attachments are written again.
    for (const k of this.ridFields) if (!this.attached.has(k)) this.ridFields.delete(k);
    if (ownerOf(t, r, 'pasid') === r) for (const [k, c] of this.pasid) if (k.startsWith(`${r}:`) || this.ownsNamespace(r, k)) c.clear();
    this.emus.get(r)!.clear();
    this.cf8.delete(r);
  }

  /**
   * A guest root's reset is a new domain (Xen's reboot): a fresh p2m, so
   * no mapping the old one kept (guestKeepsMappings), and the toolstack
   * assigns each present device at its own slot again (guestFirstFreeSlot
   * had moved some).
   */
  private rebuildGuestBus(r: number): void {
    const bus = this.rootBuses[r];
    const moved = bus.functions().filter((fn) => fn.movedTo !== null);
    for (const fn of moved) bus.remove(fn);
    for (const fn of moved) {
      fn.movedTo = null;
      bus.add(fn);
    }
    for (const fn of bus.functions()) fn.ghosts = [];
  }

  /** Whether a per-device namespace (a mutant's) belongs to a device whose PASID owner is r. */
  private ownsNamespace(r: number, key: string): boolean {
    const s = this.devices.get(key);
    return s !== undefined && ownerOf(this.topology, s.root, 'pasid') === r;
  }

  private advanceTo(t: number): void {
    if (t > this.time) this.advance(t - this.time);
  }

  private advance(ns: number): void {
    const target = this.time + ns;
    while (this.timers.length > 0 && this.timers[0].at <= target) {
      const tm = this.timers.shift()!;
      this.time = Math.max(this.time, tm.at);
      tm.run();
    }
    this.time = target;
  }

  // ---- queries for oracles and reports --------------------------------------------

  /** A device's present function, or its last instance after unplug. */
  fnOf(dev: string): PciFunction | null {
    const s = this.devices.get(dev);
    return s === undefined ? null : (s.fn ?? s.last);
  }

  /** The BDF a present device answers at now (its bus number follows the bridges above). */
  bdfOf(dev: string): number | null {
    const s = this.devices.get(dev);
    if (s === undefined || s.fn === null) return null;
    const bus = this.busOf.get(s.fn)!;
    const number = bus.upstream === null ? this.topology.roots[s.root].bus : (bus.upstream as Bridge).secondaryBus;
    return mkBdf(number, s.fn.devfn >> 3, s.spec.fn);
  }

  /** Decoders of the issuing root's memory or IO space that claim addr, winners and losers. */
  claimants(root: number, space: 'memory' | 'io', addr: number): Decoder[] {
    return this.spaceOf(root, space).flat.claimants(addr);
  }

  /** Whether a present device's region decodes addr right now. */
  decodesNow(dev: string, region: number, addr: number): boolean {
    const fn = this.devices.get(dev)?.fn;
    const p = fn?.placements[region];
    return p !== null && p !== undefined && addr >= p.base && addr < p.base + p.size;
  }

  isPresent(dev: string): boolean {
    return this.devices.get(dev)?.fn != null;
  }

  attachedDomain(dev: string): number | undefined {
    return this.attached.get(this.ridKey(dev));
  }

  domainsOf(dmaOwner: number): readonly IommuDomain[] {
    return this.domains.get(dmaOwner) ?? [];
  }

  pasidContextOf(dev: string): PasidContext | null {
    const key = this.contextKey(dev);
    return key === null ? null : (this.pasid.get(this.rules.pasidNamespace(key, dev)) ?? null);
  }

  /** Number of live IOMMU mappings, over all domains. */
  get liveMappings(): number {
    let n = 0;
    for (const ds of this.domains.values()) for (const d of ds) n += d.liveMappings;
    return n;
  }

  // ---- snapshot -----------------------------------------------------------------------

  snapshot(): ModelSnapshot {
    return {
      devices: [...this.devices].map(([id, s]) => [id, s.fn !== null, s.last === null ? null : s.last.snapshot()]),
      attached: [...this.attached],
      firstStage: [...this.firstStage],
      ridFields: [...this.ridFields],
      stale: this.stale.snapshot(),
      deviceWritten: [...this.deviceWritten].map(([r, l]) => [r, l.map(([a, b]) => [a, b] as [number, number])]),
      domains: [...this.domains].map(([r, ds]) => [r, ds.map((d) => d.snapshot())]),
      pasid: [...this.pasid].map(([k, c]) => [k, c.snapshot()]),
      emus: [...this.emus].map(([r, e]) => [r, e.snapshot()]),
      rams: [...this.rams].map(([r, m]) => [r, m.snapshot()]),
      cf8: [...this.cf8],
      time: this.time,
      seq: this.seq,
    };
  }

  /**
   * Restores a snapshot taken from a model of the same topology. Pending
   * device timers are not part of a snapshot: take snapshots between
   * operations with no DMA in flight (clock.step past it first).
   */
  restore(s: ModelSnapshot): void {
    for (const [, slot] of this.devices) if (slot.fn !== null && slot.parent === null) this.unplugSlotQuiet(slot);
    for (const [id, present, fs] of s.devices) {
      const slot = this.devices.get(id)!;
      if (present && slot.fn === null) this.plugSlot(slot, false);
      if (!present && slot.fn !== null) this.unplugSlotQuiet(slot);
      if (fs !== null) {
        const fn = slot.fn ?? createFunction(slot.spec, slot.root, slot.uid, slot.multifunction, slot.port);
        fn.host = this;
        fn.restore(fs);
        slot.last = fn;
      }
    }
    this.attached.clear();
    for (const [k, v] of s.attached) this.attached.set(k, v);
    this.firstStage.clear();
    for (const k of s.firstStage) this.firstStage.add(k);
    this.ridFields.clear();
    for (const k of s.ridFields) this.ridFields.add(k);
    this.stale.restore(s.stale);
    this.deviceWritten.clear();
    for (const [r, l] of s.deviceWritten ?? []) this.deviceWritten.set(r, l.map(([a, b]) => [a, b]));
    for (const [r, ds] of s.domains) this.domains.get(r)!.forEach((d, i) => d.restore(ds[i]));
    this.pasid.clear();
    for (const [k, c] of s.pasid) {
      const ctx = new PasidContext(k, (c as { shared?: boolean }).shared === true);
      ctx.restore(c);
      this.pasid.set(k, ctx);
    }
    for (const [r, e] of s.emus) this.emus.get(r)!.restore(e);
    for (const [r, m] of s.rams) this.rams.get(r)!.restore(m);
    this.cf8.clear();
    for (const [k, v] of s.cf8) this.cf8.set(k, v);
    this.time = s.time;
    this.seq = s.seq;
    this.timers = [];
    this.lines = null;
    for (const sp of [...this.mem.values(), ...this.io.values()]) sp.invalidate();
  }

  private unplugSlotQuiet(s: DeviceSlot): void {
    const irqs = this.irqs;
    this.irqs = null;
    this.unplugSlot(s);
    this.irqs = irqs;
  }
}

export interface ModelSnapshot {
  devices: [string, boolean, ReturnType<PciFunction['snapshot']> | null][];
  attached: [string, number][];
  firstStage: string[];
  ridFields: string[];
  stale: ReturnType<StaleTranslations['snapshot']>;
  /** RAM ranges the model no longer knows, per memory owner (absent in snapshots of older versions). */
  deviceWritten?: [number, [number, number][]][];
  domains: [number, ReturnType<IommuDomain['snapshot']>[]][];
  pasid: [string, unknown][];
  emus: [number, unknown][];
  rams: [number, [number, Uint8Array][]][];
  cf8: [number, number][];
  time: number;
  seq: number;
}
