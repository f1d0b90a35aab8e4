/**
 * dma.read and dma.write on QEMU's edu, driven as a driver drives it
 * (harness/model/dma-engine.ts says what the model expects):
 * 1. find edu's BAR0 (QMP query-pci) and check the CPU reaches it;
 * 2. let virtual time run until its engine is idle;
 * 3. run the transfer: RAM to the buffer, or the buffer to RAM.
 * edu's 4 KiB buffer cannot be read or written through MMIO, only by DMA,
 * so the bytes of a dma.write reach the buffer, and the bytes a dma.read
 * brought in leave it, through the harness's own scratch RAM (beyond the
 * topology's RAM, a reserved range), with Bus Master on for that transfer
 * only. edu's engine moves the data on a timer, 100 ms of virtual time
 * after the start. With the qtest accelerator, virtual time moves only
 * by qtest's clock_step: the clock steps 100 ms at a time until the engine
 * is idle (one step per transfer), the same every run. Under TCG (-S) the
 * VM runs (QMP cont) only while a transfer is in flight; with -icount
 * sleep=off and a halted CPU, virtual time jumps straight to the engine's
 * timer.
 */
import type { OpOf } from '../../ops/catalog.ts';
import type { Observation } from '../../ops/observation.ts';
import type { Iommu } from './iommu.ts';
import type { VtdFault } from './vtd.ts';
import { EDU_ENGINE } from './edu.ts';
import { flatViews, ownerAt } from './mtree.ts';
import type { QemuProcess } from './process.ts';
import { queryPci } from './pci-query.ts';
import { Q, QtestError, parseBytes, parseValue } from './qtest.ts';
import { cf8Access, keepingLatch } from './access.ts';
import { ecamAddress } from '../../bus/config-access.ts';
import { bdf } from '../../topology/bdf.ts';
import type { QemuAccel } from './build.ts';

const SRC = 0x80;
const DST = 0x88;
const CNT = 0x90;
const CMD = 0x98;
const START = 1n;
const TO_RAM = 2n;
export const BUFFER = 0x40000n;
/** The most a transfer can move: QEMU 7.2's range check aborts on any transfer that ends at the buffer's end. */
export const BUFFER_REACH = 0xfff;
const COMMAND = 0x04;
const MASTER = 0x4;

export interface DmaContext {
  q: QemuProcess;
  /** ECAM base, or null to reach config space through CF8/CFC. */
  ecam: number | null;
  /** Guest-physical scratch area the model does not have (at least 4 KiB). */
  scratch: number;
  timeoutMs: number;
  /** How virtual time moves: clock_step (qtest accelerator) or running the VM (TCG). */
  accel: QemuAccel;
}

/** edu's DMA timer: a transfer runs this long after its start, in virtual time (hw/misc/edu.c: 100 ms). */
export const EDU_DMA_NS = 100_000_000;
/** Steps of EDU_DMA_NS after which an engine still busy under the qtest accelerator is hung. */
const MAX_STEPS = 10;

/** Reads and writes the config word of one function without disturbing CF8 for the model. */
async function configWord(x: DmaContext, b: number, reg: number, value?: number): Promise<number> {
  const { qtest } = x.q;
  if (x.ecam !== null) {
    const a = ecamAddress(x.ecam, b, reg);
    if (value === undefined) return Number(await qtest.value(Q.read(a, 2), x.timeoutMs));
    await qtest.call([Q.write(a, 2, BigInt(value))], x.timeoutMs);
    return value;
  }
  const r = await keepingLatch(qtest, cf8Access(b, reg, 2, value), x.timeoutMs);
  return value ?? Number(parseValue(r[1]));
}

/**
 * Virtual time. qtest accelerator: advance() steps it by EDU_DMA_NS.
 * TCG: advance() lets the VM run (QMP cont) until stop(); it runs only
 * while a transfer is waited for.
 */
export class Clock {
  private running = false;
  constructor(private readonly x: DmaContext) {}

  async advance(): Promise<void> {
    if (this.x.accel === 'qtest') {
      await this.x.q.qtest.call([Q.clockStep(EDU_DMA_NS)], this.x.timeoutMs);
      return;
    }
    if (this.running) return;
    await this.x.q.qmp.execute('cont', undefined, this.x.timeoutMs);
    this.running = true;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.x.q.qmp.execute('stop', undefined, this.x.timeoutMs);
  }
}

/** edu's DMA engine at a mapped BAR0: transfers move the clock until the engine is idle again. */
export class Engine {
  constructor(
    private readonly x: DmaContext,
    private readonly clock: Clock,
    private readonly base: number,
  ) {}

  /** Moves virtual time until the engine's Start bit clears. */
  async idle(): Promise<void> {
    const { qtest } = this.x.q;
    const deadline = Date.now() + this.x.timeoutMs;
    const at = '0x' + this.base.toString(16);
    for (let steps = 0; ; steps++) {
      const cmd = await qtest.value(Q.read(this.base + CMD, 8), this.x.timeoutMs);
      if ((cmd & START) === 0n) return;
      if (this.x.accel === 'qtest' && steps >= MAX_STEPS) throw new QtestError(`edu's DMA engine at ${at} still busy after ${(MAX_STEPS * EDU_DMA_NS) / 1e6} ms of virtual time`, 'hang');
      if (Date.now() > deadline) throw new QtestError(`edu's DMA engine at ${at} still busy after ${this.x.timeoutMs} ms`, 'hang');
      await this.clock.advance();
    }
  }

  async transfer(src: bigint, dst: bigint, len: number, toRam: boolean): Promise<void> {
    const b = this.base;
    await this.x.q.qtest.call([Q.write(b + SRC, 8, src), Q.write(b + DST, 8, dst), Q.write(b + CNT, 8, BigInt(len)), Q.write(b + CMD, 8, START | (toRam ? TO_RAM : 0n))], this.x.timeoutMs);
    await this.idle();
  }
}

/** Runs `body` with Bus Master on (restoring the command register after). */
async function withMaster<T>(x: DmaContext, where: number, body: () => Promise<T>): Promise<T> {
  const cmd = await configWord(x, where, COMMAND);
  if ((cmd & MASTER) !== 0) return body();
  await configWord(x, where, COMMAND, cmd | MASTER);
  try {
    return await body();
  } finally {
    await configWord(x, where, COMMAND, cmd);
  }
}

/** A located device: its requester ID and its registers. */
export interface Located {
  rid: number;
  base: number;
}

/**
 * The devices whose BAR0 registers at `offsets` the CPU reaches: QEMU's own
 * flat view of the memory space must show, at each of them, that device's
 * region (by its owner): an ID read alone would not tell two devices at
 * one address apart.
 */
export async function locate(x: DmaContext, ids: readonly string[], offsets: readonly number[]): Promise<Map<string, Located>> {
  const places = await queryPci(x.q.qmp, x.timeoutMs);
  const memory = (await flatViews(x.q.qmp, [], x.timeoutMs)).memory;
  const out = new Map<string, Located>();
  for (const id of ids) {
    const p = places.get(id);
    const base = p?.bars.get(0) ?? -1;
    if (p === undefined || base < 0) continue;
    if (offsets.every((off) => ownerAt(memory, base + off)?.owner === id)) out.set(id, { rid: bdf(p.bus, p.slot, p.fn), base });
  }
  return out;
}

/**
 * A dma op on edu `id`. `edus`: every edu that may have a transfer
 * pending; all of them run to idle before this one's transfer, as the
 * model lets time pass (and the IOMMU's one fault record stays this
 * transfer's).
 */
export async function eduDma(x: DmaContext, id: string, op: OpOf<'dma.read'> | OpOf<'dma.write'>, edus: readonly string[], iommu: Iommu | null): Promise<Observation> {
  const found = await locate(x, edus, EDU_ENGINE);
  const me = found.get(id);
  // Not listed (behind a bridge without bus numbers), unmapped, or shadowed: out of a driver's reach.
  if (me === undefined) return { status: 'error', reason: 'unreachable', source: 'harness' };
  const tr = iommu?.translation(id) ?? null;
  if (iommu !== null) for (const [other, l] of found) await iommu.translation(other).real(l.rid);
  const clock = new Clock(x);
  const engines = [...found.values()].map((l) => new Engine(x, clock, l.base));
  const e = new Engine(x, clock, me.base);
  const { qtest } = x.q;
  const scratch = BigInt(x.scratch);
  // The harness's own transfers: Bus Master on, and under the IOMMU its scratch mapping.
  const harness = (body: () => Promise<void>): Promise<void> => withMaster(x, me.rid, () => (tr === null ? body() : tr.harness(me.rid, body)));
  try {
    for (const g of engines) await g.idle();
    if (tr !== null) await tr.fault();
    let o: Observation;
    if ('data' in op) {
      const len = op.data.length;
      await qtest.call([Q.writeBytes(x.scratch, op.data)], x.timeoutMs);
      await harness(() => e.transfer(scratch, BUFFER, len, false));
      await e.transfer(BUFFER, BigInt(op.iova), len, true);
      await qtest.call([Q.memset(x.scratch, len, 0)], x.timeoutMs);
      const f = tr === null ? null : await tr.fault();
      o = f === null ? { status: 'ok' } : faulted(f);
    } else {
      await e.transfer(BigInt(op.iova), BUFFER, op.len, false);
      const f = tr === null ? null : await tr.fault();
      if (f !== null) o = faulted(f);
      else {
        await harness(() => e.transfer(BUFFER, scratch, op.len, true));
        const [bytes] = await qtest.call([Q.readBytes(x.scratch, op.len), Q.memset(x.scratch, op.len, 0)], x.timeoutMs);
        o = { status: 'ok', data: parseBytes(bytes, op.len) };
      }
    }
    await clock.stop();
    return o;
  } catch (err) {
    await clock.stop().catch(() => {});
    throw err;
  }
}

/** A DMA's fault: the reason where VT-d's code names one, and the code itself as evidence for a reader. */
export function faulted(f: NonNullable<VtdFault>): Observation {
  const evidence = { events: [`intel-iommu fault record: reason 0x${f.code.toString(16).padStart(2, '0')}`] };
  return f.reason === null ? { status: 'fault', evidence } : { status: 'fault', reason: f.reason, evidence };
}
