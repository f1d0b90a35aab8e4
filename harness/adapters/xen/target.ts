/**
 * `--target xen-vpci[:hwdom]`: Xen's own vPCI code, built in user space
 * (scripts/build-xen-vpci.sh) and driven through xen-vpci-agent. hwdom
 * mode: one PVH hardware domain; each root is a PCI segment with its own
 * MMCFG region (its own config space), and the segments share the
 * domain's memory, IO and interrupts (a hardware domain has one p2m).
 * Each session is a fresh agent: the domain built, its MCFG entries
 * registered, every host device added and handed to vPCI as the
 * toolstack does at boot.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_RAM, walkDevices, type RootSpec, type Topology } from '../../topology/types.ts';
import { InputError } from '../../util/errors.ts';
import { profileFor } from '../../profiles/profile.ts';
import { failedSession, type Capabilities, type Target, type TargetPhases } from '../target.ts';
import { ensureXenAgent, findXenTree, xenVersion, XenAgent, XenAgentError, X, type Cmd, type Knob } from './agent.ts';
import { hostEndpoint } from './host-device.ts';
import { XenSession, failureOf } from './session.ts';
import { sbdfOf, xenEcam } from './platform.ts';

export const XEN_MODES = ['hwdom'] as const;
export type XenMode = (typeof XEN_MODES)[number];

const MAX_SEGMENTS = 4;

export interface XenOptions {
  mode?: XenMode;
  /** The Xen tree (--xen-src; default ISOROOT_XEN_SRC, else the one scripts/xen-source.sh keeps). */
  xenSrc?: string;
  /** Per agent reply. */
  timeoutMs?: number;
  /** The shim's knobs, set in every session before the domain is built (agent.c: partial p2m progress, preemption, errors). */
  knobs?: Partial<Record<Knob, number>>;
}

export interface XenTarget extends Target {
  readonly binary: string;
  readonly xenVersion: string;
  dispose(): Promise<void>;
}

export function xenCapabilities(): Capabilities {
  return {
    ops: ['config', 'mmio', 'pio'],
    maxRoots: MAX_SEGMENTS,
    personalities: ['endpoint'],
    // Xen's vPCI emulates MSI and MSI-X; power management and PCI Express registers reach the device untouched.
    caps: ['msi', 'msix'],
    vias: ['ecam', 'cf8'],
    // The agent says which host device took an access, but neither aborts nor the root; interrupts as
    // Xen's vPCI holds them (by function, with the guest's address and data), INTx not at all.
    observes: { delivery: false, irqs: { lines: false, messages: null, messagesByFunction: true }, aborts: false, faults: [] },
    contract: { memory: 'shared', io: 'shared', irq: 'shared', dma: 'shared', pasid: 'shared', config: 'isolated' },
  };
}

/** The topology as hwdom mode builds it: segments with their MMCFG, the domain's RAM, CF8 on segment 0; endpoints on root buses only. */
export function prepareXen(t: Topology): Topology {
  if (t.roots.length > MAX_SEGMENTS) throw new InputError('topology.roots', `at most ${MAX_SEGMENTS} roots (PCI segments) on xen-vpci`);
  if ((t.emulators ?? []).length > 0) throw new InputError('topology.emulators', 'none on xen-vpci:hwdom (no ioreq servers in the hardware domain)');
  for (const { dev, parent } of walkDevices(t)) {
    const where = `topology: device ${dev.id}`;
    if (dev.kind !== 'endpoint') throw new InputError(where, `an endpoint (xen-vpci emulates isoroot's endpoint as the host device), not ${dev.kind}`);
    if (parent !== null) throw new InputError(where, 'a device on a root bus');
    if (dev.present === false) throw new InputError(where, 'a present device (no hot-plug on xen-vpci)');
    if (dev.emulator !== undefined) throw new InputError(where, 'no emulator');
    const extra = (dev.caps ?? []).filter((c) => c !== 'msi' && c !== 'msix');
    if (extra.length > 0) throw new InputError(where, `capabilities msi and msix only, not ${extra.join(', ')}`);
  }
  const roots: RootSpec[] = t.roots.map((r, i) => {
    const out: RootSpec = { bus: r.bus, busLimit: r.busLimit, ecam: xenEcam(i), devices: r.devices };
    if (i === 0) {
      out.ram = r.ram ?? DEFAULT_RAM;
      out.cf8 = true;
    } else {
      out.cf8 = false;
      out.share = { memory: 0, io: 0, irq: 0, dma: 0, pasid: 0 };
    }
    return out;
  });
  const { emulators: _e, ...rest } = t;
  return { ...rest, roots };
}

/** "4.17.5 (Debian xen 4.17.5+72-g01140da4e8-1)" or "4.22.0 (git 0123abcd…)": what the trace header says of the tree. */
function describeTree(tree: string, version: string): string {
  const git = spawnSync('git', ['-C', tree, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
  if (git.status === 0 && /^[0-9a-f]{40}$/.test(git.stdout.trim())) return `${version} (git ${git.stdout.trim()})`;
  const changelog = join(tree, 'debian', 'changelog');
  if (existsSync(changelog)) {
    const m = /^xen \(([^)]+)\)/.exec(readFileSync(changelog, 'utf8'));
    if (m !== null) return `${version} (Debian xen ${m[1]})`;
  }
  return `${version} (${tree})`;
}

export async function openXenTarget(o: XenOptions = {}): Promise<XenTarget> {
  const mode = o.mode ?? 'hwdom';
  const found = findXenTree(o.xenSrc);
  if ('why' in found) throw new InputError(o.xenSrc !== undefined ? `--xen-src ${o.xenSrc}` : '--target xen-vpci', `a Xen tree (4.17 or later): ${found.why}; run scripts/xen-source.sh to fetch Debian's, or give --xen-src`);
  const version = xenVersion(found.tree);
  const binary = await ensureXenAgent({ tree: found.tree });
  const phases: TargetPhases = { start: 0, reset: 0, verify: 0 };
  const agents = new Set<XenAgent>();
  const target: XenTarget = {
    info: { name: 'xen-vpci', version: `Xen ${describeTree(found.tree, version)} vPCI, ${mode} mode, ${binary}` },
    capabilities: xenCapabilities(),
    profile: profileFor(`xen-vpci:${mode}`, version),
    binary,
    xenVersion: version,
    prepare: prepareXen,
    phases,
    async open(asked) {
      const t = prepareXen(asked);
      const t0 = performance.now();
      const agent = XenAgent.start(binary, o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs });
      agents.add(agent);
      try {
        const setup: Cmd<unknown>[] = [...Object.entries(o.knobs ?? {}).map(([k, v]) => X.knob(k as Knob, v)), X.domainNew('hwdom', t.roots[0].ram ?? DEFAULT_RAM)];
        t.roots.forEach((_, r) => setup.push(X.mmcfg(0, r, xenEcam(r), 0, 0xff)));
        const assigns: { id: string; at: number }[] = [];
        for (const { root, dev } of walkDevices(t)) {
          const sbdf = sbdfOf(r0(t, root), dev.slot, dev.fn, root);
          setup.push(X.devAddRaw(0, sbdf, hostEndpoint(t, dev.id)));
          assigns.push({ id: dev.id, at: setup.length });
          setup.push(X.devAssign(0, sbdf));
        }
        const replies = await agent.run(setup);
        // vPCI refusing a device (its rc) is Xen's answer: the session goes on with the device outside vPCI, and says so.
        const refused = assigns.filter((a) => replies[a.at] !== 0).map((a) => `vpci_add_handlers(${a.id}) = ${String(replies[a.at])}`);
        const session = new XenSession(agent, t, refused, () => agents.delete(agent));
        phases.start += performance.now() - t0;
        return session;
      } catch (e) {
        phases.start += performance.now() - t0;
        agents.delete(agent);
        await agent.dispose();
        if (!(e instanceof XenAgentError)) throw e;
        // A refused setup command is isoroot's (prepare let through what the agent cannot build).
        if (e.trouble === 'refused') throw new InputError('topology', `one xen-vpci-agent can build (${e.message})`);
        return failedSession({ ...failureOf(e, 0), message: `setting up the hardware domain: ${e.message}` });
      }
    },
    async dispose() {
      await Promise.all([...agents].map((a) => a.dispose()));
      agents.clear();
    },
  };
  return target;
}

/** The root bus number of a root (its segment's bus). */
const r0 = (t: Topology, root: number): number => t.roots[root].bus;
