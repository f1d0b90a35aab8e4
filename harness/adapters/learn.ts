/**
 * Learning a function isoroot does not know, from the target itself, once
 * per target and function, written once over config accesses (as libqos
 * writes BAR mapping and capability walks once above its bus): the config
 * space as it is, then the write masks of the registers the
 * specifications define (PCI 3.0 §6.2: Command, Cache Line Size, Latency
 * Timer, Interrupt Line; §6.2.5: the BARs and the ROM, sized the usual
 * way with decode off), every value restored after its probe. What a
 * capability's registers take is the specification's (learned-layout.ts);
 * they are not written. The result goes into the topology, so the trace
 * carries it and replays without the target.
 */
import type { Op } from '../ops/catalog.ts';
import { bdf as mkBdf } from '../topology/bdf.ts';
import { ownerOf, type DeviceSpec, type LearnedFunction, type Topology } from '../topology/types.ts';
import { bytesToHex } from '../util/hex.ts';
import { readLe, writeLe } from '../util/access-split.ts';
import type { Session, Target } from './target.ts';
import * as H from '../model/header.ts';
import { capabilityList } from '../spec/cap-list.ts';

/** One config access: a read, or a write of `value`. */
export interface ConfigAccess {
  off: number;
  size: 1 | 2 | 4;
  value?: number;
}

/**
 * Config accesses to one function, in order, pipelined where the transport
 * can: for each, the value read (reads), or whether the write was taken;
 * null for a read the target refused or did not answer.
 */
export type ConfigIo = (accesses: readonly ConfigAccess[]) => Promise<(number | boolean | null)[]>;

const CAP_PCIE = 0x10;
const COMMAND_BITS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

const expressOf = (cfg: Uint8Array): boolean => capabilityList((o) => cfg[o]).some((e) => e.id === CAP_PCIE);

/** Reads [from, to) as dwords into `into`. */
async function readInto(io: ConfigIo, into: Uint8Array, from: number, to: number): Promise<void> {
  const acc: ConfigAccess[] = [];
  for (let o = from; o < to; o += 4) acc.push({ off: o, size: 4 });
  const r = await io(acc);
  acc.forEach((a, i) => writeLe(into, a.off, 4, BigInt(typeof r[i] === 'number' ? (r[i] as number) : 0xffffffff)));
}

/** Learns a function through its config accesses; `maxSize` caps the config space (256 where only CF8 reaches it). */
export async function learnFunction(io: ConfigIo, maxSize = 0x1000): Promise<LearnedFunction> {
  const head = new Uint8Array(0x100);
  await readInto(io, head, 0, 0x100);
  const size = expressOf(head) && maxSize >= 0x1000 ? 0x1000 : 0x100;
  const cfg = new Uint8Array(size);
  cfg.set(head);
  if (size > 0x100) await readInto(io, cfg, 0x100, size);
  const wmask = new Uint8Array(size);
  const type1 = (cfg[H.HEADER_TYPE] & 0x7f) === 1;
  const orig = (off: number, n: 1 | 2 | 4): number => Number(readLe(cfg, off, n));

  // Command, bit by bit: a refused or ignored bit is hardwired (some devices refuse a write of a bit they lack).
  const cmd = orig(H.COMMAND, 2);
  const probes: ConfigAccess[] = [];
  for (const b of COMMAND_BITS) probes.push({ off: H.COMMAND, size: 2, value: cmd ^ (1 << b) }, { off: H.COMMAND, size: 2 }, { off: H.COMMAND, size: 2, value: cmd });
  // Cache Line Size, Latency Timer, Interrupt Line: every bit flipped, then restored.
  const misc = [H.CACHE_LINE, H.LATENCY_TIMER, H.INTERRUPT_LINE];
  for (const off of misc) probes.push({ off, size: 1, value: ~orig(off, 1) & 0xff }, { off, size: 1 }, { off, size: 1, value: orig(off, 1) });
  // BARs and the ROM, sized with decode off (PCI 3.0 §6.2.5.1), then restored.
  const bars = type1 ? [H.BAR0, H.BAR0 + 4] : [0, 1, 2, 3, 4, 5].map((i) => H.BAR0 + 4 * i);
  const rom = type1 ? H.ROM_TYPE1 : H.ROM_TYPE0;
  // All ones, as every OS sizes a BAR (PCI 3.0 §6.2.5.1: the type bits ignore the write).
  probes.push({ off: H.COMMAND, size: 2, value: cmd & ~(H.CMD_IO | H.CMD_MEMORY) });
  for (const off of bars) probes.push({ off, size: 4, value: 0xffffffff }, { off, size: 4 }, { off, size: 4, value: orig(off, 4) });
  probes.push({ off: rom, size: 4, value: (0xfffff800 | (orig(rom, 4) & 0x7fe)) >>> 0 }, { off: rom, size: 4 }, { off: rom, size: 4, value: orig(rom, 4) });
  probes.push({ off: H.COMMAND, size: 2, value: cmd });
  const r = await io(probes);
  const readAt = (i: number): number | null => (typeof r[i] === 'number' ? (r[i] as number) : null);

  let k = 0;
  let cmdMask = 0;
  for (const b of COMMAND_BITS) {
    const got = readAt(k + 1);
    if (r[k] === true && got !== null && ((got ^ cmd) & (1 << b)) !== 0) cmdMask |= 1 << b;
    k += 3;
  }
  writeLe(wmask, H.COMMAND, 2, BigInt(cmdMask));
  for (const off of misc) {
    const got = readAt(k + 1);
    if (r[k] === true && got !== null) wmask[off] = (got ^ orig(off, 1)) & 0xff;
    k += 3;
  }
  k++; // decode off
  let upper = false;
  for (const off of bars) {
    const got = readAt(k + 1);
    // The address bits that read back set after all ones were written; the type bits are read-only,
    // and the upper dword of a 64-bit BAR is all address.
    const low = orig(off, 4);
    const addr = upper ? 0xffffffff : (low & 1) === 1 ? 0xfffffffc : 0xfffffff0;
    if (r[k] === true && got !== null) writeLe(wmask, off, 4, BigInt((got & addr) >>> 0));
    upper = !upper && (low & 1) === 0 && ((low >> 1) & 3) === 2;
    k += 3;
  }
  const romGot = readAt(k + 1);
  if (r[k] === true && romGot !== null && (romGot & 0xfffff800) !== 0) writeLe(wmask, rom, 4, BigInt(((romGot & 0xfffff800) | 1) >>> 0));
  return { config: bytesToHex(cfg), wmask: bytesToHex(wmask) };
}

/** Config accesses to a function, as ops run in one session: reads through `via`, pipelined. */
export function sessionConfigIo(session: Session, root: number, bdf: number, via: 'ecam' | 'cf8'): ConfigIo {
  return async (accesses) => {
    const ops: Op[] = accesses.map((a) =>
      a.value === undefined ? { op: 'cfg.read', root, via, bdf, reg: a.off, size: a.size } : { op: 'cfg.write', root, via, bdf, reg: a.off, size: a.size, value: BigInt(a.value >>> 0) },
    );
    const run = await session.run(ops);
    return accesses.map((a, i) => {
      const o = run.observations[i];
      if (o === undefined) return a.value === undefined ? null : false;
      if (a.value !== undefined) return o.status === 'ok';
      return o.status === 'ok' && o.value !== undefined ? Number(o.value) : null;
    });
  };
}

/** The functions of a topology that are to be learned: opaque, not yet learned, on a root bus (their BDF is known without firmware). */
export function toLearn(t: Topology): { root: number; dev: DeviceSpec }[] {
  const out: { root: number; dev: DeviceSpec }[] = [];
  t.roots.forEach((r, i) => {
    for (const d of r.devices) if (d.kind === 'opaque' && d.learned === undefined && d.present !== false) out.push({ root: i, dev: d });
  });
  return out;
}

const cache = new WeakMap<Target, Map<string, LearnedFunction>>();

/**
 * The topology with every unknown function on a root bus learned from the
 * target (one session, then closed: the next one starts fresh). A
 * function the target does not answer for stays opaque. Learned once per
 * target and function.
 */
export async function learnTopology(target: Target, t: Topology): Promise<Topology> {
  const todo = toLearn(t);
  if (todo.length === 0 || !target.capabilities.ops.includes('config')) return t;
  let known = cache.get(target);
  if (known === undefined) cache.set(target, (known = new Map()));
  const key = (root: number, d: DeviceSpec): string => `${root}:${t.roots[root].bus}:${JSON.stringify({ ...d, learned: undefined })}`;
  const missing = todo.filter((x) => !known.has(key(x.root, x.dev)));
  if (missing.length > 0) {
    const session = await target.open(t);
    try {
      for (const { root, dev } of missing) {
        const owner = t.roots[ownerOf(t, root, 'config')];
        const via = owner.ecam !== null && target.capabilities.vias.includes('ecam') ? 'ecam' : 'cf8';
        const io = sessionConfigIo(session, root, mkBdf(t.roots[root].bus, dev.slot, dev.fn), via);
        const l = await learnFunction(io, via === 'ecam' ? 0x1000 : 0x100);
        // A function that does not answer (all ones) is not learned.
        if (!l.config.startsWith('ffffffff')) known.set(key(root, dev), l);
      }
    } finally {
      await session.close();
    }
  }
  const learned = (root: number, d: DeviceSpec): DeviceSpec => {
    const l = d.kind === 'opaque' && d.learned === undefined ? known.get(key(root, d)) : undefined;
    return l === undefined ? d : { ...d, learned: l };
  };
  return { ...t, roots: t.roots.map((r, i) => ({ ...r, devices: r.devices.map((d) => learned(i, d)) })) };
}
