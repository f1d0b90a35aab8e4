/**
 * Config, MMIO and PIO operations as qtest commands, libqos-style: one
 * thin mapping per transport (ECAM as memory accesses, CF8/CFC as port
 * accesses, plain memory and port accesses). Each op becomes commands
 * whose replies decode into the observation; nothing here waits for a
 * reply, so a whole sequence can be pipelined (keepingLatch, for the
 * harness's own config accesses, is the exception).
 */
import { writeValue, type Op, type OpOf } from '../../ops/catalog.ts';
import { unhandled } from '../../ops/exhaustive.ts';
import type { Observation, Reason } from '../../ops/observation.ts';
import { busOf, devfnOf } from '../../topology/bdf.ts';
import { DEFAULT_ECAM, ownerOf, type Topology } from '../../topology/types.ts';
import { Q, expectOk, parseValue, type QtestChannel } from './qtest.ts';

/** Commands for one op and how to read their replies. */
export interface Planned {
  cmds: string[];
  decode(replies: readonly string[]): Observation;
}

/** An op QEMU cannot be asked, answered without asking it (as the model answers it). */
export const refused = (reason: Reason): Observation => ({ status: 'error', reason });
/**
 * A refusal isoroot's own driver decided (from its tables, or because it
 * could not reach a device's registers): no evidence about QEMU, so the
 * oracles skip it (Observation.source).
 */
export const ownRefusal = (reason: Reason): Observation => ({ status: 'error', reason, source: 'harness' });

const read = (cmd: string): Planned => ({ cmds: [cmd], decode: ([r]) => ({ status: 'ok', value: parseValue(r) }) });
const write = (cmd: string): Planned => ({ cmds: [cmd], decode: ([r]) => (expectOk(r), { status: 'ok' }) });

/** CONFIG_ADDRESS for a BDF and register (PCI 3.0 §3.2.2.3.2). */
export const configAddress = (bdf: number, reg: number): number => (0x80000000 | (busOf(bdf) << 16) | (devfnOf(bdf) << 8) | (reg & 0xfc)) >>> 0;

/** ECAM address of a BDF and register (PCIe Base §7.2.2). */
export const ecamAddress = (ecam: number, bdf: number, reg: number): number => ecam + busOf(bdf) * 0x100000 + devfnOf(bdf) * 0x1000 + reg;

/** One config access through CONFIG_ADDRESS and CONFIG_DATA as qtest commands: the latch, then the data port's byte lane. */
export function cf8Access(bdf: number, reg: number, size: number, value?: bigint | number): string[] {
  const port = 0xcfc + (reg & 3);
  return [Q.out(0xcf8, 4, configAddress(bdf, reg)), value === undefined ? Q.in(port, size) : Q.out(port, size, value)];
}

/**
 * Runs the harness's own CF8/CFC commands and puts the sequence's
 * CONFIG_ADDRESS back after them (the model keeps the latch the sequence
 * wrote); returns the commands' replies.
 */
export async function keepingLatch(q: QtestChannel, cmds: readonly string[], timeoutMs: number): Promise<string[]> {
  const [latch, ...replies] = await q.call([Q.in(0xcf8, 4), ...cmds], timeoutMs);
  await q.call([Q.out(0xcf8, 4, parseValue(latch))], timeoutMs);
  return replies;
}

function config(op: OpOf<'cfg.read' | 'cfg.write'>, t: Topology): Planned | Observation {
  const owner = t.roots[ownerOf(t, op.root, 'config')];
  const value = writeValue(op);
  if (op.via === 'ecam') {
    const ecam = owner.ecam === undefined ? DEFAULT_ECAM : owner.ecam;
    if (ecam === null) return ownRefusal('no-ecam');
    const addr = ecamAddress(ecam, op.bdf, op.reg);
    return value === null ? read(Q.read(addr, op.size)) : write(Q.write(addr, op.size, value));
  }
  if (owner.cf8 !== true) return ownRefusal('no-cf8');
  const cmds = cf8Access(op.bdf, op.reg, op.size, value ?? undefined);
  if (value === null) return { cmds, decode: ([a, r]) => (expectOk(a), { status: 'ok', value: parseValue(r) }) };
  return { cmds, decode: ([a, r]) => (expectOk(a), expectOk(r), { status: 'ok' }) };
}

/** The plan for a config, MMIO or PIO op, or its observation when QEMU need not be asked; null for other ops. */
export function planAccess(op: Op, t: Topology): Planned | Observation | null {
  if ('root' in op && op.root >= t.roots.length) return ownRefusal('no-device');
  switch (op.op) {
    case 'cfg.read':
    case 'cfg.write':
      return config(op, t);
    case 'mmio.read':
      return read(Q.read(op.addr, op.size));
    case 'mmio.write':
      return write(Q.write(op.addr, op.size, op.value));
    case 'pio.read':
      return read(Q.in(op.port, op.size));
    case 'pio.write':
      return write(Q.out(op.port, op.size, op.value));
    // Not one qtest access: dialogues (the session drives them), or ops QEMU's target does not have.
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
    case 'emu.map-bdf':
    case 'emu.unmap-bdf':
    case 'emu.map-range':
    case 'emu.unmap-range':
    case 'dev.plug':
    case 'dev.unplug':
    case 'dev.reset':
    case 'root.reset':
    case 'region.read':
    case 'region.write':
    case 'clock.step':
      return null;
  }
  return unhandled(op);
}
