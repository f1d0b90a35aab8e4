/**
 * Config, MMIO and PIO operations as qtest commands, libqos-style: one
 * thin mapping per transport (ECAM as memory accesses, CF8/CFC as port
 * accesses, plain memory and port accesses). Each op becomes commands
 * whose replies decode into the observation; nothing here waits for a
 * reply, so a whole sequence can be pipelined (keepingLatch, for the
 * harness's own config accesses, is the exception).
 */
import { needs, writeValue, type Op, type OpOf } from '../../ops/catalog.ts';
import { unhandled } from '../../ops/exhaustive.ts';
import type { Observation, Reason } from '../../ops/observation.ts';
import type { Topology } from '../../topology/types.ts';
import { cf8Access as lowerCf8, configMechanisms, lowerConfig, type BusAccess } from '../../bus/config-access.ts';
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

/** One bus access as a qtest command (the QPCIBus of this transport: memory as readX/writeX, IO as inX/outX). */
export function busCommand(a: BusAccess): string {
  if (a.space === 'memory') return a.value === null ? Q.read(a.addr, a.size) : Q.write(a.addr, a.size, a.value);
  return a.value === null ? Q.in(a.addr, a.size) : Q.out(a.addr, a.size, a.value);
}

/** One config access through CONFIG_ADDRESS and CONFIG_DATA as qtest commands: the latch, then the data port's byte lane. */
export const cf8Access = (bdf: number, reg: number, size: number, value?: bigint | number): string[] => lowerCf8(bdf, reg, size, value === undefined ? null : BigInt(value)).map(busCommand);

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
  const lowered = lowerConfig(configMechanisms(t, op.root), op.via, op.bdf, op.reg, op.size, writeValue(op));
  if (typeof lowered === 'string') return ownRefusal(lowered);
  const cmds = lowered.map(busCommand);
  // Every access before the last is a write (the latch); the last reads the register or writes it.
  return {
    cmds,
    decode: (replies) => {
      for (const r of replies.slice(0, -1)) expectOk(r);
      const last = replies[replies.length - 1];
      if (lowered[lowered.length - 1].value !== null) return (expectOk(last), { status: 'ok' });
      return { status: 'ok', value: parseValue(last) };
    },
  };
}

/** The plan for a config, MMIO or PIO op, or its observation when QEMU need not be asked; null for other ops. */
export function planAccess(op: Op, t: Topology): Planned | Observation | null {
  if ('root' in op && op.root >= t.roots.length) return ownRefusal('no-device');
  if (needs(op, 'vfio')) return null;
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
