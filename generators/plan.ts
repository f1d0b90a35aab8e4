/**
 * A firmware plan for a topology: bus numbers for every bridge, the BDF
 * each device will answer at, bridge windows, and candidate placements for
 * every BAR. Generators draw addresses from it so that sequences reach deep
 * states (a BAR placed inside its bridge's window, the same address in two
 * roots) instead of hitting nothing. Deterministic in the topology.
 */
import { bdf, type Bdf } from '../harness/topology/bdf.ts';
import { isBridge, walkDevices, type DeviceSpec, type Topology } from '../harness/topology/types.ts';
import type { BarDef } from '../harness/model/bar.ts';
import { createFunction } from '../harness/model/personalities/index.ts';

export const MEM32_A = 0xc000_0000;
export const MEM32_B = 0xe000_0000;
export const MEM64_A = 0x8_0000_0000;
export const MEM64_B = 0x9_0000_0000;
export const IO_A = 0x1000;
export const IO_B = 0x8000;
const BRIDGE_MEM = 0xd000_0000;
const BRIDGE_PREF = 0x10_0000_0000;
const BRIDGE_IO = 0x4000;
const MIB = 0x100000;

export interface BarPlan {
  dev: string;
  root: number;
  region: number;
  kind: BarDef['kind'];
  size: number;
  /** Firmware-like packed address; roots with the same layout get the same one. */
  a: number;
  /** Where a move takes it. */
  b: number;
  /** Last aligned slot of the parent bridge's window (for window-edge cases), or a. */
  end: number;
}

export interface WindowPlan {
  mem: [number, number];
  pref: [number, number];
  io: [number, number];
}

export interface DevicePlan {
  spec: DeviceSpec;
  root: number;
  parent: string | null;
  bdf: Bdf;
}

export interface Plan {
  devices: Map<string, DevicePlan>;
  /** Bridge id → [primary, secondary, subordinate]. */
  buses: Map<string, [number, number, number]>;
  windows: Map<string, WindowPlan>;
  bars: BarPlan[];
  /** Bus numbers worth probing: root buses, planned secondaries, and their aliases. */
  busesOfInterest: number[];
}

const align = (x: number, a: number): number => Math.ceil(x / a) * a;

/** A device's BARs and ROM as its personality lays them out (the model is the one source of that). */
export function barDefs(d: DeviceSpec): BarDef[] {
  return createFunction(d, 0, 0, false).bars.filter((b): b is BarDef => b !== undefined);
}

export function firmwarePlan(t: Topology): Plan {
  const devices = new Map<string, DevicePlan>();
  const buses = new Map<string, [number, number, number]>();
  const windows = new Map<string, WindowPlan>();
  const bars: BarPlan[] = [];
  const interest = new Set<number>();

  t.roots.forEach((root, r) => {
    interest.add(root.bus);
    let next = root.bus + 1;
    let bridgeNo = 0;
    // Packing cursors per root: the same in every root, so isolated roots collide if they leak.
    const cur = { mem32: MEM32_A, mem64: MEM64_A, io: IO_A, mem32b: MEM32_B, mem64b: MEM64_B, iob: IO_B };
    const place = (d: DeviceSpec, win: WindowPlan | null): void => {
      for (const def of barDefs(d)) {
        const io = def.kind === 'io';
        const wide = def.kind === 'mem64';
        let a: number;
        let end: number;
        if (win === null) {
          const k = io ? 'io' : wide ? 'mem64' : 'mem32';
          a = align(cur[k], def.size);
          cur[k] = a + def.size;
          end = a;
        } else {
          const w = io ? win.io : wide ? win.pref : win.mem;
          const k = io ? 'io' : wide ? 'mem64' : 'mem32';
          a = align(Math.max(w[0], cur[k] >= w[0] && cur[k] <= w[1] ? cur[k] : w[0]), def.size);
          cur[k] = a + def.size;
          end = Math.floor((w[1] + 1 - def.size) / def.size) * def.size;
        }
        const kb = io ? 'iob' : wide ? 'mem64b' : 'mem32b';
        const b = align(cur[kb], def.size);
        cur[kb] = b + def.size;
        bars.push({ dev: d.id, root: r, region: def.region, kind: def.kind, size: def.size, a, b, end });
      }
    };
    const visit = (d: DeviceSpec, parent: DeviceSpec | null, bus: number, win: WindowPlan | null): void => {
      devices.set(d.id, { spec: d, root: r, parent: parent?.id ?? null, bdf: bdf(bus, d.slot, d.fn) });
      place(d, win);
      if (!isBridge(d)) return;
      const sec = next <= root.busLimit ? next++ : 0;
      const i = bridgeNo++;
      const span = Math.max(MIB, align((d.children ?? []).reduce((n, c) => n + barDefs(c).filter((x) => x.kind !== 'io').reduce((m, x) => m + x.size, 0), 0) * 2, MIB));
      const w: WindowPlan = {
        mem: [BRIDGE_MEM + i * 0x100_0000, BRIDGE_MEM + i * 0x100_0000 + Math.min(span, 0x100_0000) - 1],
        pref: [BRIDGE_PREF + i * 0x1000_0000, BRIDGE_PREF + i * 0x1000_0000 + Math.min(span, 0x1000_0000) - 1],
        io: [BRIDGE_IO + i * 0x1000, BRIDGE_IO + i * 0x1000 + 0xfff],
      };
      windows.set(d.id, w);
      const saved = { ...cur };
      for (const c of d.children ?? []) visit(c, d, sec, w);
      Object.assign(cur, { mem32: saved.mem32, mem64: saved.mem64, io: saved.io });
      const sub = Math.max(sec, next - 1);
      buses.set(d.id, [bus, sec, sub]);
      if (sec !== 0) interest.add(sec);
    };
    for (const d of root.devices) visit(d, null, root.bus, null);
  });
  // Aliases a decoder that drops high bus bits would produce, and buses past the planned ones.
  for (const b of [...interest]) {
    interest.add(b & 0x1f);
    interest.add((b + 0x20) & 0xff);
  }
  return { devices, buses, windows, bars, busesOfInterest: [...interest].sort((a, b) => a - b) };
}

/** All devices with their plan, in topology order. */
export function plannedDevices(t: Topology, p: Plan): DevicePlan[] {
  return [...walkDevices(t)].map((w) => p.devices.get(w.dev.id)!);
}
