/**
 * One sequence on a live QEMU. Config, MMIO and PIO ops are pipelined
 * (all commands of a segment written, then all replies read); an op whose
 * next step depends on a reply (DMA, the IOMMU, waiting for edu's
 * factorial) ends a segment and runs interactively. QEMU that stops
 * answering, goes away or breaks the protocol ends the session with a
 * hang or crash failure.
 */
import { isDialogue, maySignal, routedIn, writeValue, type DialogueKind, type Op, type OpOf } from '../../ops/catalog.ts';
import { unhandled } from '../../ops/exhaustive.ts';
import type { Irq, Observation } from '../../ops/observation.ts';
import { ECAM_BUSES, walkDevices, type Topology } from '../../topology/types.ts';
import { applyOne, type RunResult, type Session, type TargetFailure } from '../target.ts';
import { ownRefusal, planAccess, refused, type Planned } from './access.ts';
import { eduDma, type DmaContext } from './dma.ts';
import { mayStartFactorial, settleFactorial } from './edu.ts';
import { isTestdevLength, mayOverreachLength, testdevDma } from './iommu-testdev.ts';
import { isItdPattern } from '../../model/personalities/iommu-testdev.ts';
import type { Iommu } from './iommu.ts';
import type { Presence } from './presence.ts';
import type { QemuProcess } from './process.ts';
import { QmpError } from './qmp.ts';
import { QtestError } from './qtest.ts';
import { flatViews } from './mtree.ts';
import type { EventLog } from './events.ts';
import { eject, plug, portSlotOf, presentDevices, SLOT_CONTROL } from './hotplug.ts';
import type { InterruptWatch } from './interrupts.ts';

export interface SessionContext {
  q: QemuProcess;
  topology: Topology;
  presence: Presence;
  dma: DmaContext;
  iommu: Iommu | null;
  /** The process's interrupt lines and MSI window. */
  irqs: InterruptWatch;
  /** QEMU's trace events, when asked for. */
  events: EventLog | null;
  timeoutMs: number;
  /** Evidence (QEMU's flat views) after every this many ops and after each run; 0: none. */
  mapsEvery: number;
  /** Ends the process after a failure (it is not reused) and describes the failure. */
  fail(kind: TargetFailure['kind'], index: number, message: string): Promise<TargetFailure>;
  /** Virtual time is about to run: device buffers may change. */
  clockRuns(): void;
  /** A write may have reached config bytes past the header, which no reset restores (kept-config.ts): at these dwords, or anywhere (null). */
  keptConfigWritten(dwords: number[] | null): void;
  /** A device was plugged or removed: the process no longer matches the topology's start. */
  presenceChanges(): void;
  /** root.reset: QMP system_reset, then the platform set up again as firmware would (ECAM, the IOMMU driver). */
  resetMachine(): Promise<void>;
}


/**
 * A write that may reach a root port's Slot Control, where a sequence can
 * eject a device itself: a config write there, a write to CONFIG_DATA
 * (whatever the latch holds), or an MMIO write into ECAM at that offset.
 */
function touchesSlotControl(op: Op, ecam: number | null): boolean {
  return writesConfigIn(op, ecam, (reg, size) => reg < SLOT_CONTROL + 2 && reg + size > SLOT_CONTROL);
}

/**
 * The config dwords past the standard header (0x40 on) that a write may
 * reach, which a machine reset leaves as written: none, those of its
 * register, or any (null: a write to CONFIG_DATA, whose register is the latch's).
 */
function keptConfigDwords(op: Op, ecam: number | null): number[] | null {
  const past = (reg: number, size: number): boolean => reg + size > 0x40;
  if (!writesConfigIn(op, ecam, past)) return [];
  const at = routedIn(op, 'config') ? op.reg : routedIn(op, 'memory') ? op.addr & 0xfff : null;
  if (at === null || !('size' in op)) return null;
  const out: number[] = [];
  for (let d = Math.max(0x40, at) & ~3; d < at + op.size; d += 4) out.push(d);
  return out;
}

/** A config write whose register `hits` says yes, a write to CONFIG_DATA (whatever the latch holds), or an MMIO write into ECAM at such an offset. */
function writesConfigIn(op: Op, ecam: number | null, hits: (reg: number, size: number) => boolean): boolean {
  if (writeValue(op) === null) return false;
  if (routedIn(op, 'config')) return hits(op.reg, op.size);
  if (routedIn(op, 'io')) return op.port + op.size > 0xcfc && op.port < 0xd00;
  return routedIn(op, 'memory') && ecam !== null && op.addr >= ecam && op.addr < ecam + ECAM_BUSES * 0x100000 && hits(op.addr & 0xfff, op.size);
}

const withIrqs = (o: Observation, irqs: Irq[]): Observation => (irqs.length > 0 ? { ...o, irqs } : o);

const describe = (cmd: string | undefined): string => (cmd === undefined ? '' : ` (${cmd})`);

/** What went wrong while talking to QEMU, as a failure kind: no answer is a hang, anything else a crash. */
function troubleKind(e: QtestError | QmpError, q: QemuProcess): TargetFailure['kind'] {
  if (!q.alive) return 'crash';
  if (e instanceof QtestError) return e.trouble === 'hang' ? 'hang' : 'crash';
  return e.errorClass === 'Disconnected' && e.desc.startsWith('no answer') ? 'hang' : 'crash';
}

export class QemuSession implements Session {
  private broken: TargetFailure | null;
  private readonly edus: string[];
  private readonly itds: string[];
  /** Ops run in this session so far (evidence falls on multiples of mapsEvery). */
  private done = 0;
  /** A Slot Control write may have ejected a device since presence was last brought up to date. */
  private slotsTouched = false;

  constructor(
    private readonly x: SessionContext | null,
    startFailure: TargetFailure | null,
  ) {
    this.broken = startFailure;
    const ids = (kind: string): string[] => (x === null ? [] : [...walkDevices(x.topology)].filter((w) => w.dev.kind === kind).map((w) => w.dev.id));
    this.edus = ids('edu');
    this.itds = ids('iommu-testdev');
  }

  apply(op: Op): Promise<Observation> {
    return applyOne(this, op);
  }

  async close(): Promise<void> {}

  /** dma.read / dma.write: edu's engine, and iommu-testdev's writes of its pattern (the model refuses the rest too). */
  private async dma(x: SessionContext, op: OpOf<'dma.read' | 'dma.write'>): Promise<Observation> {
    const bad = x.presence.problem(op.dev);
    if (bad !== null) return ownRefusal(bad);
    const dev = [...walkDevices(x.topology)].find((w) => w.dev.id === op.dev)!.dev;
    if (dev.kind === 'iommu-testdev' && op.op === 'dma.write' && op.pasid === undefined) return isItdPattern(op.data) ? testdevDma(x.dma, dev.id, op, x.iommu) : ownRefusal('unsupported');
    if (dev.kind !== 'edu' || op.pasid !== undefined) return ownRefusal('unsupported');
    x.clockRuns();
    return eduDma(x.dma, dev.id, op, this.edus, x.iommu);
  }

  /** Takes in the devices QEMU removed (an eject through Slot Control) since presence was last up to date. */
  private async syncPresence(x: SessionContext, force = false): Promise<void> {
    if (!this.slotsTouched && !force) return;
    this.slotsTouched = false;
    const held = await presentDevices(x.q, x.timeoutMs);
    for (const id of x.presence.gone(held)) {
      x.presence.set(id, false);
      x.iommu?.forget(id);
      x.presenceChanges();
    }
  }

  private async plug(x: SessionContext, op: OpOf<'dev.plug'>): Promise<Observation> {
    const bad = x.presence.problem(op.dev);
    if (bad === 'no-device') return ownRefusal(bad);
    if (bad === null) return ownRefusal('present');
    const s = portSlotOf(x.topology, op.dev);
    if (s === null) return ownRefusal('unsupported');
    x.presenceChanges();
    const r = await plug(x.q, x.topology, s, x.timeoutMs);
    // QEMU's own words travel with a refusal, as evidence for the reader.
    if (r !== 'ok') return r === 'busy' ? refused('busy') : { ...refused('unsupported'), evidence: { events: [`device_add: ${r.refused}`] } };
    x.presence.set(op.dev, true);
    x.iommu?.plugged(s.dev);
    return { status: 'ok' };
  }

  private async unplug(x: SessionContext, op: OpOf<'dev.unplug'>): Promise<Observation> {
    const bad = x.presence.problem(op.dev);
    if (bad !== null) return ownRefusal(bad);
    const s = portSlotOf(x.topology, op.dev);
    if (s === null) return ownRefusal('unsupported');
    x.presenceChanges();
    if ((await eject(x.q, s, x.timeoutMs)) === 'unreachable') return ownRefusal('unreachable');
    await this.syncPresence(x, true);
    return x.presence.problem(op.dev) === 'not-present' ? { status: 'ok' } : refused('unsupported');
  }

  /** An op that is a dialogue with QEMU (the catalog's `dialogue`): each step waits for the last one's answer. */
  private async interactive(x: SessionContext, op: OpOf<DialogueKind>): Promise<Observation> {
    switch (op.op) {
      case 'root.reset':
        // One machine: every root shares the host bridge, so a reset of any resets them all.
        if (op.root >= x.topology.roots.length) return ownRefusal('no-device');
        await x.resetMachine();
        return { status: 'ok' };
      case 'dev.plug':
        await this.syncPresence(x);
        return this.plug(x, op);
      case 'dev.unplug':
        await this.syncPresence(x);
        return this.unplug(x, op);
      case 'dma.read':
      case 'dma.write':
        await this.syncPresence(x);
        return this.dma(x, op);
      case 'dma.map':
      case 'dma.unmap':
        await this.syncPresence(x);
        if (x.iommu !== null) return x.iommu.apply(op);
        // No IOMMU: refused as the model refuses, in its order of checks.
        return ownRefusal(op.root >= x.topology.roots.length ? 'no-device' : 'no-iommu');
      case 'dma.attach':
      case 'dma.detach':
        await this.syncPresence(x);
        if (x.iommu !== null) return x.iommu.apply(op);
        return ownRefusal(x.presence.problem(op.dev) ?? (op.op === 'dma.attach' ? 'no-iommu' : 'no-domain'));
      case 'pasid.alloc':
      case 'pasid.free':
      case 'pasid.bind':
      case 'pasid.unbind':
      case 'pasid.invalidate':
        await this.syncPresence(x);
        // PASID contexts exist only as scalable-mode tables; elsewhere, refused as the model refuses.
        return x.iommu?.pasid(op) ?? ownRefusal(x.presence.problem(op.dev) ?? 'no-context');
      // No function-level reset op.
      case 'dev.reset':
      case 'vfio.dma':
        return ownRefusal('unsupported');
    }
    return unhandled(op);
  }

  /**
   * The interrupts since the last op's: the MSI window read now, and every
   * notice before its reply (QMP commands print theirs to the qtest stream
   * before QEMU reads the next qtest command).
   */
  private async interruptsSoFar(x: SessionContext): Promise<Irq[]> {
    const [window] = await x.q.qtest.call([x.irqs.read], x.timeoutMs);
    return x.irqs.observe(x.q.qtest.takeIrqs(), window);
  }

  async run(ops: readonly Op[]): Promise<RunResult> {
    const observations: Observation[] = [];
    const x = this.x;
    if (this.broken !== null || x === null) return { observations, failure: { ...this.broken!, index: 0 } };
    const stop = async (kind: TargetFailure['kind'], index: number, message: string): Promise<RunResult> => {
      this.broken = await x.fail(kind, index, message);
      return { observations, failure: this.broken };
    };
    const every = x.mapsEvery;
    /** Attaches to the observation of op i-1 the trace events QEMU logged since the last batch, and its flat views when they are due. */
    const evidence = async (i: number, last: boolean): Promise<RunResult | null> => {
      const events = x.events?.take() ?? [];
      if (i > 0 && events.length > 0) observations[i - 1] = { ...observations[i - 1], evidence: { ...observations[i - 1].evidence, events } };
      if (every <= 0 || i === 0 || (!last && (this.done + i) % every !== 0)) return null;
      try {
        const maps = await flatViews(x.q.qmp, x.topology.roots[0].reserved ?? [], x.timeoutMs);
        observations[i - 1] = { ...observations[i - 1], evidence: { ...observations[i - 1].evidence, maps } };
        return null;
      } catch (e) {
        if (!(e instanceof QmpError)) throw e;
        return stop(troubleKind(e, x.q), i - 1, `info mtree -f: ${e.message}`);
      }
    };
    let i = 0;
    while (i < ops.length) {
      const op = ops[i];
      // A length isoroot does not let iommu-testdev take (rule harness.itd-length), where QEMU's flat view puts one.
      if (this.itds.length > 0 && mayOverreachLength(op) && op.op === 'mmio.write') {
        let refuse: boolean;
        try {
          refuse = await isTestdevLength(x.dma, op.addr, this.itds);
        } catch (e) {
          if (!(e instanceof QtestError || e instanceof QmpError)) throw e;
          return stop(troubleKind(e, x.q), i, e.message);
        }
        if (refuse) {
          observations.push(ownRefusal('unsupported'));
          i++;
          const failed = await evidence(i, i === ops.length);
          if (failed !== null) return failed;
          continue;
        }
      }
      if (isDialogue(op)) {
        try {
          observations.push(withIrqs(await this.interactive(x, op), await this.interruptsSoFar(x)));
        } catch (e) {
          if (!(e instanceof QtestError || e instanceof QmpError)) throw e;
          return stop(troubleKind(e, x.q), i, e.message);
        }
        i++;
        const failed = await evidence(i, i === ops.length);
        if (failed !== null) return failed;
        continue;
      }
      // A pipelined segment: up to an interactive op, or up to and including one that needs settling.
      // Each op that may send a message reads the MSI window after it; its interrupt notices come before its last reply (end).
      const seg: { plan: Planned | Observation; at: number; watch: boolean; end: number }[] = [];
      const cmds: string[] = [];
      const first = x.q.qtest.sent;
      let settle = false;
      let due = false;
      for (; i < ops.length && !settle && !due && !isDialogue(ops[i]) && !(seg.length > 0 && this.itds.length > 0 && mayOverreachLength(ops[i])); i++) {
        const plan = planAccess(ops[i], x.topology) ?? ownRefusal('unsupported');
        if (touchesSlotControl(ops[i], x.dma.ecam)) this.slotsTouched = true;
        const kept = keptConfigDwords(ops[i], x.dma.ecam);
        if (kept === null || kept.length > 0) x.keptConfigWritten(kept);
        settle = mayStartFactorial(ops[i]);
        // A factorial's interrupt comes after it settles: its window is read then.
        const watch = 'cmds' in plan && maySignal(ops[i]) && !settle;
        if ('cmds' in plan) cmds.push(...plan.cmds);
        if (watch) cmds.push(x.irqs.read);
        seg.push({ plan, at: i, watch, end: first + cmds.length });
        due = every > 0 && (this.done + i + 1) % every === 0;
      }
      x.q.qtest.send(cmds);
      let c = 0;
      for (const { plan, at, watch, end } of seg) {
        if (!('cmds' in plan)) {
          observations.push(plan);
          continue;
        }
        const replies: string[] = [];
        for (let k = 0; k < plan.cmds.length + (watch ? 1 : 0); k++, c++) {
          const n = await x.q.qtest.reply(x.timeoutMs);
          if ('line' in n) replies.push(n.line);
          else return stop('timeout' in n ? 'hang' : 'crash', at, 'timeout' in n ? `QEMU did not answer${describe(cmds[c])} within ${x.timeoutMs} ms` : `QEMU went away${describe(cmds[c])}`);
        }
        try {
          const window = watch ? replies.pop()! : null;
          observations.push(withIrqs(plan.decode(replies), x.irqs.observe(x.q.qtest.takeIrqs(end), window)));
        } catch (e) {
          return stop('crash', at, `qtest protocol: ${(e as Error).message}`);
        }
      }
      const last = ops[i - 1];
      if (settle && routedIn(last, 'memory') && writeValue(last) !== null) {
        const s = await settleFactorial(x.q.qtest, last.addr, x.timeoutMs);
        if (!s.ok) return stop(x.q.qtest.open ? 'hang' : 'crash', i - 1, s.why);
        try {
          observations[i - 1] = withIrqs(observations[i - 1], await this.interruptsSoFar(x));
        } catch (e) {
          if (!(e instanceof QtestError)) throw e;
          return stop(troubleKind(e, x.q), i - 1, e.message);
        }
      }
      const failed = await evidence(i, i === ops.length);
      if (failed !== null) return failed;
    }
    this.done += ops.length;
    return { observations };
  }
}
