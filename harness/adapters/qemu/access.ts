/**
 * Config, MMIO and PIO operations as qtest commands, libqos-style: one
 * thin mapping per transport (ECAM as memory accesses, CF8/CFC as port
 * accesses, plain memory and port accesses). Each op becomes commands
 * whose replies decode into the observation; nothing here waits for a
 * reply, so a whole sequence can be pipelined.
 */
import type { Op, OpOf } from '../../ops/catalog.ts';
import type { Observation, Reason } from '../../ops/observation.ts';
import { busOf, devfnOf } from '../../topology/bdf.ts';
import { DEFAULT_ECAM, ownerOf, type Topology } from '../../topology/types.ts';
import { Q, expectOk, parseValue } from './qtest.ts';

/** Commands for one op and how to read their replies. */
export interface Planned {
  cmds: string[];
  decode(replies: readonly string[]): Observation;
}

/** An op QEMU cannot be asked, answered without asking it (as the model answers it). */
export const refused = (reason: Reason): Observation => ({ status: 'error', reason });

const read = (cmd: string): Planned => ({ cmds: [cmd], decode: ([r]) => ({ status: 'ok', value: parseValue(r) }) });
const write = (cmd: string): Planned => ({ cmds: [cmd], decode: ([r]) => (expectOk(r), { status: 'ok' }) });

/** CONFIG_ADDRESS for a BDF and register (PCI 3.0 §3.2.2.3.2). */
export const configAddress = (bdf: number, reg: number): number => (0x80000000 | (busOf(bdf) << 16) | (devfnOf(bdf) << 8) | (reg & 0xfc)) >>> 0;

/** ECAM address of a BDF and register (PCIe Base §7.2.2). */
export const ecamAddress = (ecam: number, bdf: number, reg: number): number => ecam + busOf(bdf) * 0x100000 + devfnOf(bdf) * 0x1000 + reg;

function config(op: OpOf<'cfg.read' | 'cfg.write'>, t: Topology): Planned | Observation {
  const owner = t.roots[ownerOf(t, op.root, 'config')];
  const value = op.op === 'cfg.write' ? op.value : null;
  if (op.via === 'ecam') {
    const ecam = owner.ecam === undefined ? DEFAULT_ECAM : owner.ecam;
    if (ecam === null) return refused('no-ecam');
    const addr = ecamAddress(ecam, op.bdf, op.reg);
    return value === null ? read(Q.read(addr, op.size)) : write(Q.write(addr, op.size, value));
  }
  if (owner.cf8 !== true) return refused('no-cf8');
  const latch = Q.out(0xcf8, 4, configAddress(op.bdf, op.reg));
  const port = 0xcfc + (op.reg & 3);
  if (value === null) return { cmds: [latch, Q.in(port, op.size)], decode: ([a, r]) => (expectOk(a), { status: 'ok', value: parseValue(r) }) };
  return { cmds: [latch, Q.out(port, op.size, value)], decode: ([a, r]) => (expectOk(a), expectOk(r), { status: 'ok' }) };
}

/** The plan for a config, MMIO or PIO op, or its observation when QEMU need not be asked; null for other ops. */
export function planAccess(op: Op, t: Topology): Planned | Observation | null {
  if ('root' in op && op.root >= t.roots.length) return refused('no-device');
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
    default:
      return null;
  }
}
