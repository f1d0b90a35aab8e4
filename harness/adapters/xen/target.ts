/**
 * `--target xen-vpci[:hwdom|:guest]`: Xen's own vPCI code, built in user
 * space (scripts/build-xen-vpci.sh) and driven through xen-vpci-agent.
 *  - hwdom (Xen 4.17 and later): one PVH hardware domain; each root is a
 *    PCI segment with its own MMCFG region (its own config space), and the
 *    segments share the domain's memory, IO and interrupts (a hardware
 *    domain has one p2m).
 *  - guest (Xen 4.21 and later): each root is a guest domain with its own
 *    p2m, virtual bus, ECAM window and interrupts: every space isolated.
 *    Its devices are host endpoints passed through as the toolstack does;
 *    Xen gives each the first free slot of the virtual bus (function 0
 *    only, 32 slots), so the slots below a device's are filled first and
 *    emptied after. The guest sees them through vPCI's guest view
 *    (RootSpec.view).
 * Each session is a fresh agent: the domains built, every host device
 * added and handed over as the toolstack does at boot.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ECAM, DEFAULT_RAM, walkDevices, type RootSpec, type Topology } from '../../topology/types.ts';
import { InputError } from '../../util/errors.ts';
import { profileFor } from '../../profiles/profile.ts';
import { failedSession, type Capabilities, type Target, type TargetPhases } from '../target.ts';
import { ensureXenAgent, findXenTree, xenVersion, XenAgent, XenAgentError, X, type Cmd, type Knob, type Placed } from './agent.ts';
import { hostEndpoint } from './host-device.ts';
import { XenSession, failureOf, type DomainLayout } from './session.ts';
import { sbdfOf, xenEcam } from './platform.ts';
import { GuestBuses, fillerSbdf, guestSbdf, zeroGuestBars, type GuestDevice } from './lifecycle.ts';

export const XEN_MODES = ['hwdom', 'guest'] as const;
export type XenMode = (typeof XEN_MODES)[number];

const MAX_SEGMENTS = 4;
/** Ioreq servers a domain may have (xen/include/xen/sched.h MAX_NR_IOREQ_SERVERS). */
const MAX_EMULATORS = 8;
const MAX_GUESTS = 4;
/** Slots of a guest's virtual bus (xen/drivers/vpci/vpci.c add_virtual_device: VPCI_MAX_VIRT_DEV). */
const GUEST_SLOTS = 32;

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

/**
 * What a mode offers. `resetHook`: the version has PHYSDEVOP_pci_device_reset (4.18 and later), by which the hardware
 * domain tells vPCI that it reset a device; 4.17 has none, so vPCI keeps what it held (MSI enabled, BARs mapped and
 * their writes dropped) and a reset is not offered there (docs/xen.md).
 */
export function xenCapabilities(mode: XenMode = 'hwdom', resetHook = true): Capabilities {
  const observes: Capabilities['observes'] = { delivery: false, irqs: { lines: false, messages: null, messagesByFunction: true }, aborts: false, faults: [] };
  if (mode === 'guest')
    return {
      // x86 guests have no IO BARs (no handler for them) and no CF8/CFC here: config through the virtual ECAM window.
      // Hot-plug and reset as the toolstack and the hardware domain do them (lifecycle.ts).
      // root-reset: the guest rebooted (a new domain: RAM, p2m and ioreq servers go; the toolstack assigns its devices again).
      ops: ['config', 'mmio', 'hotplug', 'reset', 'emulator', 'root-reset'],
      emulatedDevices: false,
      // A lifecycle op costs the agent well under a millisecond: a chain may repeat it (the 26th plug cycle finds a leak).
      lifecycleRepeat: 48,
      maxRoots: MAX_GUESTS,
      personalities: ['endpoint'],
      caps: ['msi', 'msix'],
      multifunction: false,
      vias: ['ecam'],
      observes,
      contract: { memory: 'isolated', io: 'isolated', irq: 'isolated', dma: 'isolated', pasid: 'isolated', config: 'isolated' },
    };
  return {
    // reset: the hardware domain resets a device and tells Xen (PHYSDEVOP_pci_device_reset). No hot-plug: the shim's host devices stay.
    // emulator: ioreq servers of a device-model domain (xen/common/ioreq.c), which host no devices here.
    ops: resetHook ? ['config', 'mmio', 'pio', 'reset', 'emulator'] : ['config', 'mmio', 'pio', 'emulator'],
    emulatedDevices: false,
    lifecycleRepeat: 48,
    maxRoots: MAX_SEGMENTS,
    personalities: ['endpoint'],
    // Xen's vPCI emulates MSI and MSI-X; power management and PCI Express registers reach the device untouched.
    caps: ['msi', 'msix'],
    vias: ['ecam', 'cf8'],
    // The agent says which host device took an access, but neither aborts nor the root; interrupts as
    // Xen's vPCI holds them (by function, with the guest's address and data), INTx not at all.
    observes,
    contract: { memory: 'shared', io: 'shared', irq: 'shared', dma: 'shared', pasid: 'shared', config: 'isolated' },
  };
}

/**
 * The topology as a mode builds it. hwdom: segments with their MMCFG, the
 * domain's RAM, CF8 on segment 0. guest: a domain per root, bus 0, its
 * ECAM and RAM, its devices seen through vPCI's guest view. Endpoints on
 * root buses only, both.
 */
export function prepareXen(t: Topology, mode: XenMode = 'hwdom'): Topology {
  const max = mode === 'guest' ? MAX_GUESTS : MAX_SEGMENTS;
  if (t.roots.length > max) throw new InputError('topology.roots', `at most ${max} roots (${mode === 'guest' ? 'guest domains' : 'PCI segments'}) on xen-vpci:${mode}`);
  if ((t.emulators ?? []).length > MAX_EMULATORS) throw new InputError('topology.emulators', `at most ${MAX_EMULATORS} (the ioreq servers a domain may have)`);
  for (const { dev, parent } of walkDevices(t)) {
    const where = `topology: device ${dev.id}`;
    if (dev.kind !== 'endpoint') throw new InputError(where, `an endpoint (xen-vpci emulates isoroot's endpoint as the host device), not ${dev.kind}`);
    if (parent !== null) throw new InputError(where, 'a device on a root bus');
    if (dev.present === false && mode === 'hwdom') throw new InputError(where, 'a present device (no hot-plug on xen-vpci:hwdom)');
    if (dev.emulator !== undefined) throw new InputError(where, "no emulator: on xen-vpci an emulator is an ioreq server that claims BDFs and ranges, and its device model hosts no device");
    const extra = (dev.caps ?? []).filter((c) => c !== 'msi' && c !== 'msix');
    if (extra.length > 0) throw new InputError(where, `capabilities msi and msix only, not ${extra.join(', ')}`);
    if (mode === 'guest' && dev.fn !== 0) throw new InputError(where, 'function 0 (Xen gives a guest function 0 only: vpci.c add_virtual_device)');
  }
  if (mode === 'guest') {
    const roots: RootSpec[] = t.roots.map((r, i) => {
      if (r.devices.length > GUEST_SLOTS) throw new InputError(`topology.roots[${i}].devices`, `at most ${GUEST_SLOTS} devices (the slots of a guest's virtual bus)`);
      return { bus: 0, busLimit: 0, ram: r.ram ?? DEFAULT_RAM, ecam: DEFAULT_ECAM, cf8: false, view: 'xen-vpci-guest', devices: r.devices };
    });
    return { ...t, roots };
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
  return { ...t, roots };
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
  const [major, minor] = version.split('.').map(Number);
  if (mode === 'guest' && major * 100 + minor < 421)
    throw new InputError('--target xen-vpci:guest', `a Xen tree of 4.21 or later (guests get vPCI from 4.21); ${found.tree} is Xen ${version}: give --xen-src or ISOROOT_XEN_SRC`);
  const binary = await ensureXenAgent({ tree: found.tree });
  const phases: TargetPhases = { start: 0, reset: 0, verify: 0 };
  const agents = new Set<XenAgent>();
  const target: XenTarget = {
    info: { name: 'xen-vpci', version: `Xen ${describeTree(found.tree, version)} vPCI, ${mode} mode, ${binary}` },
    capabilities: xenCapabilities(mode, major * 100 + minor >= 418),
    profile: profileFor(`xen-vpci:${mode}`, version),
    binary,
    xenVersion: version,
    prepare: (t) => prepareXen(t, mode),
    phases,
    async open(asked) {
      const t = prepareXen(asked, mode);
      const t0 = performance.now();
      const agent = XenAgent.start(binary, o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs });
      agents.add(agent);
      try {
        const plan = mode === 'guest' ? guestPlan(t) : hwdomPlan(t);
        const knobs = Object.entries(o.knobs ?? {}).map(([k, v]) => X.knob(k as Knob, v));
        const replies = await agent.run([...knobs, ...plan.setup]);
        const notes = plan.check(replies.slice(knobs.length));
        if (plan.after.length > 0) await agent.run(plan.after);
        const session = new XenSession(agent, t, plan.layout, notes, () => agents.delete(agent));
        phases.start += performance.now() - t0;
        return session;
      } catch (e) {
        phases.start += performance.now() - t0;
        agents.delete(agent);
        await agent.dispose();
        if (!(e instanceof XenAgentError)) throw e;
        // A refused setup command is isoroot's (prepare let through what the agent cannot build).
        if (e.trouble === 'refused') throw new InputError('topology', `one xen-vpci-agent can build (${e.message})`);
        return failedSession({ ...failureOf(e, 0), message: `setting up the domains: ${e.message}` });
      }
    },
    async dispose() {
      await Promise.all([...agents].map((a) => a.dispose()));
      agents.clear();
    },
  };
  return target;
}

/**
 * How a session's domains are built: the setup commands, what their
 * replies say that the session should note (vPCI refusing a device is
 * Xen's answer: the device stays outside vPCI, and the session says so),
 * commands to run once that is checked, and where each root lives.
 */
interface Plan {
  setup: Cmd<unknown>[];
  check(replies: unknown[]): string[];
  after: Cmd<unknown>[];
  layout: DomainLayout;
}

/**
 * Each emulator of the topology becomes an ioreq server of each domain, in
 * the topology's order, created and enabled by the device-model domain
 * (agent.c `ioreq`): Xen gives a fresh domain's servers ids 0, 1, ... so
 * an emulator's id is its index. Returns the check of the replies.
 */
function emulatorSetup(t: Topology, domids: readonly number[], setup: Cmd<unknown>[]): (replies: unknown[]) => void {
  const creates: { at: number; want: number; domid: number }[] = [];
  const n = (t.emulators ?? []).length;
  for (const domid of domids) {
    for (let i = 0; i < n; i++) creates.push({ at: setup.length + 2 * i, want: i, domid });
    setup.push(...X.ioreqServers(domid, n));
  }
  return (replies) => {
    for (const c of creates) {
      const r = replies[c.at] as { rc: number; id?: number };
      if (r.rc !== 0 || r.id !== c.want || replies[c.at + 1] !== 0) throw new Error(`d${c.domid}: ioreq server ${c.want} not set up (create rc ${r.rc}, id ${String(r.id)}, enable rc ${String(replies[c.at + 1])})`);
    }
  };
}

/** hwdom: d0, a segment per root, the host devices at their topology SBDF. */
function hwdomPlan(t: Topology): Plan {
  const setup: Cmd<unknown>[] = [X.domainNew('hwdom', t.roots[0].ram ?? DEFAULT_RAM)];
  t.roots.forEach((_, r) => setup.push(X.mmcfg(0, r, xenEcam(r), 0, 0xff)));
  const hosts = new Map<string, string>();
  const assigns: { id: string; at: number }[] = [];
  for (const { root, dev } of walkDevices(t)) {
    const sbdf = sbdfOf(t.roots[root].bus, dev.slot, dev.fn, root);
    hosts.set(sbdf, dev.id);
    setup.push(X.devAddRaw(0, sbdf, hostEndpoint(t, dev.id).description));
    assigns.push({ id: dev.id, at: setup.length });
    setup.push(X.devAssign(0, sbdf));
  }
  const servers = emulatorSetup(t, [0], setup);
  return {
    setup,
    check: (replies) => {
      servers(replies);
      return assigns.filter((a) => replies[a.at] !== 0).map((a) => `vpci_add_handlers(${a.id}) = ${String(replies[a.at])}`);
    },
    after: [],
    // A segment's BDFs are its SBDFs (segment = root).
    layout: { domain: () => 0, ecam: xenEcam, cf8: (r) => r === 0, hosts, sbdfKey: (r, bdf) => (r << 16) | bdf },
  };
}

/**
 * guest: d0 (the toolstack's), then a guest per root with its ECAM window;
 * each host device (placed by firmware, on host bus root + 1) passed
 * through to its root's guest. Xen gives a device the first free slot
 * (vpci.c add_virtual_device), so a slot left empty below a device (no
 * device there, or one not present until hot-plugged) is taken by a filler
 * device (lifecycle.ts fillerSbdf: Xen passes functions 0 only), which
 * leaves again once every device is in. Xen starts a guest's BARs at the
 * host addresses (header.c init_header: guest_addr = addr); the session
 * starts them at 0, as the model's functions come out of reset.
 */
function guestPlan(t: Topology): Plan {
  const setup: Cmd<unknown>[] = [X.domainNew('hwdom', DEFAULT_RAM)];
  const hosts = new Map<string, string>();
  const devices: GuestDevice[] = [];
  const assigns: { d: GuestDevice; at: number }[] = [];
  const fillers: { domid: number; sbdf: string }[] = [];
  t.roots.forEach((r, root) => {
    const domid = root + 1;
    setup.push(X.domainNew('guest', r.ram ?? DEFAULT_RAM), X.mmcfg(domid, 0, r.ecam ?? DEFAULT_ECAM, 0, 0xff));
    // The devices present from the start, by slot; those not present are added, to be plugged later.
    const bySlot = new Map<number, GuestDevice>();
    for (const dev of r.devices) {
      const host = hostEndpoint(t, dev.id);
      const d: GuestDevice = { id: dev.id, domid, slot: dev.slot, host: sbdfOf(domid, dev.slot, 0, 0), bars: host.memoryBarRegisters };
      devices.push(d);
      hosts.set(d.host, dev.id);
      setup.push(X.devAddRaw(0, d.host, `${host.description} place`));
      if (dev.present !== false) bySlot.set(dev.slot, d);
    }
    const top = Math.max(-1, ...bySlot.keys());
    for (let slot = 0; slot <= top; slot++) {
      const d = bySlot.get(slot);
      if (d === undefined) {
        const sbdf = fillerSbdf(domid, slot);
        setup.push(X.devAddRaw(0, sbdf, 'bar0=0x1000'), X.devAssignGuest(domid, sbdf));
        fillers.push({ domid, sbdf });
        continue;
      }
      assigns.push({ d, at: setup.length });
      setup.push(X.devAssignGuest(domid, d.host));
    }
  });
  const after: Cmd<unknown>[] = fillers.map((f) => X.devDeassign(f.domid, f.sbdf));
  const servers = emulatorSetup(t, t.roots.map((_, r) => r + 1), setup);
  // A guest's BDFs are on its virtual bus, segment 0.
  const layout: DomainLayout = { domain: (r) => r + 1, ecam: (r) => t.roots[r].ecam ?? DEFAULT_ECAM, cf8: () => false, hosts, sbdfKey: (_, bdf) => bdf };
  return {
    setup,
    check: (replies) => {
      servers(replies);
      const notes: string[] = [];
      const present: string[] = [];
      for (const { d, at } of assigns) {
        const r = replies[at] as Placed;
        if (r.rc !== 0) notes.push(`vpci_assign_device(${d.id}) = ${r.rc}`);
        else if (r.vsbdf !== guestSbdf(d.slot)) throw new Error(`Xen gave ${d.id} the virtual SBDF ${r.vsbdf}, not ${guestSbdf(d.slot)}: the fillers did not take the slots below it`);
        else {
          present.push(d.id);
          after.push(...zeroGuestBars(d, r.vsbdf));
        }
      }
      layout.guests = new GuestBuses(devices, present, fillers.map((f) => f.sbdf));
      return notes;
    },
    after,
    layout,
  };
}
