/**
 * Turns a target choice (`model`, `exec:<command>`, `qemu[:machine]`, with
 * a mutant, a timeout and a QEMU binary) into a target. The choice is
 * plain data: campaigns store it and hand it to their workers.
 */
import { modelTarget } from './model/target.ts';
import { MUTANT_NAMES } from './model/mutants.ts';
import { openExecTarget } from './exec/target.ts';
import { openGuestTarget } from './vfio-guest/target.ts';
import { prepareGuestTopology } from './vfio-guest/prepare.ts';
import { openQemuTarget } from './qemu/target.ts';
import { XEN_MODES, openXenTarget, prepareXen, type XenMode } from './xen/target.ts';
import { openVfioUserTarget, parseContract, socketsOf, type Contract } from './vfio-user/target.ts';
import { MACHINES, PLATFORMS, type Machine } from './qemu/platform.ts';
import { prepareTopology } from './qemu/prepare.ts';
import { deviceProps, probeQemu } from './qemu/binary.ts';
import { qemuBuild } from './qemu/build.ts';
import type { Topology } from '../topology/types.ts';
import type { Target } from './target.ts';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { serverCommandProblem } from './vfio-user/servers.ts';
import { InputError } from '../util/errors.ts';
import { loadProfileOption } from '../profiles/profile.ts';

export interface OpenedTarget {
  target: Target;
  dispose(): Promise<void>;
}

export interface TargetChoice {
  /** model | exec:<command> | qemu | qemu:<machine> */
  spec: string;
  mutant?: string;
  /** Per-operation timeout of exec and QEMU targets. */
  timeoutMs?: number;
  /** The QEMU binary, for qemu targets. */
  qemu?: string;
  /** QEMU's own trace events as evidence (--qemu-events). */
  qemuEvents?: boolean;
  /** vfio-user: the spaces the roots share (--contract). */
  contract?: string;
  /** The profile to judge by (--profile NAME|FILE), over the one the target declares. */
  profile?: string;
  /** vfio-user: the command that starts each server, {socket} replaced (--server). */
  server?: string;
  /** xen-vpci: the Xen tree (--xen-src). */
  xenSrc?: string;
  /** vfio-guest: the user's own kernel and its modules folder (--kernel, --modules). */
  kernel?: string;
  modules?: string;
}

export const TARGET_HELP = `model | exec:<command> | qemu[:${MACHINES.join('|')}] | vfio-user:SOCKET[,SOCKET...] | xen-vpci[:${XEN_MODES.join('|')}] | vfio-guest`;

const xenModeOf = (spec: string): XenMode | null | undefined => {
  if (spec === 'xen-vpci') return 'hwdom';
  if (!spec.startsWith('xen-vpci:')) return undefined;
  const m = spec.slice('xen-vpci:'.length);
  return (XEN_MODES as readonly string[]).includes(m) ? (m as XenMode) : null;
};

const machineOf = (spec: string): Machine | null | undefined => {
  if (spec === 'qemu') return 'q35';
  if (!spec.startsWith('qemu:')) return undefined;
  const m = spec.slice(5);
  return (MACHINES as readonly string[]).includes(m) ? (m as Machine) : null;
};

/** Checks a target choice without starting anything; returns what is wrong, or null. */
export function targetSpecProblem(c: TargetChoice): string | null {
  const { spec, mutant } = c;
  const machine = machineOf(spec);
  if ((c.kernel !== undefined || c.modules !== undefined) && spec !== 'vfio-guest') return '--kernel and --modules apply to --target vfio-guest only';
  if ((c.kernel === undefined) !== (c.modules === undefined)) return '--kernel and --modules go together (the kernel and its lib/modules/<release> folder)';
  if (spec === 'vfio-guest') return mutant !== undefined ? '--mutant applies to --target model only' : c.qemuEvents === true ? '--qemu-events applies to --target qemu only' : null;
  if (c.qemu !== undefined && (machine === undefined || machine === null)) return '--qemu applies to --target qemu or vfio-guest only';
  if (c.qemuEvents === true && (machine === undefined || machine === null)) return '--qemu-events applies to --target qemu only';
  if (c.contract !== undefined && !spec.startsWith('vfio-user:')) return '--contract applies to --target vfio-user only';
  if (c.server !== undefined && !spec.startsWith('vfio-user:')) return '--server applies to --target vfio-user only';
  const xen = xenModeOf(spec);
  if (c.xenSrc !== undefined && (xen === undefined || xen === null)) return '--xen-src applies to --target xen-vpci only';
  if (xen === null) return `--target xen-vpci:<mode> with a mode of ${XEN_MODES.join(', ')}, got "${spec}"`;
  if (xen !== undefined) return mutant === undefined ? null : '--mutant applies to --target model only';
  if (spec.startsWith('vfio-user:')) {
    if (mutant !== undefined) return '--mutant applies to --target model only (a reference server takes its own: isoroot serve vfio-user --mutant)';
    if (socketsOf(spec).some((s) => s === '')) return `--target vfio-user: needs socket paths separated by commas, got "${spec}"`;
    if (c.server !== undefined) {
      const p = serverCommandProblem(c.server);
      if (p !== null) return p;
      if (new Set(socketsOf(spec)).size !== socketsOf(spec).length) return '--target vfio-user: with --server, each socket once (one server per socket)';
      const dir = socketsOf(spec).find((s) => !existsSync(dirname(s)));
      if (dir !== undefined) return `--target vfio-user: no folder for the socket ${dir}`;
      const k = c.contract === undefined ? null : parseContract(c.contract);
      return typeof k === 'string' ? k : null;
    }
    const missing = socketsOf(spec).find((s) => !existsSync(s));
    if (missing !== undefined) return `--target vfio-user: no socket at ${missing} (is the server running? isoroot serve vfio-user prints its sockets; --server 'CMD {socket}' has isoroot start it)`;
    const k = c.contract === undefined ? null : parseContract(c.contract);
    return typeof k === 'string' ? k : null;
  }
  if (spec === 'model') return mutant === undefined || MUTANT_NAMES.includes(mutant) ? null : `--mutant: one of ${MUTANT_NAMES.join(', ')} (got "${mutant}")`;
  if (mutant !== undefined) return '--mutant applies to --target model only';
  if (machine === null) return `--target qemu:<machine> with a machine of ${MACHINES.join(', ')}, got "${spec}"`;
  if (machine !== undefined) return null;
  if (spec.startsWith('exec:')) return spec.slice(5).trim() === '' ? '--target exec: needs a command, e.g. exec:"python3 my_target.py"' : null;
  return `--target must be ${TARGET_HELP}, got "${spec}"`;
}

/**
 * The target's prepare() without starting the target: what a topology
 * becomes on it (QEMU adds its chipset), for topology files read before
 * the campaign's workers start their own targets.
 */
export function prepareForChoice(c: TargetChoice, t: Topology): Topology {
  const xen = xenModeOf(c.spec);
  if (xen !== undefined && xen !== null) return prepareXen(t, xen);
  if (c.spec === 'vfio-guest') return prepareGuestTopology(t, deviceProps(probeQemu(c.qemu), 'pcie-root-port').has('disable-acs'));
  const machine = machineOf(c.spec);
  if (machine === undefined || machine === null) return t;
  const platform = PLATFORMS[machine];
  return prepareTopology(t, platform, qemuBuild(probeQemu(c.qemu), platform));
}

export async function selectTarget(command: string, c: TargetChoice): Promise<OpenedTarget> {
  const problem = targetSpecProblem(c);
  if (problem !== null) throw new InputError(`isoroot ${command}`, problem);
  const profile = c.profile === undefined ? undefined : loadProfileOption(c.profile);
  const opened = await openChoice(c);
  if (profile !== undefined) opened.target.profile = profile;
  return opened;
}

async function openChoice(c: TargetChoice): Promise<OpenedTarget> {
  if (c.spec === 'model') return { target: modelTarget(c.mutant), dispose: async () => {} };
  const xen = xenModeOf(c.spec);
  if (xen !== undefined && xen !== null) {
    const t = await openXenTarget({ mode: xen, ...(c.xenSrc !== undefined ? { xenSrc: c.xenSrc } : {}), ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}) });
    return { target: t, dispose: () => t.dispose() };
  }
  if (c.spec === 'vfio-guest') {
    const own = c.kernel !== undefined && c.modules !== undefined ? { kernel: c.kernel, modules: c.modules } : undefined;
    const t = openGuestTarget({ ...(c.qemu !== undefined ? { qemu: c.qemu } : {}), ...(own !== undefined ? { own } : {}), ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}), log: (m) => process.stderr.write(m + '\n') });
    return { target: t, dispose: () => t.dispose() };
  }
  if (c.spec.startsWith('vfio-user:')) {
    const contract = c.contract === undefined ? {} : (parseContract(c.contract) as Contract);
    const t = await openVfioUserTarget(socketsOf(c.spec), { contract, ...(c.server !== undefined ? { server: c.server } : {}) });
    return { target: t, dispose: () => t.dispose() };
  }
  const machine = machineOf(c.spec);
  if (machine !== undefined && machine !== null) {
    const t = openQemuTarget({ machine, ...(c.qemu !== undefined ? { qemu: c.qemu } : {}), ...(c.qemuEvents === true ? { events: true } : {}), ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}) });
    return { target: t, dispose: () => t.dispose() };
  }
  const t = await openExecTarget(c.spec.slice(5).trim(), c.timeoutMs === undefined ? {} : { timeoutMs: c.timeoutMs });
  return { target: t, dispose: () => t.dispose() };
}
