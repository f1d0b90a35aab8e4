/**
 * One session on xen-vpci-agent: each operation becomes what the vCPU of
 * the root's domain does (the hardware domain, or the root's guest), and
 * every op of a run goes to the agent in one pipelined batch.
 *   - a config access through ECAM is a memory access in the root's MMCFG
 *     (or a guest's virtual ECAM) window, which the agent traps for vPCI
 *     the way arch/x86/hvm/io.c does (vpci_mmcfg_read/write);
 *   - through CF8/CFC it is the two port accesses, which vPCI's port
 *     handlers take (segment 0 of the hardware domain only);
 *   - a memory or port access goes to the domain: vPCI's handlers, its
 *     p2m, its RAM, the host device.
 * The observation is the agent's: the value read and the interrupts Xen's
 * vPCI state gave the device's messages. Where an access went is kept as
 * evidence for findings.
 */
import { needs, writeValue, type Op } from '../../ops/catalog.ts';
import { unhandled } from '../../ops/exhaustive.ts';
import type { Irq, Observation, Reason } from '../../ops/observation.ts';
import { ownerOf, walkDevices, type Topology } from '../../topology/types.ts';
import { XEN_AGENT_FIELD, applyOne, type FailureKind, type RunResult, type Session, type TargetFailure } from '../target.ts';
import { X, XenAgentError, type AgentIrq, type Cmd, type Placed, type Sbdf, type Where, type XenAgent } from './agent.ts';
import { guestSbdf, zeroGuestBars, type GuestBuses, type GuestDevice } from './lifecycle.ts';

/** A failure of the agent as a target failure at op `index`. */
export function failureOf(e: XenAgentError, index: number): TargetFailure {
  const kind: FailureKind = e.trouble === 'hang' ? 'hang' : e.trouble === 'protocol' || e.trouble === 'refused' ? 'protocol' : 'crash';
  return { kind, index, message: e.message, ...(e.stderr !== undefined && e.stderr.trim() !== '' ? { stderr: e.stderr.trim() } : {}), ...(kind === 'protocol' && e.command !== undefined ? { field: XEN_AGENT_FIELD + e.command.split(' ').slice(0, 2).join(' ') } : {}) };
}

const CF8_ENABLE = 0x8000_0000;

/** xen/common/ioreq.c's refusals of a range change, as the model names them. */
const IOREQ_RC: Readonly<Record<number, Reason>> = {
  [-17]: 'busy', // EEXIST: the server's own rangeset overlaps it
  [-2]: 'not-registered', // ENOENT: the server's rangeset does not hold it
  [-22]: 'align', // EINVAL: start > end, an empty range
  [-28]: 'exhausted', // ENOSPC: MAX_NR_IO_RANGES (256) ranges of one type
};

/** One op's part of a batch: its commands, and how their replies become the observation; `then`: what the session does after it (a lifecycle op ends its batch). */
interface Step {
  cmds: Cmd<unknown>[];
  finish(replies: unknown[]): Observation;
  then?(): Cmd<unknown>[];
}

/** Ops after which the session must see Xen's replies before it builds the next op's commands. */
const LIFECYCLE: ReadonlySet<Op['op']> = new Set(['dev.plug', 'dev.unplug', 'dev.reset', 'root.reset']);

const whereText = (w: Where): string =>
  w.kind === 'ioreq' ? `ioreq server ${w.server}` : w.kind === 'cf8' && w.over !== undefined ? `cf8 (vPCI; ioreq server ${w.over} registered the SBDF)` : w.kind === 'bar' ? `${w.sbdf} ${w.bar === 6 ? 'rom' : `bar${w.bar}`} +0x${w.offset.toString(16)}` : w.kind === 'no-decode' && w.mfn !== undefined ? `mfn 0x${w.mfn.toString(16)}, no host BAR` : w.kind;

/** Where each root lives: its domain, its ECAM window, whether CF8/CFC reaches it, and the host SBDF of each device (by id). */
export interface DomainLayout {
  domain(root: number): number;
  ecam(root: number): number;
  cf8(root: number): boolean;
  hosts: ReadonlyMap<Sbdf, string>;
  /** The SBDF an ioreq server registers for a BDF of root `root` (XEN_DMOP_PCI_SBDF). */
  sbdfKey(root: number, bdf: number): number;
  /** Guest mode: where each guest's devices sit, for hot-plug and reset. */
  guests?: GuestBuses;
}

/** Records where Xen put a guest's device (an assignment's or a reset's reply) and says so, naming a slot other than its own. */
function placedEvent(g: GuestBuses, d: GuestDevice, placed: Placed, call: string): string {
  g.placed(d, placed);
  const where = placed.vsbdf === undefined ? 'no virtual slot' : placed.vsbdf === guestSbdf(d.slot) ? `virtual ${placed.vsbdf}` : `virtual ${placed.vsbdf}, not its slot ${guestSbdf(d.slot)}`;
  return `${d.id}: ${call} = ${placed.rc}; ${where}`;
}

/** What the session answers itself (what the toolstack refuses, what the target does not do): not Xen's, so not judged. */
const own = (o: Observation): Step => ({ cmds: [], finish: () => ({ ...o, source: 'harness' }) });

export class XenSession implements Session {
  /** Host SBDF → the device's id and root. */
  private readonly bySbdf = new Map<Sbdf, { id: string; root: number }>();
  private notes: string[];
  private closed = false;

  constructor(
    private readonly agent: XenAgent,
    private readonly topology: Topology,
    private readonly layout: DomainLayout,
    setupNotes: string[],
    private readonly onClose: () => void,
  ) {
    const rootOf = new Map<string, number>();
    for (const { root, dev } of walkDevices(topology)) rootOf.set(dev.id, root);
    for (const [sbdf, id] of layout.hosts) this.bySbdf.set(sbdf, { id, root: rootOf.get(id)! });
    this.notes = setupNotes;
  }

  apply(op: Op): Promise<Observation> {
    return applyOne(this, op);
  }

  async run(ops: readonly Op[]): Promise<RunResult> {
    const observations: Observation[] = [];
    let from = 0;
    while (from < ops.length) {
      // A lifecycle op ends a batch: where Xen put the device decides the commands of the ops after it.
      let to = from;
      while (to < ops.length && !LIFECYCLE.has(ops[to].op)) to++;
      to = Math.min(to + 1, ops.length);
      const failure = await this.batch(ops.slice(from, to), observations);
      if (failure !== undefined) return { observations, failure };
      from = to;
    }
    if (this.notes.length > 0 && observations.length > 0) {
      observations[0].evidence = { events: [...this.notes, ...(observations[0].evidence?.events ?? [])] };
      this.notes = [];
    }
    return { observations };
  }

  /** One pipelined batch; its observations are appended to `out`. Then the last step's follow-up commands, if it has any. */
  private async batch(ops: readonly Op[], out: Observation[]): Promise<TargetFailure | undefined> {
    const base = out.length;
    const steps = ops.map((op) => this.step(op));
    const cmds = steps.flatMap((s) => s.cmds);
    let replies: unknown[];
    try {
      replies = await this.agent.run(cmds);
    } catch (e) {
      if (!(e instanceof XenAgentError)) throw e;
      // The ops whose replies all came in completed; the failure belongs to the next one.
      let at = 0;
      for (const s of steps) {
        if (at + s.cmds.length > e.parsed.length) break;
        out.push(s.finish(e.parsed.slice(at, at + s.cmds.length)));
        at += s.cmds.length;
      }
      return failureOf(e, out.length);
    }
    let at = 0;
    for (const s of steps) {
      out.push(s.finish(replies.slice(at, at + s.cmds.length)));
      at += s.cmds.length;
    }
    const last = steps.at(-1);
    const then = last?.then?.() ?? [];
    if (then.length === 0) return undefined;
    try {
      await this.agent.run(then);
    } catch (e) {
      if (!(e instanceof XenAgentError)) throw e;
      out.length = base + steps.length - 1;
      return failureOf(e, out.length);
    }
    return undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    await this.agent.dispose();
  }

  private irqs(list: AgentIrq[]): Irq[] | undefined {
    if (list.length === 0) return undefined;
    return list.map((i) => {
      const d = this.bySbdf.get(i.sbdf);
      const root = d?.root ?? 0;
      return { space: ownerOf(this.topology, root, 'irq'), ...(d !== undefined ? { dev: d.id } : {}), kind: i.kind, vector: i.vector, addr: i.addr, data: i.data };
    });
  }

  /** A memory access in the domain that holds `root`'s memory. */
  private memory(root: number, addr: number, size: number, value: bigint | null, label: string): Step {
    const d = this.layout.domain(root);
    return this.access(value === null ? X.memRead(d, addr, size) : X.memWrite(d, addr, size, value), label);
  }

  /** A port access of the hardware domain, after the `before` commands (CONFIG_ADDRESS's latch). */
  private port(port: number, size: number, value: bigint | null, label: string, before: Cmd<unknown>[] = []): Step {
    return this.access(value === null ? X.ioRead(0, port, size) : X.ioWrite(0, port, size, value), label, before);
  }

  /** One read or write and its observation: the value read, or the messages a write made the devices send; where it went as evidence. */
  private access(cmd: Cmd<{ value: bigint; where: Where } | { where: Where; irqs: AgentIrq[] }>, label: string, before: Cmd<unknown>[] = []): Step {
    const n = before.length;
    return {
      cmds: [...before, cmd],
      finish: (r) => {
        const m = r[n] as { value?: bigint; where: Where; irqs?: AgentIrq[] };
        const events = { events: [`${label} → ${whereText(m.where)}`] };
        if (m.value !== undefined) return { status: 'ok', value: m.value, evidence: events };
        const irqs = this.irqs(m.irqs ?? []);
        return { status: 'ok', ...(irqs !== undefined ? { irqs } : {}), evidence: events };
      },
    };
  }

  /** Hot-plug in a guest (lifecycle.ts); what the toolstack refuses itself is the session's answer. */
  private hotplug(kind: 'dev.plug' | 'dev.unplug', id: string): Step {
    const g = this.layout.guests;
    const d = g?.device(id);
    if (g === undefined || d === undefined) return own({ status: 'error', reason: g === undefined ? 'unsupported' : 'no-device' });
    if (kind === 'dev.unplug') {
      if (!g.present(id)) return own({ status: 'error', reason: 'not-present' });
      return { cmds: g.unplug(d), finish: () => ({ status: 'ok', evidence: { events: [`${id}: deassigned from d${d.domid}, then reset by the hardware domain`] } }) };
    }
    if (g.present(id)) return own({ status: 'error', reason: 'present' });
    const { cmds, assign } = g.plug(d);
    return this.placing(g, d, cmds, assign, 'XEN_DOMCTL_assign_device');
  }

  /**
   * A guest's reboot (agent.c `domain reset`), then what the toolstack and the device models do for the new domain: its
   * present devices assigned again at their slots (lifecycle.ts rebuild), the ioreq servers started again (no claims),
   * and, once Xen's replies say where each device is, its BAR registers written to 0.
   */
  private rootReset(root: number): Step {
    const g = this.layout.guests;
    if (g === undefined) return own({ status: 'error', reason: 'unsupported' });
    const domid = this.layout.domain(root);
    const { cmds, assigns } = g.rebuild(domid);
    const all = [X.domainReset(domid), ...cmds, ...X.ioreqServers(domid, (this.topology.emulators ?? []).length)];
    const zero: Cmd<unknown>[] = [];
    return {
      cmds: all,
      finish: (r) => {
        const events = [`d${domid} rebuilt`];
        for (const { d, at } of assigns) {
          const placed = r[1 + at] as Placed;
          events.push(placedEvent(g, d, placed, 'XEN_DOMCTL_assign_device'));
          if (placed.vsbdf !== undefined) zero.push(...zeroGuestBars(d, placed.vsbdf));
        }
        return { status: 'ok', evidence: { events } };
      },
      then: () => zero,
    };
  }

  /** A function-level reset by the hardware domain, then PHYSDEVOP_pci_device_reset (agent.c `dev reset`). */
  private reset(id: string): Step {
    const g = this.layout.guests;
    const entry = [...this.bySbdf].find(([, v]) => v.id === id);
    if (entry === undefined) return own({ status: 'error', reason: 'no-device' });
    const d = g?.device(id);
    const cmds = [X.devReset(this.layout.domain(entry[1].root), entry[0])];
    if (g === undefined || d === undefined)
      return { cmds, finish: (r) => ({ status: 'ok', evidence: { events: [`${id}: reset; PHYSDEVOP_pci_device_reset = ${(r[0] as Placed).rc}`] } }) };
    if (!g.present(id)) return own({ status: 'error', reason: 'not-present' });
    return this.placing(g, d, cmds, 0, 'PHYSDEVOP_pci_device_reset');
  }

  /**
   * A plug or a guest device's reset: reply `at` says where Xen put the device, which the guest then sees as done (another
   * slot than its own shows in the config accesses after it); afterwards its BAR registers are written to 0, as at setup.
   */
  private placing(g: GuestBuses, d: GuestDevice, cmds: Cmd<unknown>[], at: number, call: 'XEN_DOMCTL_assign_device' | 'PHYSDEVOP_pci_device_reset'): Step {
    let placed: Placed = { rc: 0 };
    return {
      cmds,
      finish: (r) => {
        placed = r[at] as Placed;
        const events = { events: [placedEvent(g, d, placed, call)] };
        // Xen refused to take the device (-28: no free slot of the guest's 32).
        if (placed.rc !== 0 && call === 'XEN_DOMCTL_assign_device') return { status: 'error', reason: placed.rc === -28 ? 'exhausted' : 'busy', evidence: events };
        return { status: 'ok', evidence: events };
      },
      then: () => (placed.vsbdf === undefined ? [] : zeroGuestBars(d, placed.vsbdf)),
    };
  }

  /**
   * An emulator's claim or release, as its device-model domain makes it
   * (XEN_DMOP_map_io_range_to_ioreq_server and its unmap, in Xen's own
   * xen/common/ioreq.c): Xen's rc becomes the refusal. What the device
   * model would never ask (an emulator not declared, a port past 0xffff,
   * an empty range at 0) is the session's own answer.
   */
  private emulator(op: Extract<Op, { op: 'emu.map-bdf' | 'emu.unmap-bdf' | 'emu.map-range' | 'emu.unmap-range' }>): Step {
    const id = (this.topology.emulators ?? []).indexOf(op.emulator);
    if (op.root >= this.topology.roots.length) return own({ status: 'error', reason: 'no-device' });
    if (id < 0) return own({ status: 'error', reason: 'no-emulator' });
    const change = op.op === 'emu.map-bdf' || op.op === 'emu.map-range' ? 'map' : 'unmap';
    const d = this.layout.domain(op.root);
    let cmd: Cmd<number>;
    if (op.op === 'emu.map-bdf' || op.op === 'emu.unmap-bdf') {
      const sbdf = this.layout.sbdfKey(op.root, op.bdf);
      cmd = X.ioreqRange(change, d, id, 'pci', sbdf, sbdf);
    } else {
      if (op.space === 'pio' && op.start + op.size > 0x10000) return own({ status: 'error', reason: 'unsupported' });
      if (op.size === 0 && op.start === 0) return own({ status: 'error', reason: 'align' });
      cmd = X.ioreqRange(change, d, id, op.space === 'pio' ? 'port' : 'mem', op.start, op.start + op.size - 1);
    }
    return {
      cmds: [cmd],
      finish: (r) => {
        const rc = r[0] as number;
        const events = { events: [`${cmd.text} = ${rc}`] };
        const reason = IOREQ_RC[rc];
        if (rc === 0) return { status: 'ok', evidence: events };
        return { status: 'error', reason: reason ?? 'unsupported', evidence: events };
      },
    };
  }

  private step(op: Op): Step {
    // Linux VFIO's user API is a kernel's, not Xen's.
    if (needs(op, 'vfio')) return own({ status: 'error', reason: 'unsupported' });
    switch (op.op) {
      case 'cfg.read':
      case 'cfg.write': {
        const value = writeValue(op);
        const bus = op.bdf >>> 8;
        const devfn = op.bdf & 0xff;
        if (op.via === 'ecam') return this.memory(op.root, this.layout.ecam(op.root) + bus * 0x100000 + devfn * 0x1000 + op.reg, op.size, value, `ECAM of root ${op.root}`);
        // CF8/CFC reaches segment 0 of the hardware domain only (io.c: hvm_pci_decode_addr).
        if (!this.layout.cf8(op.root)) return own({ status: 'error', reason: 'no-cf8' });
        const latch = X.ioWrite(0, 0xcf8, 4, (CF8_ENABLE | (bus << 16) | (devfn << 8) | (op.reg & 0xfc)) >>> 0);
        return this.port(0xcfc + (op.reg & 3), op.size, value, 'CF8/CFC', [latch]);
      }
      case 'mmio.read':
      case 'mmio.write':
        return this.memory(op.root, op.addr, op.size, writeValue(op), `memory 0x${op.addr.toString(16)}`);
      case 'pio.read':
      case 'pio.write':
        if (this.layout.domain(op.root) !== 0) return own({ status: 'error', reason: 'unsupported' });
        return this.port(op.port, op.size, writeValue(op), `port 0x${op.port.toString(16)}`);
      case 'dev.plug':
      case 'dev.unplug':
        return this.hotplug(op.op, op.dev);
      case 'dev.reset':
        return this.reset(op.dev);
      case 'root.reset':
        return this.rootReset(op.root);
      case 'emu.map-bdf':
      case 'emu.unmap-bdf':
      case 'emu.map-range':
      case 'emu.unmap-range':
        return this.emulator(op);
      // Neither mode declares these (xenCapabilities): no IOMMU, PASIDs or clock here.
      case 'dma.map':
      case 'dma.unmap':
      case 'dma.attach':
      case 'dma.detach':
      case 'dma.read':
      case 'dma.write':
      case 'pasid.alloc':
      case 'pasid.free':
      case 'pasid.bind':
      case 'pasid.unbind':
      case 'pasid.invalidate':
      case 'region.read':
      case 'region.write':
      case 'clock.step':
        return own({ status: 'error', reason: 'unsupported' });
    }
    return unhandled(op);
  }
}
