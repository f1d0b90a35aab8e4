/**
 * Coverage from the reference model: a step observer that names the
 * features (harness/coverage/universe.ts) each step of a replay reaches.
 */
import { vfioFeatures } from './vfio-features.ts';
import type { Model } from '../model/model.ts';
import type { PciFunction } from '../model/function.ts';
import { Bridge, IO_WINDOW, MEM_WINDOW, PREF_WINDOW } from '../model/personalities/bridge.ts';
import { Edu } from '../model/personalities/edu.ts';
import { PciTestdev } from '../model/personalities/pci-testdev.ts';
import { IommuTestdev, ITD } from '../model/personalities/iommu-testdev.ts';
import { PCIE } from '../model/capabilities.ts';
import * as H from '../model/header.ts';
import { ownerOf, type SpaceKind, type Topology } from '../topology/types.ts';
import { isWide, needs, routedIn, writeValue, type Op, type OpOf } from '../ops/catalog.ts';
import { unhandled } from '../ops/exhaustive.ts';
import { spaceOfKind } from '../bus/bar.ts';
import { IsolationHistory } from './isolation-history.ts';
import type { Observation } from '../ops/observation.ts';
import type { StepObserver } from '../oracles/checker.ts';
import type { StepView } from '../oracles/oracle.ts';

const TWO32 = 2 ** 32;

/** Whether root r's space of this kind is shared with another root. */
function shared(t: Topology, r: number, kind: SpaceKind): boolean {
  const o = ownerOf(t, r, kind);
  return t.roots.some((_, i) => i !== r && ownerOf(t, i, kind) === o);
}

/** A function's kind for coverage: its personality, or 'learned' for one isoroot learned from the target. */
function kindOf(m: Model, dev: string): string {
  const spec = m.devices.get(dev)?.spec;
  if (spec === undefined) return 'endpoint';
  return spec.kind === 'opaque' && spec.learned !== undefined ? 'learned' : spec.kind;
}

function routeOutcome(family: 'cfg' | 'mmio' | 'pio', m: Model, p: Observation, ecam: boolean): string {
  if (p.status === 'error') return 'error';
  // Any access through the ECAM window is a config access, answered or not.
  if (ecam) return 'ecam';
  const to = p.to;
  if (to === undefined) return p.status;
  if (to.via !== undefined) return to.dev !== undefined ? 'emu-dev' : 'emu-none';
  if (to.region === 'ram' || to.region === 'cf8') return to.region;
  if (to.dev === undefined) return family === 'cfg' ? p.status : 'ma';
  const kind = kindOf(m, to.dev);
  if (family === 'cfg') return `dev:${kind}`;
  if (to.region === 'cfg') return 'cfc';
  return `${kind}.${to.region === 'rom' ? 'rom' : 'bar'}`;
}

/** Operations whose coverage is their outcome (a driver's call, a lifecycle event), not a route. */
type EventKind = 'dma.map' | 'dma.unmap' | 'dma.attach' | 'dma.detach' | 'pasid.alloc' | 'pasid.free' | 'pasid.bind' | 'pasid.unbind' | 'pasid.invalidate' | 'emu.map-bdf' | 'emu.unmap-bdf' | 'emu.map-range' | 'emu.unmap-range' | 'dev.plug' | 'dev.unplug' | 'dev.reset' | 'root.reset';

export class CoverageTracker implements StepObserver {
  readonly features = new Set<string>();
  /** The step (0-based) at which each feature was first reached: which part of a long run reached it. */
  readonly firstAt = new Map<string, number>();
  private steps = 0;
  /** Last seen BAR bases per device, to tell moves and disables. */
  private bases = new Map<string, Map<number, number>>();
  private counters = new Map<string, string>();
  private freeWasBound = false;
  private readonly history = new IsolationHistory((f) => this.add(f));
  /**
   * State features (command register, BAR placements, bridge windows) a
   * device is in but that no operation has looked at yet, by device and by
   * what they describe ('cmd', a BAR's region, a window): a newer state of
   * the same thing replaces an unobserved one.
   */
  private readonly unseen = new Map<string, Map<string, string[]>>();

  private add(f: string): void {
    if (this.features.has(f)) return;
    this.features.add(f);
    this.firstAt.set(f, this.steps);
  }

  /** A state the device is now in: it counts once an operation observes the device (observed()). */
  private state(dev: string, what: string, features: string[]): void {
    let m = this.unseen.get(dev);
    if (m === undefined) this.unseen.set(dev, (m = new Map()));
    m.set(what, features);
  }

  /** An operation looked at the device: its config read back, or an access it decoded; its states count. */
  private observed(dev: string): void {
    const m = this.unseen.get(dev);
    if (m === undefined) return;
    for (const fs of m.values()) for (const f of fs) this.add(f);
    this.unseen.delete(dev);
  }

  before(op: Op, m: Model): void {
    this.freeWasBound = op.op === 'pasid.free' && (m.pasidContextOf(op.dev)?.boundBy(op.pasid).length ?? 0) > 0;
  }

  after(v: StepView): void {
    const { op, predicted: p, model: m } = v;
    const involved = new Set<string>();
    if (p.to?.dev !== undefined) involved.add(p.to.dev);
    if ('dev' in op) involved.add(op.dev);
    this.byKind(op, p, m, involved);
    this.history.step(op, p, m);
    // A write through config space unmasks; so does a write to an MSI-X table (from offset 0x1000 of its BAR).
    const write = writeValue(op) !== null;
    for (const irq of p.irqs ?? []) {
      // Platform lines are derived from the functions' pins, which are counted.
      if (irq.dev === undefined) continue;
      if (irq.kind === 'intx') this.add(`irq:intx:${irq.level === 1 ? 'assert' : 'deassert'}`);
      else {
        const unmask = (write && routedIn(op, 'config')) || (irq.kind === 'msix' && write && routedIn(op, 'memory') && (p.to?.offset ?? 0) >= 0x1000);
        this.add(`irq:${irq.kind}:${unmask ? 'unmask' : 'sent'}`);
      }
      if (needs(op, 'hotplug') && m.devices.get(irq.dev)?.spec.kind === 'root-port') this.add('life:hotplug-irq');
    }
    // Operations with effects beyond the devices they name: look at everything (a bridge's control register reaches below it too).
    const global = isWide(op) || (write && routedIn(op, 'config') && op.reg <= H.BRIDGE_CONTROL && op.reg + op.size > H.BRIDGE_CONTROL);
    const devs = global ? [...m.devices.keys()] : [...involved];
    for (const id of devs) this.device(m, id, op);
    this.observe(op, p, m);
    this.steps++;
  }

  /**
   * What the operation observed: a config read shows the function's
   * registers; a memory or IO access it decoded shows its BARs and command
   * register, and the windows and command registers of the bridges it
   * came through (a write too: it was taken, not aborted).
   */
  private observe(op: Op, p: Observation, m: Model): void {
    const dev = p.to?.dev;
    if (dev === undefined || p.status !== 'ok') return;
    if (p.to!.region === 'cfg') {
      // A read of config space, however it got there (a config op, ECAM, CFC).
      if (writeValue(op) === null && (routedIn(op, 'config') || routedIn(op, 'memory') || routedIn(op, 'io'))) this.observed(dev);
      return;
    }
    if (!routedIn(op, 'memory') && !routedIn(op, 'io')) return;
    for (let s = m.devices.get(dev); s !== undefined; s = s.parent === null ? undefined : m.devices.get(s.parent.id)) {
      // A window's shape is as the access found it (what lies inside may have changed since the bridge was written).
      if (s.fn instanceof Bridge) this.windows(m, s.fn);
      this.observed(s.spec.id);
    }
  }

  /** What the kind of operation reached: its route, its outcome, the device state it wrote. */
  private byKind(op: Op, p: Observation, m: Model, involved: Set<string>): void {
    switch (op.op) {
      case 'cfg.read':
        this.cfgRoute(op, p, m);
        return;
      case 'cfg.write':
        this.cfgRoute(op, p, m);
        if (p.to?.dev !== undefined) this.configWrite(m.fnOf(p.to.dev), op.reg, op.size, Number(op.value), involved);
        return;
      case 'mmio.read':
      case 'pio.read':
        this.busRoute(op, p, m);
        return;
      case 'mmio.write':
      case 'pio.write':
        this.busRoute(op, p, m);
        if (p.to?.dev !== undefined && p.to.offset !== undefined) this.deviceWrite(m, p.to.dev, routedIn(op, 'memory') ? 'mmio' : 'pio', p.to.offset, op.value);
        return;
      case 'dma.read':
      case 'dma.write':
        this.dmaRoute(op, p, m);
        return;
      case 'dma.map':
      case 'dma.unmap':
      case 'dma.attach':
      case 'dma.detach':
      case 'pasid.alloc':
      case 'pasid.free':
      case 'pasid.bind':
      case 'pasid.unbind':
      case 'pasid.invalidate':
      case 'emu.map-bdf':
      case 'emu.unmap-bdf':
      case 'emu.map-range':
      case 'emu.unmap-range':
      case 'dev.plug':
      case 'dev.unplug':
      case 'dev.reset':
      case 'root.reset':
        this.event(op, p, m);
        return;
      // Region accesses and time count through the device states they change (below).
      case 'region.read':
      case 'region.write':
      case 'clock.step':
        return;
      // What is left are Linux VFIO's ops, with features of their own (universe.ts VFIO_EVENTS).
      default:
        for (const f of vfioFeatures(op, p, m)) this.add(f);
        return;
    }
  }

  private cfgRoute(op: OpOf<'cfg.read' | 'cfg.write'>, p: Observation, m: Model): void {
    const o = routeOutcome('cfg', m, p, false);
    this.add(`route:cfg:${o}`);
    if (o !== 'error') this.add(`pair:cfg:${o}:${shared(m.topology, op.root, 'config') ? 'shared' : 'isolated'}`);
    this.add(`cfgvia:${op.via}:${p.to?.dev !== undefined ? 'hit' : 'miss'}`);
  }

  private busRoute(op: OpOf<'mmio.read' | 'mmio.write' | 'pio.read' | 'pio.write'>, p: Observation, m: Model): void {
    const fam = routedIn(op, 'memory') ? 'mmio' : 'pio';
    const o = routeOutcome(fam, m, p, 'addr' in op && m.memSpaceOf(op.root).lookup(op.addr)?.kind === 'ecam');
    this.add(`route:${fam}:${o}`);
    this.add(`pair:${fam}:${o}:${shared(m.topology, op.root, fam === 'mmio' ? 'memory' : 'io') ? 'shared' : 'isolated'}`);
  }

  private dmaRoute(op: OpOf<'dma.read' | 'dma.write'>, p: Observation, m: Model): void {
    const t = m.topology;
    const o = p.status === 'ok' ? (op.pasid !== undefined ? 'ok-pasid' : 'ok') : p.status === 'fault' ? `fault:${p.reason}` : 'error';
    this.add(`route:dma:${o}`);
    const s = m.devices.get(op.dev);
    if (s !== undefined && p.status !== 'error') {
      const owner = t.roots[ownerOf(t, s.root, 'dma')];
      const scalable = owner.iommu === true && owner.scalable !== undefined;
      const mode = op.pasid !== undefined ? 'pasid' : scalable ? 'rid-pasid' : owner.iommu === true ? 'domain' : 'identity';
      this.add(`pair:dma:${o}:${mode}`);
      if (scalable && s.spec.pasidContext !== undefined) this.add('scalable:shared-dma');
    }
    if (p.choice?.id === 'translation.stale') this.add(p.choice.option === 'stale' ? 'scalable:stale-taken' : 'scalable:stale-allowed');
  }

  private configWrite(fn: PciFunction | null, reg: number, size: number, value: number, involved: Set<string>): void {
    if (fn === null) return;
    const kind = fn.spec.kind === 'opaque' && fn.spec.learned !== undefined ? 'learned' : fn.spec.kind;
    if (reg <= H.COMMAND && reg + size > H.COMMAND) this.state(fn.id, 'cmd', [`cmd:${kind}:${(fn.command & 7).toString(2).padStart(3, '0')}`]);
    const pcie = fn.caps.pcie;
    const hi = pcie === undefined ? -1 : pcie.off + PCIE.DEVCTL + 1;
    if (pcie?.flr === true && reg <= hi && hi < reg + size && ((value >>> (8 * (hi - reg))) & 0x80) !== 0) this.add('life:flr');
    if (fn instanceof Bridge) {
      if (reg <= H.BRIDGE_CONTROL && reg + size > H.BRIDGE_CONTROL && ((value >>> (8 * (H.BRIDGE_CONTROL - reg))) & H.BRCTL_SEC_BUS_RESET) !== 0) this.add('life:sec-bus-reset');
      for (const c of fn.secondary.functions()) involved.add(c.id);
    }
  }

  private deviceWrite(m: Model, dev: string, fam: 'mmio' | 'pio', off: number, value: bigint): void {
    const kind = m.devices.get(dev)?.spec.kind;
    if (kind === 'edu') {
      const ev: Record<number, string> = { 0x04: 'liveness', 0x08: 'factorial', 0x60: 'raise', 0x64: 'ack' };
      if (ev[off] !== undefined) this.add(`edu:${ev[off]}`);
      if (off === 0x98 && (value & 1n) === 1n) this.add('edu:dma-start');
    }
    if (kind === 'pci-testdev' && off === 0) this.add(`testdev:select-${fam === 'mmio' ? 'mmio' : 'io'}`);
    if (kind === 'iommu-testdev' && off === ITD.doorbell && (value & 1n) === 1n) this.add('itd:arm');
  }

  private event(op: OpOf<EventKind>, p: Observation, m: Model): void {
    const ok = p.status === 'ok';
    const r = p.reason;
    switch (op.op) {
      case 'dma.map':
        if (ok) {
          this.add('iommu:map');
          const n = m.domainsOf(ownerOf(m.topology, op.root, 'dma'))[op.domain]?.liveMappings ?? 0;
          this.add(`iommu:mappings:${n <= 1 ? '1' : n <= 4 ? '2-4' : '5+'}`);
        } else if (r === 'exists' || r === 'align') this.add(`iommu:map-${r}`);
        return;
      case 'dma.unmap':
        if (ok || r === 'partial' || r === 'not-mapped') this.add(ok ? 'iommu:unmap' : `iommu:unmap-${r}`);
        return;
      case 'dma.attach':
        if (ok || r === 'busy') this.add(ok ? 'iommu:attach' : 'iommu:attach-busy');
        return;
      case 'dma.detach':
        if (ok || r === 'no-domain') this.add(ok ? 'iommu:detach' : 'iommu:detach-none');
        return;
      case 'pasid.alloc':
        if (ok) {
          this.add('pasid:alloc');
          if ((p.value ?? 0n) >= 2n) this.add('pasid:alloc-second');
        } else if (r === 'no-context') this.add('pasid:no-context');
        return;
      case 'pasid.free':
        if (ok) this.add(this.freeWasBound ? 'pasid:free-bound' : 'pasid:free');
        else if (r === 'invalid-pasid') this.add('pasid:free-invalid');
        return;
      case 'pasid.bind':
        if (ok || r === 'bound' || r === 'invalid-pasid') this.add(ok ? 'pasid:bind' : r === 'bound' ? 'pasid:bind-bound' : 'pasid:bind-invalid');
        if (r === 'unsupported') this.add('scalable:bind-unsupported');
        else if (ok && op.stage !== undefined) this.add(`scalable:bind-${op.stage}`);
        return;
      case 'pasid.unbind':
        if (ok || r === 'not-bound') this.add(ok ? 'pasid:unbind' : 'pasid:unbind-not-bound');
        if (ok && op.pasid === 0) this.add(`scalable:unbind-${op.clear ?? 'present'}`);
        return;
      case 'pasid.invalidate':
        if (ok || r === 'invalid-pasid') this.add(ok ? 'pasid:invalidate' : 'pasid:invalidate-invalid');
        if (ok && op.pasid === 0) this.add(op.iova === undefined ? 'scalable:invalidate-pasid' : 'scalable:invalidate-page');
        return;
      case 'emu.map-bdf':
      case 'emu.unmap-bdf':
      case 'emu.map-range':
      case 'emu.unmap-range': {
        if (r === 'no-emulator') return this.add('emu:no-emulator');
        const what = op.op.slice(4);
        if (ok) this.add(`emu:${what}`);
        else if (r === 'busy') this.add(`emu:${what}-busy`);
        else if (r === 'not-registered') this.add(`emu:${what}-none`);
        return;
      }
      case 'dev.plug':
        if (ok) {
          this.add('life:plug');
          if (m.devices.get(op.dev)?.parent?.kind === 'root-port') this.add('life:plug-slot');
        } else if (r === 'present') this.add('life:plug-present');
        return;
      case 'dev.unplug':
        if (ok || r === 'not-present') this.add(ok ? 'life:unplug' : 'life:unplug-absent');
        return;
      case 'dev.reset':
        if (ok) this.add('life:reset');
        return;
      case 'root.reset':
        if (ok) this.add('life:root-reset');
        return;
    }
    unhandled(op);
  }

  /** BAR classes, bridge windows, interrupt states and device counters of one device after a step. */
  private device(m: Model, id: string, op: Op): void {
    const fn = m.devices.get(id)?.fn ?? null;
    const last = this.bases.get(id) ?? new Map<number, number>();
    if (fn === null) {
      // Unplugged: its BARs stopped decoding where they last were (the slot keeps the last instance's definitions).
      const gone = m.devices.get(id)?.last ?? null;
      if (gone !== null) for (const [region, was] of last) if (gone.bars[region] !== undefined) this.history.gone(op, spaceOfKind(gone.bars[region]!.kind), gone.root, was, gone.bars[region]!.size);
      if (last.size > 0) this.bases.set(id, new Map());
      return;
    }
    const now = new Map<number, number>();
    const parent = m.devices.get(id)!.parent;
    for (const [region, def] of fn.bars.entries()) {
      if (def === undefined) continue;
      const p = fn.placements[region];
      const kind = def.kind;
      if (p === null || p === undefined) {
        const was = last.get(region);
        if (was !== undefined) {
          this.state(id, `bar${region}`, [`bar:${kind}:off`]);
          this.history.gone(op, spaceOfKind(kind), fn.root, was, def.size);
        }
        continue;
      }
      now.set(region, p.base);
      const was = last.get(region);
      const moved = was !== undefined && was !== p.base;
      if (moved) this.history.moved(spaceOfKind(kind), fn.root, was, p.base, p.size);
      if (was === p.base) continue;
      const fs = [`bar:${kind}:${p.base >= TWO32 ? 'high' : 'low'}`];
      if (moved) fs.push(`bar:${kind}:moved`);
      this.state(id, `bar${region}`, fs);
      if (kind === 'rom') continue;
      const space = spaceOfKind(kind);
      const sp = m.spaceOf(fn.root, space);
      const claimed = sp.flat.claimedBytes(fn, region);
      if (m.claimants(fn.root, space, p.base).filter((d) => d.kind === 'bar').length >= 2) fs.push(`bar:${kind}:overlap`);
      if (parent !== null && claimed > 0) fs.push(`bar:${kind}:below-bridge`);
      if (claimed > 0 && claimed < p.size) {
        fs.push(`bar:${kind}:clipped`);
        if (parent !== null) fs.push(`window:${kind === 'io' ? 'io' : kind === 'mem64' ? 'pref' : 'mem'}:short`);
      }
    }
    this.bases.set(id, now);
    if (fn instanceof Bridge) this.windows(m, fn);
    if (fn.messagesPending) this.add(fn.msixEnabled() ? 'irq:msix:pending' : 'irq:msi:pending');
    if (fn.intxRequested && (fn.command & H.CMD_INTX_DISABLE) !== 0) this.add('irq:intx:disabled');
    this.counters.set(id, this.counted(fn, this.counters.get(id)));
  }

  private windows(m: Model, b: Bridge): void {
    const cmd = b.command;
    const shapes: [string, number, boolean][] = [
      ['io', IO_WINDOW, (cmd & H.CMD_IO) !== 0],
      ['mem', MEM_WINDOW, (cmd & H.CMD_MEMORY) !== 0],
      ['pref', PREF_WINDOW, (cmd & H.CMD_MEMORY) !== 0],
    ];
    for (const [name, region, enabled] of shapes) {
      if (!enabled) continue;
      const p = b.placements[region];
      // Enabled but not decoding: the limit is below the base (Bridge 1.2 §3.2.5.6).
      if (p === null || p === undefined) {
        this.state(b.id, `window:${name}`, [`window:${name}:closed`]);
        continue;
      }
      const space = m.spaceOf(b.root, spaceOfKind(name));
      const inside = b.secondary.functions().some((f) => f.bars.some((d) => d !== undefined && (d.kind === 'io') === (name === 'io') && space.flat.claimedBytes(f, d.region) > 0));
      this.state(b.id, `window:${name}`, [`window:${name}:${inside ? 'open' : 'empty'}`]);
    }
  }

  /** Device counters (edu's DMA engine, pci-testdev's counts): a change is an event. */
  private counted(fn: PciFunction, before: string | undefined): string {
    if (fn instanceof Edu) {
      const s = fn.stats;
      const now = `${s.toRam}/${s.fromRam}/${s.skipped}`;
      if (before !== undefined && before !== now) {
        const [a, b, c] = before.split('/').map(Number);
        if (s.toRam > a) this.add('edu:dma-to-ram');
        if (s.fromRam > b) this.add('edu:dma-from-ram');
        if (s.skipped > c) this.add('edu:dma-skipped');
      }
      return now;
    }
    if (fn instanceof IommuTestdev) {
      const now = String(fn.triggers);
      if (before !== undefined && before !== now) this.add('itd:trigger');
      return now;
    }
    if (fn instanceof PciTestdev) {
      const now = `${fn.countTotal}/${fn.swallowed}`;
      if (before !== undefined && before !== now) {
        const [a, b] = before.split('/').map(Number);
        if (fn.countTotal !== a) this.add('testdev:count');
        if (fn.swallowed > b) this.add('testdev:swallow');
      }
      return now;
    }
    return '';
  }
}
