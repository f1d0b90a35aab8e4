/** Small builders shared by the suites: topologies, config and memory ops, a model to poke. */
import { Model } from '../harness/model/model.ts';
import { parseBdf } from '../harness/topology/bdf.ts';
import type { Op } from '../harness/ops/catalog.ts';
import type { Via } from '../harness/ops/fields.ts';
import type { Observation } from '../harness/ops/observation.ts';
import type { DeviceSpec, RootSpec, Topology } from '../harness/topology/types.ts';

export const B = (s: string): number => {
  const b = parseBdf(s);
  if (b === null) throw new Error(`bad BDF ${s}`);
  return b;
};

export const root = (devices: DeviceSpec[], extra: Partial<RootSpec> = {}): RootSpec => ({ bus: 0, busLimit: 0xff, cf8: true, ...extra, devices });

export const ep = (id: string, slot: number, extra: Partial<DeviceSpec> = {}): DeviceSpec => ({
  id,
  kind: 'endpoint',
  slot,
  fn: 0,
  bars: [{ kind: 'mem32', size: 0x4000 }, { kind: 'io', size: 0x20 }, { kind: 'mem64', size: 0x100000, prefetch: true }],
  ...extra,
});

/** A prediction without what only predictions carry (its rule, valueRule, choice and the allowed alternatives). */
export function outcome(o: Observation): Observation {
  const { rule: _r, valueRule: _v, choice: _c, allowed: _a, known: _k, knownData: _d, ...rest } = o;
  return rest;
}

/** A model with a convenience API for register-level tests. */
export class Poke {
  readonly m: Model;
  constructor(
    readonly t: Topology,
    readonly via: Via = 'ecam',
  ) {
    this.m = new Model(t);
  }
  /** The outcome the model predicts, without the rule and choice it names (full() keeps them). */
  apply(op: Op): Observation {
    return outcome(this.m.apply(op));
  }
  full(op: Op): Observation {
    return this.m.apply(op);
  }
  rd(bdf: string, reg: number, size = 4, r = 0, via = this.via): Observation {
    return this.apply({ op: 'cfg.read', root: r, via, bdf: B(bdf), reg, size });
  }
  /** The value of a config read, as a number. */
  cfg(bdf: string, reg: number, size = 4, r = 0, via = this.via): number {
    return Number(this.rd(bdf, reg, size, r, via).value);
  }
  wr(bdf: string, reg: number, value: number | bigint, size = 4, r = 0, via = this.via): Observation {
    return this.apply({ op: 'cfg.write', root: r, via, bdf: B(bdf), reg, size, value: BigInt(value) });
  }
  mr(addr: number, size = 4, r = 0): Observation {
    return this.apply({ op: 'mmio.read', root: r, addr, size });
  }
  mw(addr: number, value: number | bigint, size = 4, r = 0): Observation {
    return this.apply({ op: 'mmio.write', root: r, addr, size, value: BigInt(value) });
  }
  ior(port: number, size = 4, r = 0): Observation {
    return this.apply({ op: 'pio.read', root: r, port, size });
  }
  iow(port: number, value: number | bigint, size = 4, r = 0): Observation {
    return this.apply({ op: 'pio.write', root: r, port, size, value: BigInt(value) });
  }
  /** Places BAR `index` (a dword offset 0x10 + 4*index) at addr and enables decode and Bus Master. */
  place(bdf: string, index: number, addr: number, r = 0, wide = false): void {
    this.wr(bdf, 0x10 + 4 * index, addr % 2 ** 32, 4, r);
    if (wide) this.wr(bdf, 0x14 + 4 * index, Math.floor(addr / 2 ** 32), 4, r);
    this.wr(bdf, 0x04, 0x7, 2, r);
  }
}

export const oneRoot = (devices: DeviceSpec[], extra: Partial<RootSpec> = {}): Topology => ({ roots: [root(devices, extra)] });
