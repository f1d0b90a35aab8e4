/**
 * `--target qemu`: QEMU driven through qtest and QMP, with no guest code
 * running (-S). The machine is built from the topology, the platform is
 * set up as firmware would (ECAM through PCIEXBAR), and operations run as
 * pipelined qtest commands. One QEMU process serves many sequences: a
 * reset brings it back to its fresh state (reset.ts), or, when that is
 * not possible, a new process starts. A QEMU that exits or stops
 * answering yields a crash or hang failure with its stderr, never an
 * exception in the harness.
 */
import type { Op, OpOf } from '../../ops/catalog.ts';
import type { Observation } from '../../ops/observation.ts';
import { DEFAULT_RAM, SPACE_KINDS, walkDevices, type Topology } from '../../topology/types.ts';
import { InputError } from '../../util/errors.ts';
import type { Capabilities, RunResult, Session, Target, TargetFailure } from '../target.ts';
import { applyOne } from '../target.ts';
import { planAccess, refused, type Planned } from './access.ts';
import { eduDma, type DmaContext } from './dma.ts';
import { QmpError } from './qmp.ts';
import { QtestError } from './qtest.ts';
import { probeQemu } from './binary.ts';
import { mayStartFactorial, settleFactorial } from './edu.ts';
import { HALT_BIOS, HARNESS_RAM, haltBios, machineArgs } from './machine.ts';
import { PLATFORMS, type Machine, type Platform } from './platform.ts';
import { isPrepared, prepareTopology, MAX_QEMU_ROOTS } from './prepare.ts';
import { QemuProcess, QemuStartError } from './process.ts';
import { restoreFresh } from './reset.ts';

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
  readonly stats: QemuStats;
  /** The live process, if any (tests check that none survives). */
  readonly pid: number | undefined;
  dispose(): Promise<void>;
}

export function qemuCapabilities(p: Platform): Capabilities {
  return {
    ops: ['config', 'mmio', 'pio', 'dma'],
    maxRoots: MAX_QEMU_ROOTS,
    personalities: ['edu', 'pci-testdev', 'root-port'].filter((k) => p.machine === 'q35' || k !== 'root-port') as Capabilities['personalities'],
    expanderPersonalities: p.machine === 'q35' ? ['root-port'] : ['edu', 'pci-testdev'],
    caps: [],
    vias: p.ecam === null ? ['cf8'] : ['ecam', 'cf8'],
    // qtest sees what the CPU sees: values, not where an access went, not aborts, not faults.
    observes: { delivery: false, irqs: false, aborts: false, faults: [] },
    contract: Object.fromEntries(SPACE_KINDS.map((k) => [k, 'shared'])),
  };
}

const describe = (cmd: string | undefined): string => (cmd === undefined ? '' : ` (${cmd})`);

/** What went wrong while talking to QEMU, as a failure kind: no answer is a hang, anything else a crash. */
function troubleKind(e: QtestError | QmpError, q: QemuProcess): TargetFailure['kind'] {
  if (!q.alive) return 'crash';
  if (e instanceof QtestError) return e.trouble === 'hang' ? 'hang' : 'crash';
  return e.errorClass === 'Disconnected' && e.desc.startsWith('no answer') ? 'hang' : 'crash';
}

/** dma.read / dma.write: only edu's engine can be driven; the model refuses the others too. */
async function dmaOp(q: QemuProcess, t: Topology, op: OpOf<'dma.read'> | OpOf<'dma.write'>, x: Omit<DmaContext, 'q'>): Promise<Observation> {
  const dev = [...walkDevices(t)].find((w) => w.dev.id === op.dev)?.dev;
  if (dev === undefined) return refused('no-device');
  if (dev.kind !== 'edu' || op.pasid !== undefined) return refused('unsupported');
  return eduDma({ q, ...x }, dev.id, op);
}

export function openQemuTarget(o: QemuOptions = {}): QemuTarget {
  const bin = probeQemu(o.qemu);
  const platform = PLATFORMS[o.machine ?? 'q35'];
  const timeoutMs = o.timeoutMs ?? 5_000;
  const startupMs = Math.max(timeoutMs, o.startupMs ?? 30_000);
  const reuse = o.reuse ?? true;
  const stats: QemuStats = { starts: 0, resets: 0, fallbacks: 0 };
  let proc: QemuProcess | null = null;
  let procKey = '';
  /** Virtual time ran (a DMA op) since the process was last fresh: device buffers may hold data. */
  let clockRan = false;

  /** A failure while running op `index`: QEMU died or hung; the process is killed and not reused. */
  const failure = async (q: QemuProcess, kind: TargetFailure['kind'], index: number, message: string): Promise<TargetFailure> => {
    // The socket may close a moment before the process reports its exit.
    if (kind === 'crash') for (let i = 0; i < 20 && q.alive; i++) await new Promise((r) => setTimeout(r, 50));
    const why = kind === 'crash' && q.exit !== null ? `${message}: QEMU ${q.exit}` : message;
    await q.kill();
    if (proc === q) proc = null;
    const f: TargetFailure = { kind, index, message: why };
    if (q.stderr.trim() !== '') f.stderr = q.stderr;
    return f;
  };

  /** A process in its fresh state for this topology, or why there is none. */
  const ready = async (t: Topology): Promise<QemuProcess | TargetFailure> => {
    const args = machineArgs(t, platform);
    const key = JSON.stringify(args);
    const ram = { model: t.roots[0].ram ?? DEFAULT_RAM, harness: HARNESS_RAM };
    const setup = t.roots[0].ecam === null ? ['outl 0xcf8 0x0'] : platform.setup;
    if (proc !== null && proc.alive && procKey === key && reuse) {
      stats.resets++;
      const restored = await restoreFresh(proc, t, ram, clockRan, setup, startupMs).catch((e: Error) => e.message);
      clockRan = false;
      if (restored === true) return proc;
      stats.fallbacks++;
      stats.lastFallback = restored === false ? 'a device could not be brought back to its power-on state' : restored;
    }
    if (proc !== null) await proc.kill();
    proc = null;
    try {
      stats.starts++;
      const q = await QemuProcess.start({ binary: bin.path, args, startupMs, files: { [HALT_BIOS]: haltBios() } });
      q.qtest.send(setup);
      for (const c of setup) {
        const n = await q.qtest.reply(startupMs);
        if (!('line' in n) || n.line !== 'OK') return await failure(q, 'line' in n ? 'crash' : 'timeout' in n ? 'hang' : 'crash', 0, `platform set-up${describe(c)} failed: ${'line' in n ? n.line : 'eof' in n ? n.eof : 'no reply'}`);
      }
      proc = q;
      procKey = key;
      clockRan = false;
      return q;
    } catch (e) {
      if (!(e instanceof QemuStartError)) throw e;
      return { kind: 'crash', index: 0, message: `QEMU did not start for this topology: ${e.message.split('\n')[0]}`, stderr: e.stderr };
    }
  };

  const target: QemuTarget = {
    info: { name: 'qemu', version: bin.version },
    capabilities: qemuCapabilities(platform),
    platform,
    stats,
    get pid() {
      return proc?.pid;
    },
    prepare: (t) => prepareTopology(t, platform),
    async open(topology: Topology): Promise<Session> {
      if (!isPrepared(topology, platform)) throw new InputError('--target qemu', `a topology completed for QEMU's ${platform.machine} machine (its chipset functions, reserved ranges and expander hosts): load it through the target's prepare()`);
      const got = await ready(topology);
      const main = topology.roots[0];
      const dmaContext = { ecam: main.ecam === null ? null : (main.ecam ?? platform.ecam), scratch: main.ram ?? DEFAULT_RAM, timeoutMs };
      let broken: TargetFailure | null = 'kind' in got ? got : null;
      const q = 'kind' in got ? null : got;
      const session: Session = {
        apply: (op) => applyOne(session, op),
        async run(ops: readonly Op[]): Promise<RunResult> {
          const observations: Observation[] = [];
          if (broken !== null || q === null) return { observations, failure: { ...broken!, index: 0 } };
          let i = 0;
          while (i < ops.length) {
            const op = ops[i];
            if (op.op === 'dma.read' || op.op === 'dma.write') {
              // Interactive: each step depends on the last reply.
              clockRan = true;
              try {
                observations.push(await dmaOp(q, topology, op, dmaContext));
              } catch (e) {
                if (!(e instanceof QtestError || e instanceof QmpError)) throw e;
                broken = await failure(q, troubleKind(e, q), i, e.message);
                return { observations, failure: broken };
              }
              i++;
              continue;
            }
            // A pipelined segment: up to a DMA op, or up to and including an op that needs settling.
            const seg: { plan: Planned | Observation; at: number }[] = [];
            const cmds: string[] = [];
            let settle = false;
            for (; i < ops.length && !settle && ops[i].op !== 'dma.read' && ops[i].op !== 'dma.write'; i++) {
              const plan = planAccess(ops[i], topology) ?? refused('unsupported');
              seg.push({ plan, at: i });
              if ('cmds' in plan) cmds.push(...plan.cmds);
              settle = mayStartFactorial(ops[i]);
            }
            q.qtest.send(cmds);
            let c = 0;
            for (const { plan, at } of seg) {
              if (!('cmds' in plan)) {
                observations.push(plan);
                continue;
              }
              const replies: string[] = [];
              for (let k = 0; k < plan.cmds.length; k++, c++) {
                const n = await q.qtest.reply(timeoutMs);
                if ('line' in n) replies.push(n.line);
                else {
                  broken = await failure(q, 'timeout' in n ? 'hang' : 'crash', at, 'timeout' in n ? `QEMU did not answer${describe(cmds[c])} within ${timeoutMs} ms` : `QEMU went away${describe(cmds[c])}`);
                  return { observations, failure: broken };
                }
              }
              try {
                observations.push(plan.decode(replies));
              } catch (e) {
                broken = await failure(q, 'crash', at, `qtest protocol: ${(e as Error).message}`);
                return { observations, failure: broken };
              }
            }
            const last = ops[i - 1];
            if (settle && last.op === 'mmio.write') {
              const s = await settleFactorial(q.qtest, last.addr, timeoutMs);
              if (!s.ok) {
                broken = await failure(q, q.qtest.open ? 'hang' : 'crash', i - 1, s.why);
                return { observations, failure: broken };
              }
            }
          }
          return { observations };
        },
        async close(): Promise<void> {},
      };
      return session;
    },
    async dispose(): Promise<void> {
      if (proc !== null) await proc.stop(2_000);
      proc = null;
    },
  };
  return target;
}
