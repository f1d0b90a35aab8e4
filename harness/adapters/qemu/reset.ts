/**
 * Bringing a used QEMU back to the state a fresh one starts in, so that
 * one process serves many sequences. A machine reset (QMP system_reset)
 * restores config space and device registers that have a reset handler,
 * but not RAM, and not edu, which has no reset handler: its registers and
 * DMA buffer survive. So: reset; map each edu at a scratch address and put
 * its registers back through MMIO and its buffer by DMA; write back the
 * config bytes no reset restores (kept-config.ts); reset again (undoing
 * the scratch mappings and bus numbers); clear RAM; set the platform up. When
 * that fails, the caller starts a fresh QEMU instead.
 */
import type { TargetPhases } from '../target.ts';
import * as H from '../../model/header.ts';
import { walkDevices, type DeviceSpec, type Topology } from '../../topology/types.ts';
import { configMechanisms } from '../../bus/config-access.ts';
import { bdf } from '../../topology/bdf.ts';
import { cf8Access } from './access.ts';
import { EDU_ID, settleFactorial } from './edu.ts';
import type { QemuProcess } from './process.ts';
import { BUFFER, BUFFER_REACH, Clock, Engine, type DmaContext } from './dma.ts';
import { Q, parseBytes, parseValue } from './qtest.ts';
import type { QemuAccel } from './build.ts';
import { flatViews } from './mtree.ts';
import { configDword, restoreKeptConfig } from './kept-config.ts';

const SCRATCH = 0xc000_0000;
const MIB = 0x100000;
/** 34! is divisible by 2^32: writing 34 is how a driver brings the factorial register back to 0. */
const FACT_TO_ZERO = 34n;

const call = (q: QemuProcess, cmds: string[], timeoutMs: number): Promise<string[]> => q.qtest.call(cmds, timeoutMs);

/** QMP system_reset, done when QEMU says RESET. */
export async function machineReset(q: QemuProcess, timeoutMs: number): Promise<void> {
  q.qmp.dropEvents();
  await q.qmp.execute('system_reset', undefined, timeoutMs);
  await q.qmp.waitEvent((e) => e.event === 'RESET', timeoutMs, 'system_reset');
}

/**
 * QMP system_reset, then a write of the reset value (0) to the command
 * register of every root port: QEMU 7.2 resets a bridge's window registers
 * without updating its window mappings (hw/pci/pci_bridge.c), so windows
 * open before the reset keep forwarding until a write to the bridge's
 * command or window registers brings the mappings in line. A reset inside
 * a sequence (root.reset) leaves them stale, for the maps oracle to see;
 * a reset between sequences must not.
 */
export async function systemReset(q: QemuProcess, t: Topology, timeoutMs: number): Promise<void> {
  await machineReset(q, timeoutMs);
  const ports = [...walkDevices(t)].filter((w) => w.dev.kind === 'root-port' && w.parent === null);
  await call(q, ports.flatMap((w) => cf8Access(bdf(t.roots[w.root].bus, w.dev.slot, w.dev.fn), H.COMMAND, 2, 0)), timeoutMs);
}

/**
 * Config writes that make an edu reachable at `base`: through its root
 * port, when it has one, with the port's secondary bus `sec` and a window
 * over `base`.
 */
function mapEdu(t: Topology, root: number, dev: DeviceSpec, parent: DeviceSpec | null, base: number, sec: number): string[] {
  const rootBus = t.roots[root].bus;
  const cmds: string[] = [];
  let devBus = rootBus;
  if (parent !== null) {
    const port = bdf(rootBus, parent.slot, parent.fn);
    devBus = sec;
    const win = (base >>> 16) & 0xfff0;
    cmds.push(...cf8Access(port, H.PRIMARY_BUS, 4, rootBus | (sec << 8) | (sec << 16)), ...cf8Access(port, H.MEM_BASE, 4, (win | (win << 16)) >>> 0), ...cf8Access(port, H.COMMAND, 2, H.CMD_MEMORY));
  }
  const b = bdf(devBus, dev.slot, dev.fn);
  cmds.push(...cf8Access(b, H.BAR0, 4, base), ...cf8Access(b, H.COMMAND, 2, H.CMD_MEMORY | H.CMD_MASTER));
  return cmds;
}

interface EduRegs {
  id: bigint;
  addr4: bigint;
  fact: bigint;
  status: bigint;
  irq: bigint;
  src: bigint;
  dst: bigint;
  cnt: bigint;
  cmd: bigint;
}

async function readEdu(q: QemuProcess, base: number, timeoutMs: number): Promise<EduRegs> {
  const r = await call(q, [Q.read(base, 4), Q.read(base + 4, 4), Q.read(base + 8, 4), Q.read(base + 0x20, 4), Q.read(base + 0x24, 4), Q.read(base + 0x80, 8), Q.read(base + 0x88, 8), Q.read(base + 0x90, 8), Q.read(base + 0x98, 8)], timeoutMs);
  const v = r.map(parseValue);
  return { id: v[0], addr4: v[1], fact: v[2], status: v[3], irq: v[4], src: v[5], dst: v[6], cnt: v[7], cmd: v[8] };
}

const freshRegs = (e: EduRegs): boolean => e.addr4 === 0n && e.fact === 0n && e.status === 0n && e.irq === 0n && e.src === 0n && e.dst === 0n && e.cnt === 0n && e.cmd === 0n;

/**
 * Puts one edu back to its power-on state: registers through MMIO, the
 * buffer by DMA from zeroed scratch RAM (it has no MMIO window). `dirty`:
 * virtual time ran since the last restore, so the buffer may hold data.
 * Its last byte is out of every transfer's reach (QEMU 7.2 aborts on a
 * transfer that ends there), so it never changes.
 */
async function scrubEdu(x: DmaContext, base: number, dirty: boolean): Promise<boolean> {
  const { q, timeoutMs, scratch } = x;
  const clock = new Clock(x);
  const e = new Engine(x, clock, base);
  try {
    let regs = await readEdu(q, base, timeoutMs);
    if (regs.id !== EDU_ID) return false;
    if ((regs.cmd & 1n) !== 0n) {
      await e.idle();
      dirty = true;
    }
    if (dirty) {
      await call(q, [Q.memset(scratch, BUFFER_REACH, 0)], timeoutMs);
      await e.transfer(BUFFER, BigInt(scratch), BUFFER_REACH, true);
      const [bytes] = await call(q, [Q.readBytes(scratch, BUFFER_REACH)], timeoutMs);
      if (!parseBytes(bytes, BUFFER_REACH).every((b) => b === 0)) {
        await call(q, [Q.memset(scratch, BUFFER_REACH, 0)], timeoutMs);
        await e.transfer(BigInt(scratch), BUFFER, BUFFER_REACH, false);
      }
    }
    regs = await readEdu(q, base, timeoutMs);
    // The command register clears only when a transfer without flags runs: one byte, zero onto zero.
    if (regs.cmd !== 0n) await e.transfer(BigInt(scratch), BUFFER, 1, false);
    await clock.stop();
    const cmds = [Q.write(base + 0x20, 4, 0n), Q.write(base + 4, 4, 0xffffffffn), Q.write(base + 0x64, 4, 0xffffffffn), Q.write(base + 0x80, 8, 0n), Q.write(base + 0x88, 8, 0n), Q.write(base + 0x90, 8, 0n)];
    if (regs.fact !== 0n) cmds.push(Q.write(base + 8, 4, FACT_TO_ZERO));
    await call(q, cmds, timeoutMs);
    if (regs.fact !== 0n && !(await settleFactorial(q.qtest, base + 8, timeoutMs)).ok) return false;
    return freshRegs(await readEdu(q, base, timeoutMs));
  } finally {
    await clock.stop().catch(() => {});
  }
}

/** What the process went through since it was last fresh: virtual time ran (edu buffers), a write reached config bytes past the header. */
export interface Dirt {
  clockRan: boolean;
  /** Config dwords past a header that a write may have reached; null: any. */
  keptWritten: ReadonlySet<number> | null;
}

/**
 * Restores the state a fresh QEMU starts in for this topology (the
 * process was built from it), then runs the platform set-up, and verifies
 * it (verifyFresh). Returns false when that is not possible; `phases`
 * gets the time of the reset and of its verification.
 */
export async function restoreFresh(q: QemuProcess, t: Topology, ram: { model: number; harness: number }, dirty: Dirt, setup: readonly string[], timeoutMs: number, baseline: string, accel: QemuAccel, phases?: TargetPhases): Promise<boolean> {
  const t0 = performance.now();
  const reset = await resetToFresh(q, t, ram, dirty, setup, timeoutMs, accel).finally(() => phases !== undefined && (phases.reset += performance.now() - t0));
  if (!reset) return false;
  const t1 = performance.now();
  return verifyFresh(q, t, timeoutMs, baseline).finally(() => phases !== undefined && (phases.verify += performance.now() - t1));
}

/** Whatever else a reset missed, QEMU's own maps must be those of a fresh start. */
async function verifyFresh(q: QemuProcess, t: Topology, timeoutMs: number, baseline: string): Promise<boolean> {
  return JSON.stringify(await flatViews(q.qmp, t.roots[0].reserved ?? [], timeoutMs)) === baseline;
}

/** The reset: system_reset, every edu's buffers scrubbed, RAM cleared, the platform set up again. */
async function resetToFresh(q: QemuProcess, t: Topology, ram: { model: number; harness: number }, dirty: Dirt, setup: readonly string[], timeoutMs: number, accel: QemuAccel): Promise<boolean> {
  await systemReset(q, t, timeoutMs);
  const edus = [...walkDevices(t)].filter((w) => w.dev.kind === 'edu' && w.dev.present !== false);
  if (edus.length > 0) {
    // Every edu at once, each at its own scratch address; a port's secondary bus is the next free number of its root.
    const next = t.roots.map((r) => r.bus + 1);
    const cmds = edus.flatMap((w, i) => mapEdu(t, w.root, w.dev, w.parent, SCRATCH + i * MIB, next[w.root]++));
    await call(q, cmds, timeoutMs);
    const x: DmaContext = { q, ecam: null, scratch: ram.model, timeoutMs, accel };
    for (let i = 0; i < edus.length; i++) if (!(await scrubEdu(x, SCRATCH + i * MIB, dirty.clockRan))) return false;
  }
  // Config bytes no reset handler restores (kept-config.ts), before the second reset undoes the bus numbers given for them.
  let kept = { ok: true, busesSet: false };
  if (dirty.keptWritten === null || dirty.keptWritten.size > 0) {
    // Through ECAM where there is one (the set-up turns it on): past 0x100 CONFIG_ADDRESS names nothing.
    const { ecam } = configMechanisms(t, 0);
    if (ecam !== null) await call(q, [...setup], timeoutMs);
    kept = await restoreKeptConfig(q, t, configDword(ecam), timeoutMs, dirty.keptWritten);
  }
  if (!kept.ok) return false;
  // A second reset undoes the scratch mappings and bus numbers.
  if (edus.length > 0 || kept.busesSet) await systemReset(q, t, timeoutMs);
  await call(q, [Q.memset(0, ram.model + ram.harness, 0), ...setup], timeoutMs);
  return true;
}
