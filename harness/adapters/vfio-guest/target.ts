/**
 * `--target vfio-guest`: Linux's own VFIO, in a small guest that QEMU runs
 * under TCG with intel-iommu (image.ts, machine.ts). A guest serves the
 * sessions of one topology: between them isoroot closes every file it
 * opened and binds each device back to its boot driver, then checks with
 * a scan that the guest is as it booted; any doubt, a failure or another
 * topology, and the guest is stopped and a new one booted.
 */
import { walkDevices, type Topology } from '../../topology/types.ts';
import { failedSession, type Capabilities, type Target, type TargetPhases } from '../target.ts';
import { AgentLost } from './agent-link.ts';
import { parseScan, placeDevices, type Scanned } from './devices.ts';
import { guestImage, type GuestImage, type OwnKernel } from './image/image.ts';
import { CHANNEL, prepareGuestTopology, VFIO_GUEST_PERSONALITIES } from './prepare.ts';
import { InputError } from '../../util/errors.ts';
import { bootDriver, GuestSession } from './session.ts';
import { GuestVm } from './vm.ts';
import { DEFAULT_QEMU, deviceProps, probeQemu } from '../qemu/binary.ts';

export interface GuestTargetOptions {
  qemu?: string;
  own?: OwnKernel;
  timeoutMs?: number;
  bootMs?: number;
  log?: (m: string) => void;
}

export const VFIO_GUEST_CAPABILITIES: Capabilities = {
  ops: ['vfio'],
  maxRoots: 8,
  personalities: VFIO_GUEST_PERSONALITIES,
  caps: [],
  multifunction: true,
  vias: ['ecam'],
  // What the kernel shows: errnos, flags, driver links and DMAR fault records (printed rate-limited, so a fault may go unseen).
  observes: { delivery: false, irqs: false, aborts: false, faults: [] },
  contract: 'topology',
};

export interface GuestTarget extends Target {
  readonly image: GuestImage;
  /** Boot times of the guests started, in ms. */
  readonly boots: number[];
  dispose(): Promise<void>;
}

export function openGuestTarget(o: GuestTargetOptions = {}): GuestTarget {
  const qemu = o.qemu ?? DEFAULT_QEMU;
  // QEMU 11's pcie-root-port has no disable-acs: there, every root port isolates.
  const acsOptional = deviceProps(probeQemu(qemu), 'pcie-root-port').has('disable-acs');
  const image = guestImage(o.own, o.log);
  const phases: TargetPhases = { start: 0, reset: 0, verify: 0 };
  const boots: number[] = [];
  let vm: GuestVm | null = null;
  let vmKey = '';
  let placed = new Map<string, Scanned>();
  let boot = new Map<string, string>();
  const stop = async (): Promise<void> => {
    if (vm !== null) await vm.stop();
    vm = null;
  };
  /** Puts the guest back as it booted: files closed, boot drivers bound, checked by a scan. */
  const clean = async (s: GuestSession, topology: Topology): Promise<boolean> => {
    const t0 = Date.now();
    try {
      await s.release();
      const v = vm!;
      const rebinds: string[] = [];
      const now = parseScan(await scanWords(v));
      for (const { dev } of walkDevices(topology)) {
        const p = placed.get(dev.id);
        if (p === undefined || dev.builtin === true) continue;
        const cur = now.find((x) => x.bdf === p.bdf)?.driver ?? null;
        const want = boot.get(dev.id)!;
        if ((cur ?? 'none') !== want) rebinds.push(`bind ${p.bdf} ${want}`);
      }
      if (rebinds.length > 0) await v.link.batch(rebinds);
      phases.reset += Date.now() - t0;
      const t1 = Date.now();
      const after = parseScan(await scanWords(v));
      phases.verify += Date.now() - t1;
      return after.every((x) => {
        const id = [...placed].find(([, p]) => p.bdf === x.bdf)?.[0];
        return id === undefined || (x.driver ?? 'none') === boot.get(id) || topology.roots[0].devices.some((d) => d.id === id && d.builtin === true);
      });
    } catch {
      return false;
    }
  };
  const target: GuestTarget = {
    info: { name: 'vfio-guest', version: image.parts.join(', ') },
    capabilities: { ...VFIO_GUEST_CAPABILITIES, acsOptional },
    prepare: (t) => prepareGuestTopology(t, acsOptional),
    phases,
    image,
    boots,
    // A guest boots in seconds: many sequences share one topology and its guest.
    topologyBlock: 64,
    async open(topology: Topology) {
      // Only a topology this target completed has the agent's channel: without it the guest could never answer.
      if (![...walkDevices(topology)].some(({ dev }) => dev.id === CHANNEL.id)) throw new InputError('topology for vfio-guest', `one completed by the target (prepare), with its agent channel ${CHANNEL.id}`);
      const key = JSON.stringify(topology);
      if (vm === null || vm.exit !== null || key !== vmKey) {
        await stop();
        const t0 = Date.now();
        try {
          vm = await GuestVm.start(topology, { qemu, image, timeoutMs: o.timeoutMs ?? 10_000, bootMs: o.bootMs ?? 60_000 });
        } catch (e) {
          if (e instanceof AgentLost) return failedSession({ kind: e.how, index: 0, message: e.message });
          throw e;
        }
        boots.push(vm.bootMs);
        phases.start += Date.now() - t0;
        vmKey = key;
        placed = placeDevices(topology, parseScan(await scanWords(vm)));
        boot = new Map([...walkDevices(topology)].map(({ dev }) => [dev.id, bootDriver(dev)]));
        const missing = [...walkDevices(topology)].filter(({ dev }) => !placed.has(dev.id)).map(({ dev }) => dev.id);
        if (missing.length > 0) {
          const v = vm;
          await stop();
          return failedSession({ kind: 'crash', index: 0, message: `the guest's kernel does not show ${missing.join(', ')} where the topology puts them (sysfs paths by slot and function from each root bus)`, stderr: v.console() });
        }
      }
      const v = vm;
      return new GuestSession(v, topology, placed, async (s, healthy) => {
        if (!healthy || !(await clean(s, topology))) await stop();
      });
    },
    dispose: stop,
  };
  return target;
}

async function scanWords(vm: GuestVm): Promise<string[]> {
  const r = await vm.link.one('scan');
  if (r.kind !== 'ok') throw new AgentLost('protocol', `scan: ${r.kind === 'err' ? r.errno : r.message}`);
  return r.words;
}
