/** The options that choose a target, shared by every command that runs one. */
import { existsSync } from 'node:fs';
import { MUTANTS } from '../adapters/model/mutants.ts';
import { TARGET_HELP, targetSpecProblem, type TargetChoice } from '../adapters/select.ts';
import { UsageError, intOpt, one, type OptionSpec, type Parsed } from './args.ts';
import { builtinProfiles, loadProfileOption } from '../profiles/profile.ts';

export function targetOptions(targetDoc: string): OptionSpec[] {
  return [
    { name: 'target', value: 'T', doc: `${targetDoc}: ${TARGET_HELP}` },
    { name: 'mutant', value: 'M', doc: `with --target model: a faulty variant (${MUTANTS.map((m) => m.name).join(', ')})` },
    { name: 'timeout', value: 'MS', doc: 'per-operation timeout of exec and QEMU targets (default 3000 and 5000)' },
    { name: 'qemu', value: 'PATH', doc: 'with --target qemu or vfio-guest: the QEMU binary (default qemu-system-x86_64 on PATH)' },
    { name: 'qemu-events', value: null, doc: "with --target qemu: log QEMU's PCI trace events and guest errors, and attach them to findings" },
    { name: 'contract', value: 'C', doc: 'with --target vfio-user: the spaces the roots share, e.g. memory=shared,io=shared (default: every space isolated)' },
    { name: 'server', value: 'CMD', doc: "with --target vfio-user: the command that starts each socket's server, {socket} replaced with its path; isoroot starts it again whenever a session needs a fresh device" },
    { name: 'xen-src', value: 'DIR', doc: 'with --target xen-vpci: the Xen tree to build vPCI from (default $ISOROOT_XEN_SRC, else Debian\'s, which scripts/xen-source.sh fetches)' },
    { name: 'kernel', value: 'PATH', doc: "with --target vfio-guest: the guest's kernel (default: Debian's linux-image-cloud-amd64, fetched and unpacked at set-up); needs --modules" },
    { name: 'modules', value: 'DIR', doc: 'with --target vfio-guest and --kernel: that kernel\'s modules folder, lib/modules/<release>' },
    { name: 'profile', value: 'P', doc: `the implementation choices to judge by: a built-in profile (${builtinProfiles().join(', ')}) or a profile file (default: the one the target declares; none: the specifications alone)` },
  ];
}

/** The target the options choose, checked; null when --target is absent and there is no default. */
export function readTargetChoice(command: string, p: Parsed, fallback: string | null): TargetChoice | null {
  const spec = one(p, 'target') ?? fallback;
  if (spec === null) {
    for (const o of ['mutant', 'qemu', 'contract', 'server', 'xen-src', 'kernel', 'modules'] as const) if (one(p, o) !== undefined) throw new UsageError(command, `--${o} needs --target`);
    const profile = one(p, 'profile');
    if (profile !== undefined) loadProfileOption(profile);
    if (p.flags.has('qemu-events')) throw new UsageError(command, '--qemu-events needs --target');
    return null;
  }
  const c: TargetChoice = { spec };
  const mutant = one(p, 'mutant');
  if (mutant !== undefined) c.mutant = mutant;
  const timeout = intOpt(command, p, 'timeout', 1, 3_600_000);
  if (timeout !== undefined) c.timeoutMs = timeout;
  const qemu = one(p, 'qemu');
  if (qemu !== undefined) c.qemu = qemu;
  if (p.flags.has('qemu-events')) c.qemuEvents = true;
  const contract = one(p, 'contract');
  if (contract !== undefined) c.contract = contract;
  const profile = one(p, 'profile');
  if (profile !== undefined) {
    loadProfileOption(profile); // a bad profile is a usage error before anything starts
    c.profile = profile;
  }
  const server = one(p, 'server');
  if (server !== undefined) c.server = server;
  const xenSrc = one(p, 'xen-src');
  if (xenSrc !== undefined) c.xenSrc = xenSrc;
  const kernel = one(p, 'kernel');
  if (kernel !== undefined) c.kernel = kernel;
  const modules = one(p, 'modules');
  if (modules !== undefined) c.modules = modules;
  const problem = targetSpecProblem(c);
  if (problem !== null) throw new UsageError(command, problem);
  return c;
}

/** How a choice reads in messages: "qemu", "model (mutant stale-bar)". */
export const showChoice = (c: TargetChoice): string => `${c.spec}${c.mutant !== undefined ? ` (mutant ${c.mutant})` : ''}${c.qemu !== undefined ? ` (${c.qemu})` : ''}`;

/**
 * --known DIR: the corpus of a target's known bugs. Given, it must exist;
 * "none" turns recognition off (to see a known bug as a finding again);
 * absent, the target kind's own corpus when there is one.
 */
export function readKnownOption(command: string, p: Parsed, fallback: string | undefined): string | undefined {
  const v = one(p, 'known');
  if (v === 'none') return undefined;
  if (v === undefined) return fallback;
  if (!existsSync(v)) throw new UsageError(command, `--known ${v}: no such folder (a corpus folder, or none)`);
  return v;
}
