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
 * only. The VM runs (QMP cont) only while a transfer is in flight; with
 * -icount sleep=off and a halted CPU, virtual time jumps straight to the
 * engine's timer.
 */
import type { OpOf } from '../../ops/catalog.ts';
import type { Observation } from '../../ops/observation.ts';
import { EDU_ID } from './edu.ts';
import type { QemuProcess } from './process.ts';
import { queryPci } from './pci-query.ts';
import { Q, QtestError, parseBytes, parseValue } from './qtest.ts';
import { configAddress, ecamAddress } from './access.ts';
import { bdf } from '../../topology/bdf.ts';

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
}

/** Reads and writes the config word of one function without disturbing CF8 for the model. */
async function configWord(x: DmaContext, b: number, reg: number, value?: number): Promise<number> {
  const { qtest } = x.q;
  if (x.ecam !== null) {
    const a = ecamAddress(x.ecam, b, reg);
    if (value === undefined) return Number(await qtest.value(Q.read(a, 2), x.timeoutMs));
    await qtest.call([Q.write(a, 2, BigInt(value))], x.timeoutMs);
    return value;
  }
  const latch = await qtest.value(Q.in(0xcf8, 4), x.timeoutMs);
  const port = 0xcfc + (reg & 3);
  const r = await qtest.call([Q.out(0xcf8, 4, configAddress(b, reg)), value === undefined ? Q.in(port, 2) : Q.out(port, 2, value), Q.out(0xcf8, 4, latch)], x.timeoutMs);
  return value ?? Number(parseValue(r[1]));
}

/** edu's DMA engine at a mapped BAR0: transfers run the VM until the engine is idle again. */
export class Engine {
  private running = false;
  constructor(
    private readonly x: DmaContext,
    private readonly base: number,
  ) {}

  private async cont(): Promise<void> {
    if (this.running) return;
    await this.x.q.qmp.execute('cont', undefined, this.x.timeoutMs);
    this.running = true;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.x.q.qmp.execute('stop', undefined, this.x.timeoutMs);
  }

  /** Runs the VM until the engine's Start bit clears. */
  async idle(): Promise<void> {
    const { qtest } = this.x.q;
    const deadline = Date.now() + this.x.timeoutMs;
    for (let first = true; ; first = false) {
      const cmd = await qtest.value(Q.read(this.base + CMD, 8), this.x.timeoutMs);
      if ((cmd & START) === 0n) return;
      if (first) await this.cont();
      if (Date.now() > deadline) throw new QtestError(`edu's DMA engine at ${'0x' + this.base.toString(16)} still busy after ${this.x.timeoutMs} ms`, 'hang');
    }
  }

  async transfer(src: bigint, dst: bigint, len: number, toRam: boolean): Promise<void> {
    const b = this.base;
    await this.x.q.qtest.call([Q.write(b + SRC, 8, src), Q.write(b + DST, 8, dst), Q.write(b + CNT, 8, BigInt(len)), Q.write(b + CMD, 8, START | (toRam ? TO_RAM : 0n))], this.x.timeoutMs);
    await this.cont();
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

export async function eduDma(x: DmaContext, id: string, op: OpOf<'dma.read'> | OpOf<'dma.write'>): Promise<Observation> {
  const place = (await queryPci(x.q.qmp, x.timeoutMs)).get(id);
  if (place === undefined) return { status: 'error', reason: 'not-present' };
  const base = place.bars.get(0) ?? -1;
  if (base < 0 || (await x.q.qtest.value(Q.read(base, 4), x.timeoutMs)) !== EDU_ID) return { status: 'error', reason: 'unreachable' };
  const where = bdf(place.bus, place.slot, place.fn);
  const e = new Engine(x, base);
  const { qtest } = x.q;
  const scratch = BigInt(x.scratch);
  try {
    let o: Observation;
    await e.idle();
    if (op.op === 'dma.write') {
      const len = op.data.length;
      await qtest.call([Q.writeBytes(x.scratch, op.data)], x.timeoutMs);
      await withMaster(x, where, () => e.transfer(scratch, BUFFER, len, false));
      await e.transfer(BUFFER, BigInt(op.iova), len, true);
      await qtest.call([Q.memset(x.scratch, len, 0)], x.timeoutMs);
      o = { status: 'ok' };
    } else {
      await e.transfer(BigInt(op.iova), BUFFER, op.len, false);
      await withMaster(x, where, () => e.transfer(BUFFER, scratch, op.len, true));
      const [bytes] = await qtest.call([Q.readBytes(x.scratch, op.len), Q.memset(x.scratch, op.len, 0)], x.timeoutMs);
      o = { status: 'ok', data: parseBytes(bytes, op.len) };
    }
    await e.stop();
    return o;
  } catch (err) {
    await e.stop().catch(() => {});
    throw err;
  }
}
