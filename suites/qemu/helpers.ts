/**
 * What the QEMU conformance suites share: QEMU found (or a loud skip on a
 * developer's machine, a failure in CI), a target per test, topologies
 * completed for q35, and a run checked by the oracles.
 */
import { DEFAULT_QEMU, probeQemu } from '../../harness/adapters/qemu/binary.ts';
import { openQemuTarget, type QemuOptions, type QemuTarget } from '../../harness/adapters/qemu/target.ts';
import { execute, type Executed } from '../../harness/run/execute.ts';
import { checkRun, judgeOf, violations } from '../../harness/run/check.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import type { Finding } from '../../harness/oracles/finding.ts';
import type { DeviceSpec, RootSpec, SpaceKind, Topology } from '../../harness/topology/types.ts';
import { requireProgram } from '../require.ts';

/**
 * The QEMU the suites run against: ISOROOT_QEMU names another binary (a
 * newer QEMU, e.g. the one scripts/install-qemu-backports.sh installs),
 * as --qemu does for the CLI; by default Debian's, on PATH.
 */
export const SUITE_QEMU = process.env.ISOROOT_QEMU || DEFAULT_QEMU;
/** The same, as CLI arguments for `isoroot ... --target qemu`. */
export const SUITE_QEMU_ARGS: string[] = SUITE_QEMU === DEFAULT_QEMU ? [] : ['--qemu', SUITE_QEMU];

/** SUITE_QEMU's version ("7.2.22"). */
export function suiteQemuVersion(): string {
  return probeQemu(SUITE_QEMU).version;
}

export function requireQemu(): void {
  requireProgram(SUITE_QEMU, SUITE_QEMU === DEFAULT_QEMU ? 'apt-get install qemu-system-x86' : 'ISOROOT_QEMU names it; scripts/install-qemu-backports.sh installs QEMU 11');
}

/** Runs `body` with a QEMU target (SUITE_QEMU unless `o` says otherwise) that is disposed of afterwards, whatever happens. */
export async function withQemu<T>(body: (t: QemuTarget) => Promise<T>, o: QemuOptions = {}): Promise<T> {
  const t = openQemuTarget({ qemu: SUITE_QEMU, ...o });
  try {
    return await body(t);
  } finally {
    await t.dispose();
  }
}

const SHARED: Partial<Record<SpaceKind, number>> = { memory: 0, io: 0, dma: 0, irq: 0, pasid: 0, config: 0 };

/** The main root (bus 0), and expander roots at the given buses, each 0x20 buses wide. */
export function machine(main: DeviceSpec[], expanders: { bus: number; devices: DeviceSpec[] }[] = [], extra: Partial<RootSpec> = {}): Topology {
  return {
    roots: [
      { bus: 0, busLimit: 0x1f, ...extra, devices: main },
      ...expanders.map((e) => ({ bus: e.bus, busLimit: e.bus + 0x1f, share: SHARED, devices: e.devices })),
    ],
  };
}

export const edu = (id: string, slot: number, extra: Partial<DeviceSpec> = {}): DeviceSpec => ({ id, kind: 'edu', slot, fn: 0, ...extra });
export const testdev = (id: string, slot: number): DeviceSpec => ({ id, kind: 'pci-testdev', slot, fn: 0 });
export const port = (id: string, slot: number, child?: DeviceSpec): DeviceSpec => ({ id, kind: 'root-port', slot, fn: 0, ...(child !== undefined ? { children: [child] } : {}) });

export interface Checked extends Executed {
  topology: Topology;
  violations: Finding[];
}

/** Runs ops on QEMU and checks them against the model. */
export async function conform(target: QemuTarget, topology: Topology, ops: readonly Op[]): Promise<Checked> {
  const t = target.prepare!(topology);
  const ex = await execute(target, t, ops);
  // Judged as QEMU's profile says where PCI leaves a choice (unassigned memory reads 0).
  return { ...ex, topology: t, violations: violations(checkRun(t, judgeOf(target), ex.steps, ex.failure, ops)) };
}

/** Findings as lines, for an expectation whose failure says what differed. */
export const lines = (fs: readonly Finding[]): string[] => fs.map((f) => `${f.signature} at op #${f.index}: ${f.message}`);

export const cfgR = (bdf: number, reg: number, size = 4, via: 'ecam' | 'cf8' = 'ecam', root = 0): Op => ({ op: 'cfg.read', root, via, bdf, reg, size });
export const cfgW = (bdf: number, reg: number, value: number | bigint, size = 4, via: 'ecam' | 'cf8' = 'ecam', root = 0): Op => ({ op: 'cfg.write', root, via, bdf, reg, size, value: BigInt(value) });
export const mr = (addr: number, size = 4): Op => ({ op: 'mmio.read', root: 0, addr, size });
export const mw = (addr: number, value: number | bigint, size = 4): Op => ({ op: 'mmio.write', root: 0, addr, size, value: BigInt(value) });
export const bdf = (bus: number, dev: number, fn = 0): number => (bus << 8) | (dev << 3) | fn;
