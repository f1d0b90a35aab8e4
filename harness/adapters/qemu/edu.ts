/**
 * What driving QEMU's edu takes beyond plain accesses (hw/misc/edu.c).
 * The factorial runs on a QEMU thread: after a write to the factorial
 * register, the next access must wait until the status register's
 * "computing" bit clears, as a driver would. edu's BAR0 is 1 MiB and
 * 1 MiB-aligned, so only a 4-byte write at offset 0x08 of a 1 MiB block
 * can start one; the block is edu's if its identification register reads
 * 0x010000ed.
 */
import type { Op } from '../../ops/catalog.ts';
import { Q, parseValue, type QtestChannel } from './qtest.ts';

export const EDU_ID = 0x010000edn;
/** Offsets a driver reaches to run a transfer: identification, source, destination, count, command. */
export const EDU_ENGINE = [0x00, 0x80, 0x88, 0x90, 0x98];
const FACT = 0x08;
const STATUS = 0x20;
const COMPUTING = 1n;
/** Status bit 7: raise an interrupt when the factorial is done; bit 0 of the interrupt status says it was. */
const IRQ_ON_FACTORIAL = 0x80n;
const IRQ_STATUS = 0x24;
const FACTORIAL_IRQ = 1n;
const BAR_SIZE = 0x100000;

/** Whether an op may have started edu's factorial (and so needs settling). */
export function mayStartFactorial(op: Op): boolean {
  return op.op === 'mmio.write' && op.size === 4 && op.addr % BAR_SIZE === FACT;
}

export type Settled = { ok: true } | { ok: false; why: string };

/**
 * How long edu may compute: n! is n multiplications in a thread, and a
 * guest may ask for n up to 2^32, which takes QEMU seconds. QEMU keeps
 * answering meanwhile (each poll has the per-operation timeout); only a
 * computation longer than this is a hang.
 */
export const FACTORIAL_MS = 60_000;

/** Waits until the edu at the op's block (if it is one) has finished computing. */
export async function settleFactorial(q: QtestChannel, addr: number, timeoutMs: number): Promise<Settled> {
  const base = addr - FACT;
  const limit = Math.max(timeoutMs, FACTORIAL_MS);
  const deadline = Date.now() + limit;
  const ask = async (cmd: string): Promise<bigint | string> => {
    q.send([cmd]);
    const n = await q.reply(timeoutMs);
    if (!('line' in n)) return 'eof' in n ? n.eof : 'edu did not answer in time';
    return parseValue(n.line);
  };
  const id = await ask(Q.read(base, 4));
  if (typeof id === 'string') return { ok: false, why: id };
  if (id !== EDU_ID) return { ok: true };
  for (let polls = 0; ; polls++) {
    const st = await ask(Q.read(base + STATUS, 4));
    if (typeof st === 'string') return { ok: false, why: st };
    if ((st & COMPUTING) === 0n) return (st & IRQ_ON_FACTORIAL) === 0n ? { ok: true } : raised(ask, base, deadline);
    if (Date.now() > deadline) return { ok: false, why: `edu at ${'0x' + base.toString(16)} still computing its factorial after ${limit} ms` };
    // A long computation: poll less often, leaving the core to edu's thread.
    if (polls > 100) await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * edu's thread clears "computing" before it takes QEMU's lock to raise the
 * interrupt: the interrupt belongs to the op that started the factorial,
 * so wait until the interrupt status shows it, then give the thread one
 * more turn of QEMU's main loop (it may have been set already).
 */
async function raised(ask: (cmd: string) => Promise<bigint | string>, base: number, deadline: number): Promise<Settled> {
  for (;;) {
    const st = await ask(Q.read(base + IRQ_STATUS, 4));
    if (typeof st === 'string') return { ok: false, why: st };
    if ((st & FACTORIAL_IRQ) !== 0n) break;
    if (Date.now() > deadline) return { ok: false, why: `edu at ${'0x' + base.toString(16)} finished its factorial but raised no interrupt` };
  }
  await new Promise((r) => setTimeout(r, 2));
  const again = await ask(Q.read(base + IRQ_STATUS, 4));
  return typeof again === 'string' ? { ok: false, why: again } : { ok: true };
}
