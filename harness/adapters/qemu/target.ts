/**
 * `--target qemu`: QEMU driven through qtest and QMP, with no guest code
 * running (the qtest accelerator where the binary has it, else TCG with
 * its CPUs stopped: build.ts). The machine is built from the topology, the platform is
 * set up as firmware would (ECAM through PCIEXBAR), and operations run as
 * pipelined qtest commands. One QEMU process serves many sequences: a
 * reset brings it back to its fresh state (reset.ts), or, when that is
 * not possible, a new process starts. A QEMU that exits or stops
 * answering yields a crash or hang failure with its stderr, never an
 * exception in the harness.
 */
import { DEFAULT_RAM, SPACE_KINDS, type Topology } from '../../topology/types.ts';
import { InputError } from '../../util/errors.ts';
import type { Capabilities, Session, Target, TargetFailure, TargetPhases } from '../target.ts';
import type { DmaContext } from './dma.ts';
import { IommuSession, type Iommu } from './iommu.ts';
import { ScalableIommuSession } from './iommu-scalable.ts';
import { VtdScalable } from './vtd-scalable.ts';
import { stageOffered } from '../../model/pasid-context.ts';
import { Presence } from './presence.ts';
import { QtestError } from './qtest.ts';
import { QmpError } from './qmp.ts';
import { flatViews } from './mtree.ts';
import { QemuSession } from './session.ts';
import { InterruptWatch, qemuIrqView } from './interrupts.ts';
import { Vtd } from './vtd.ts';
import { probeQemu } from './binary.ts';
import { accelNote, qemuBuild, type QemuBuild } from './build.ts';
import { EVENT_ARGS, EVENTS_LOG, EventLog } from './events.ts';
import { HALT_BIOS, HARNESS_RAM, SCRATCH_SIZE, haltBios, machineArgs } from './machine.ts';
import { PLATFORMS, type Machine, type Platform } from './platform.ts';
import type { Capability } from '../../ops/catalog.ts';
import { isPrepared, maxRootsOf, prepareTopology } from './prepare.ts';
import { QemuProcess, QemuStartError } from './process.ts';
import { machineReset, restoreFresh } from './reset.ts';
import { profileFor } from '../../profiles/profile.ts';

export interface QemuOptions {
  /** The QEMU binary (default: qemu-system-x86_64 on PATH). */
  qemu?: string;
  machine?: Machine;
  /** Per-operation timeout; QEMU exceeding it is hung. */
  timeoutMs?: number;
  /** Time for QEMU to start, and for a reset. */
  startupMs?: number;
  /** Reuse one process across sequences (default), or start a fresh one for each. */
  reuse?: boolean;
  /** QEMU's flat views as evidence after every this many ops, and after each run (default 64; 0: never). */
  mtreeEvery?: number;
  /** QEMU's own PCI trace events and guest errors as evidence (events.ts). */
  events?: boolean;
}

/** Counters of the process lifecycle, for benchmarks and tests. */
export interface QemuStats {
  starts: number;
  resets: number;
  /** Resets that could not restore the fresh state, so a new process started. */
  fallbacks: number;
  /** Why the last one could not. */
  lastFallback?: string;
}

export interface QemuTarget extends Target {
  readonly platform: Platform;
  /** What the binary changes in the machine, and how it runs (the qtest accelerator or TCG). */
  readonly build: QemuBuild;
  readonly stats: QemuStats;
  /** The live process, if any (tests check that none survives). */
  readonly pid: number | undefined;
  /** The live process itself, if any, between sessions (tests look at its clock and state). */
  readonly process: QemuProcess | undefined;
  dispose(): Promise<void>;
}

/** Sequences a campaign runs between two resets (Target.chain). */
const CHAIN = 16;

export function qemuCapabilities(p: Platform, build: Pick<QemuBuild, 'scalableIommu' | 'iommuTestdev'> = { scalableIommu: false, iommuTestdev: false }): Capabilities {
  const q35: Capability[] = ['config', 'mmio', 'pio', 'dma', 'dma-map', 'dma-attach', 'hotplug', 'root-reset', ...(build.scalableIommu ? (['pasid'] as const) : [])];
  return {
    ops: p.machine === 'q35' ? q35 : ['config', 'mmio', 'pio', 'dma', 'root-reset'],
    // PASID contexts are scalable-mode PASID tables; no emulated device tags its requests with a PASID (no pasid-dma).
    scalableIommu: build.scalableIommu ? ['first', 'second'] : [],
    maxRoots: maxRootsOf(p),
    personalities: ['edu', 'pci-testdev', ...(build.iommuTestdev ? ['iommu-testdev'] : []), 'root-port'].filter((k) => p.machine === 'q35' || k !== 'root-port') as Capabilities['personalities'],
    expanderPersonalities: p.machine === 'q35' ? ['root-port'] : ['edu', 'pci-testdev'],
    hotplugSlots: 'root-port',
    caps: [],
    vias: p.ecam === null ? ['cf8'] : ['ecam', 'cf8'],
    // qtest sees what the CPU sees: values, not where an access went, not aborts. Faults: those
    // intel-iommu records (a missing context entry; a missing or read-only page, told apart by the model).
    // Interrupts: the IOAPIC's lines (q35) and messages landing in a watched window of RAM (interrupts.ts).
    // Scalable mode adds a PASID entry that is not present (RID_PASID unbound).
    observes: { delivery: false, irqs: qemuIrqView(p), aborts: false, faults: ['no-domain', 'iova-unmapped', 'perm', ...(build.scalableIommu ? (['pasid-unbound', 'pasid-invalid'] as const) : [])] },
    contract: Object.fromEntries(SPACE_KINDS.map((k) => [k, 'shared'])),
  };
}

/** QEMU's own words when it refuses to start: its error lines (they name the option or device). */
function refusalWords(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/g_timer_elapsed|GLib/.test(l));
  const errors = lines.filter((l) => /^qemu-system-[a-z0-9_]+:|error/i.test(l));
  return (errors.length > 0 ? errors : lines).slice(-4).join(' / ') || 'no message';
}

export function openQemuTarget(o: QemuOptions = {}): QemuTarget {
  const bin = probeQemu(o.qemu);
  const platform = PLATFORMS[o.machine ?? 'q35'];
  const build = qemuBuild(bin, platform);
  const timeoutMs = o.timeoutMs ?? 5_000;
  const startupMs = Math.max(timeoutMs, o.startupMs ?? 30_000);
  const reuse = o.reuse ?? true;
  const stats: QemuStats = { starts: 0, resets: 0, fallbacks: 0 };
  const phases: TargetPhases = { start: 0, reset: 0, verify: 0 };
  let proc: QemuProcess | null = null;
  let procKey = '';
  /** The live process's interrupt lines and MSI window. */
  const lines = qemuIrqView(platform).lines;
  let irqs = new InterruptWatch(lines);
  /** The live process's event log, with --qemu-events. */
  let log: EventLog | null = null;
  /** Virtual time ran (a DMA op) since the process was last fresh: device buffers may hold data. */
  let clockRan = false;
  /** The config dwords past a header that a write may have reached since the process was last fresh (null: any). */
  let keptWritten: Set<number> | null = new Set();
  /** A device was plugged or removed since the process started: a reset does not bring the topology's start back. */
  let replugged = false;
  /** QEMU's flat views right after a fresh start: a reset must bring them back. */
  let baseline = '';

  /** A failure while running op `index`: QEMU died or hung; the process is killed and not reused. */
  const failure = async (q: QemuProcess, kind: TargetFailure['kind'], index: number, message: string): Promise<TargetFailure> => {
    // The socket may close a moment before the process reports its exit.
    if (kind === 'crash') for (let i = 0; i < 20 && q.alive; i++) await new Promise((r) => setTimeout(r, 50));
    const why = kind === 'crash' && q.exit !== null ? `${message}: QEMU ${q.exit}` : message;
    // QEMU exits with status 0 when the guest powers the machine off: the platform's event, not a crash.
    const poweroff = kind === 'crash' && q.exit === 'exited with status 0';
    await q.kill();
    if (proc === q) proc = null;
    const f: TargetFailure = { kind: poweroff ? 'poweroff' : kind, index, message: why };
    if (q.stderr.trim() !== '') f.stderr = q.stderr;
    return f;
  };

  /** A process in its fresh state for this topology, or why there is none. */
  const ready = async (t: Topology): Promise<QemuProcess | TargetFailure> => {
    const args = [...machineArgs(t, platform, build.machineType, build.accel), ...(o.events === true ? EVENT_ARGS : [])];
    const key = JSON.stringify(args);
    const ram = { model: t.roots[0].ram ?? DEFAULT_RAM, harness: HARNESS_RAM };
    const setup = t.roots[0].ecam === null ? ['outl 0xcf8 0x0'] : platform.setup;
    if (proc !== null && proc.alive && procKey === key && reuse && !replugged) {
      stats.resets++;
      const restored = await restoreFresh(proc, t, ram, { clockRan, keptWritten }, setup, startupMs, baseline, build.accel, phases).catch((e: Error) => e.message);
      clockRan = false;
      keptWritten = new Set();
      if (restored === true) return proc;
      stats.fallbacks++;
      stats.lastFallback = restored === false ? 'a device could not be brought back to its power-on state' : restored;
    }
    if (proc !== null) await proc.kill();
    proc = null;
    const started = performance.now();
    try {
      stats.starts++;
      const q = await QemuProcess.start({ binary: bin.path, args, startupMs, files: { [HALT_BIOS]: haltBios() } });
      try {
        await q.qtest.call([...setup, InterruptWatch.intercept], startupMs);
        irqs = new InterruptWatch(lines);
        log = o.events === true ? new EventLog(q.file(EVENTS_LOG)) : null;
        if (reuse) baseline = JSON.stringify(await flatViews(q.qmp, t.roots[0].reserved ?? [], startupMs));
      } catch (e) {
        if (!(e instanceof QtestError || e instanceof QmpError)) throw e;
        return await failure(q, e instanceof QtestError && e.trouble === 'hang' ? 'hang' : 'crash', 0, `platform set-up failed: ${e.message}`);
      }
      proc = q;
      procKey = key;
      clockRan = false;
      keptWritten = new Set();
      replugged = false;
      return q;
    } catch (e) {
      if (!(e instanceof QemuStartError)) throw e;
      // QEMU refusing its command line (a device it does not have, a property it does not take) is the input's problem.
      if (e.refused) throw new InputError(`--target qemu (${bin.path})`, `a machine QEMU starts; it refused: ${refusalWords(e.stderr)}`);
      return { kind: 'crash', index: 0, message: `QEMU did not start for this topology: ${e.message.split('\n')[0]}`, stderr: e.stderr };
    } finally {
      phases.start += performance.now() - started;
    }
  };

  const target: QemuTarget = {
    // The version says how the machine ran: a reader of a trace tells clock_step from a running VM.
    info: { name: 'qemu', version: `${bin.version}, ${accelNote(build.accel)}` },
    capabilities: qemuCapabilities(platform, build),
    // The choices QEMU makes where PCI leaves them open (unassigned reads), by version; none: the specifications alone.
    profile: profileFor('qemu', bin.version),
    platform,
    build,
    stats,
    phases,
    // A start costs ~20 resets, and a reset ~4 sequences' ops (bench:campaign --only phases): a campaign runs
    // CHAIN sequences between resets, and a topology serves 16 such batches.
    topologyBlock: 16 * CHAIN,
    chain: CHAIN,
    get pid() {
      return proc?.pid;
    },
    get process() {
      return proc ?? undefined;
    },
    prepare: (t) => prepareTopology(t, platform, build),
    async open(topology: Topology): Promise<Session> {
      if (!isPrepared(topology, platform, build)) throw new InputError('--target qemu', `a topology completed for QEMU's ${platform.machine} machine (its chipset functions, reserved ranges and expander hosts): load it through the target's prepare()`);
      const got = await ready(topology);
      if ('kind' in got) return new QemuSession(null, got);
      const q = got;
      const main = topology.roots[0];
      try {
        await q.qtest.call(irqs.arm(), timeoutMs);
        irqs.absorb(q.qtest.takeIrqs());
      } catch (e) {
        if (!(e instanceof QtestError)) throw e;
        return new QemuSession(null, await failure(q, e.trouble === 'hang' ? 'hang' : 'crash', 0, `MSI window: ${e.message}`));
      }
      const ram = main.ram ?? DEFAULT_RAM;
      const dma: DmaContext = { q, ecam: main.ecam === null ? null : (main.ecam ?? platform.ecam), scratch: ram, timeoutMs, accel: build.accel };
      const presence = new Presence(topology);
      const layout = { tablesBase: ram + SCRATCH_SIZE, tablesSize: HARNESS_RAM - SCRATCH_SIZE, ram };
      const scratch = { base: ram, size: SCRATCH_SIZE };
      /** A VT-d driver with fresh tables, translation on: legacy, or scalable mode. */
      const driver = async (): Promise<Vtd> => {
        const vtd = new Vtd(q.qtest, layout, main.domains ?? 0, timeoutMs);
        await vtd.init(scratch);
        return vtd;
      };
      const scalableDriver = async (): Promise<VtdScalable> => {
        const vtd = new VtdScalable(q.qtest, layout, main.domains ?? 0, timeoutMs, stageOffered(main.scalable ?? 'second', undefined)!);
        await vtd.init(scratch);
        return vtd;
      };
      let iommu: Iommu | null = null;
      if (main.iommu === true) {
        try {
          iommu =
            main.scalable !== undefined
              ? new ScalableIommuSession(await scalableDriver(), scalableDriver, topology, main.domains ?? 0, presence, main.scalable)
              : new IommuSession(await driver(), driver, topology, main.domains ?? 0, presence);
        } catch (e) {
          if (!(e instanceof QtestError)) throw e;
          return new QemuSession(null, await failure(q, e.trouble === 'hang' ? 'hang' : 'crash', 0, `intel-iommu set-up: ${e.message}`));
        }
      }
      const setup = main.ecam === null ? ['outl 0xcf8 0x0'] : platform.setup;
      log?.take(); // the harness's own set-up and reset, before the sequence's first op
      return new QemuSession(
        {
          q,
          topology,
          presence,
          dma,
          iommu,
          irqs,
          events: log,
          timeoutMs,
          mapsEvery: o.mtreeEvery ?? 64,
          fail: (kind, index, message) => failure(q, kind, index, message),
          clockRuns: () => {
            clockRan = true;
          },
          keptConfigWritten: (dwords) => {
            if (dwords === null) keptWritten = null;
            else for (const d of dwords) keptWritten?.add(d);
          },
          presenceChanges: () => {
            replugged = true;
          },
          resetMachine: async () => {
            // No bridge-window sync here: what QEMU keeps after a reset is for the oracles to see.
            await machineReset(q, timeoutMs);
            await q.qtest.call(setup, timeoutMs);
            if (iommu !== null) await iommu.restart();
          },
        },
        null,
      );
    },
    async dispose(): Promise<void> {
      if (proc !== null) await proc.stop(2_000);
      proc = null;
    },
  };
  return target;
}
