/**
 * The vfio-user client target (`--target vfio-user:SOCKET[,SOCKET...]`):
 * each socket is one root with the one device behind it. The target is
 * that topology: campaigns fuzz it rather than generated ones. By default
 * every space of every root is isolated (seed 000); `--contract` declares
 * the spaces the roots share, which root 0 then owns.
 *
 * A device isoroot does not know is learned from the server when the
 * target opens (harness/adapters/learn.ts, with what DEVICE_GET_REGION_INFO
 * and DEVICE_GET_IRQ_INFO say). With `--server 'CMD {socket}'` isoroot
 * starts each server itself, and again whenever a session needs a device
 * as after reset: after the server exited (it may serve one client and
 * exit) or when the device kept its state across clients (it may).
 */
import { existsSync } from 'node:fs';
import { canonicalTopology } from '../../topology/canonical.ts';
import { CAP_NAMES, SPACE_KINDS, type SpaceKind, type Topology } from '../../topology/types.ts';
import { InputError } from '../../util/errors.ts';
import { ISOROOT_VERSION } from '../../version.ts';
import { SERVABLE, servedTopology } from './served-topology.ts';
import { failedSession, type Capabilities, type Session, type Target, type TargetPhases } from '../target.ts';
import { readLe } from '../../util/access-split.ts';
import { hexToBytes } from '../../util/hex.ts';
import { DeviceLink, LinkError } from './device-link.ts';
import { describeSocket } from './discover.ts';
import { REGION } from '../../protocol/vfio-user/messages.ts';
import { closeKept, openClientSession, type KeptSides } from './session.ts';
import { ServerGone, ServerProcess, connectExisting } from './servers.ts';
import { learnTopology } from '../learn.ts';
import { learnedLayout } from '../../model/learned-layout.ts';
import { RESET_IS_POWER_ON } from '../../model/personalities/index.ts';
import { loadProfile } from '../../profiles/profile.ts';
import type { FdSocket } from '../../protocol/vfio-user/fd-socket.ts';

export type Contract = Partial<Record<SpaceKind, 'shared' | 'isolated'>>;

/** "memory=shared,io=isolated" as a contract; null and a reason when it is not one. */
export function parseContract(text: string): Contract | string {
  const out: Contract = {};
  for (const part of text.split(',')) {
    const m = /^([a-z]+)=(shared|isolated)$/.exec(part.trim());
    if (m === null || !(SPACE_KINDS as readonly string[]).includes(m[1])) return `--contract takes kind=shared|isolated pairs, kinds ${SPACE_KINDS.join(', ')}; got "${part}"`;
    out[m[1] as SpaceKind] = m[2] as 'shared' | 'isolated';
  }
  return out;
}

export const socketsOf = (spec: string): string[] => spec.slice('vfio-user:'.length).split(',').map((s) => s.trim());

export interface VfioUserTarget extends Target {
  /** The servers isoroot runs (--server), for tests and messages. */
  readonly servers: readonly ServerProcess[];
  dispose(): Promise<void>;
}

export interface VfioUserOptions {
  contract?: Contract;
  /** A command that starts one server: {socket} is replaced with its socket's path. */
  server?: string;
  /** How long a server may take to listen once started (ms). */
  startupMs?: number;
}

/** How often a session may start the servers again before the device counts as never fresh. */
const FRESH_TRIES = 3;

export async function openVfioUserTarget(sockets: readonly string[], o: VfioUserOptions = {}): Promise<VfioUserTarget> {
  const contract = o.contract ?? {};
  const startupMs = o.startupMs ?? 10_000;
  const servers = o.server === undefined ? [] : sockets.map((s) => new ServerProcess(o.server!, s));
  for (const s of servers) s.start();
  const connect = async (r: number): Promise<FdSocket> => {
    const s = servers[r];
    if (s === undefined) return connectExisting(sockets[r]);
    if (!s.running) s.start();
    try {
      return await s.connect(startupMs).catch((e: unknown) => {
        // It served its last client and left (the specification allows that): start it again, once.
        if (!(e instanceof ServerGone) || s.running) throw e;
        s.start();
        return s.connect(startupMs);
      });
    } catch (e) {
      if (e instanceof ServerGone) throw new InputError(`--server ${o.server}`, `a command that starts a vfio-user server on {socket}: ${e.message}${e.output.trim() === '' ? '' : `; it printed:\n${e.output.trim().slice(-2000)}`}`);
      throw e;
    }
  };
  /** Set once the target is built: closes connections kept for the next session. */
  let closeIdle = (): void => {};
  const dispose = async (): Promise<void> => {
    closeIdle();
    for (const s of servers) s.stop();
  };
  try {
    const devices = [];
    const ids = new Set<string>();
    const infos: { regions: number[]; irqs: number[] }[] = [];
    for (let i = 0; i < sockets.length; i++) {
      const link = await DeviceLink.open(sockets[i], () => connect(i)).catch((e: unknown) => {
        if (e instanceof LinkError) throw new InputError(`--target vfio-user:${sockets[i]}`, `a vfio-user server that answers VERSION and the device queries (${e.message})`);
        throw e;
      });
      try {
        const r = await link.ask('REGION_READ', { offset: 0n, region: REGION.CONFIG, count: 0x100 });
        const cfg = (off: number, size: number): number => Number(readLe(r.data!, off, size));
        const d = describeSocket(sockets[i], `vfu${i}`, cfg, (k) => link.regionSizes[k] ?? 0);
        // Two servers of one topology name their devices alike; the root tells them apart.
        if (ids.has(d.id)) d.id = `${d.id}-${i}`;
        ids.add(d.id);
        devices.push(d);
        infos.push({ regions: [...link.regionSizes], irqs: [...link.irqCounts] });
      } finally {
        link.close();
      }
    }
    const t: Topology = servedTopology(devices);
    for (let r = 1; r < t.roots.length; r++) for (const k of SPACE_KINDS) if (contract[k] === 'shared') (t.roots[r].share ??= {})[k] = 0;
    const capabilities: Capabilities = {
      ops: ['config', 'mmio', 'pio', 'dma-map', 'reset', 'region'],
      maxRoots: sockets.length,
      personalities: [...SERVABLE, 'opaque'],
      caps: CAP_NAMES.filter((c) => c !== 'pasid' && c !== 'ats' && c !== 'acs'),
      vias: ['ecam'],
      observes: { delivery: false, irqs: { lines: false, messages: null, eventfds: true }, aborts: true, faults: [] },
      contract: Object.fromEntries(SPACE_KINDS.map((k) => [k, contract[k] ?? 'isolated'])),
    };
    let fixed = canonicalTopology(t);
    /** The header each learned device showed when it was learned: a session's device must show it again (as after reset). */
    const baseline = (r: number): Uint8Array | null => {
      const l = fixed.roots[r].devices[0].learned;
      return l === undefined ? null : hexToBytes(l.config)!;
    };
    const resettable = (r: number): boolean => RESET_IS_POWER_ON.has(fixed.roots[r].devices[0].kind);
    const fresh = (r: number, head: Uint8Array): boolean => {
      const b = baseline(r);
      if (b === null) return true;
      const known = learnedLayout(fixed.roots[r].devices[0].learned!).known;
      for (let i = 0; i < 0x40; i++) if (((head[i] ^ b[i]) & known[i]) !== 0) return false;
      return true;
    };
    const phases: TargetPhases = { start: 0, reset: 0, verify: 0 };
    /** A session meets the device as after reset: its servers started again and connected to (the reset), the device checked against what was learned. */
    const openSession = async (asked: Topology): Promise<Session> => {
      const t0 = performance.now();
      try {
        return await openFresh(asked);
      } finally {
        phases.reset += performance.now() - t0;
      }
    };
    /** The last session's connections, kept open: the next session resets the devices on them (DEVICE_RESET) instead of connecting again. */
    let kept: KeptSides | null = null;
    const keep = (sides: KeptSides): void => {
      kept = sides;
    };
    const openFresh = async (asked: Topology): Promise<Session> => {
      const output = (): string => servers.map((s) => s.log).join('\n');
      const reuse = kept;
      kept = null;
      // A server isoroot runs starts afresh for every session that connects to it anew: whether it keeps a device's
      // state across clients, or exits when one leaves, each session then meets the device as after reset. A kept
      // connection to a device whose reset is its power-on state is reset instead (DEVICE_RESET).
      servers.forEach((s, r) => (reuse?.[r] !== undefined && resettable(r) ? undefined : s.start()));
      for (let tries = 0; ; tries++) {
        const stale: number[] = [];
        let session: Session;
        try {
          session = await openClientSession({ topology: asked, sockets, connect, fresh: (r, head) => fresh(r, head) || (stale.push(r), false), output, keep, ...(tries === 0 ? { reuse, resettable } : {}) });
        } catch (e) {
          // The server died or broke the protocol while the session opened: the device's failure, at op 0.
          if (!(e instanceof LinkError)) throw e;
          const stderr = servers.map((s) => s.log).join('\n').trim();
          return failedSession({ kind: e.violation !== undefined ? 'protocol' : 'crash', index: 0, message: `opening the session: ${e.message}`, ...(stderr === '' ? {} : { stderr }), ...(e.violation !== undefined ? { field: `${e.violation.command}.${e.violation.field}` } : {}) });
        }
        if (stale.length === 0) return session;
        await session.close();
        // Not as after reset: these connections are not kept either.
        if (kept !== null) closeKept(kept);
        kept = null;
        if (servers.length === 0)
          throw new InputError(
            `--target vfio-user:${stale.map((r) => sockets[r]).join(',')}`,
            `a device as after reset at the start of each session, but it kept its state from the last client (the specification allows that, "Client Disconnection"): give --server 'CMD {socket}' so that isoroot starts the server again`,
          );
        if (tries + 1 >= FRESH_TRIES) throw new InputError(`--server ${o.server}`, `a server whose device starts from its reset state: after ${FRESH_TRIES} starts the device at ${stale.map((r) => sockets[r]).join(', ')} still differs from what was learned`);
        for (const r of stale) servers[r].start();
      }
    };
    closeIdle = () => {
      if (kept !== null) closeKept(kept);
      kept = null;
    };
    const target: VfioUserTarget = {
      info: { name: 'vfio-user', version: `${ISOROOT_VERSION} client; ${sockets.length} sockets${o.server === undefined ? '' : `; servers: ${o.server}`}` },
      capabilities,
      // isoroot's own server says so beside each socket; a foreign one is judged by the specifications alone.
      profile: sockets.every((s) => existsSync(`${s}.json`)) ? loadProfile('isoroot-server') : null,
      servers,
      get fixedTopology() {
        return fixed;
      },
      prepare(asked) {
        if (JSON.stringify(canonicalTopology(asked)) !== JSON.stringify(fixed)) throw new InputError('topology', `the devices behind the sockets (${sockets.join(', ')}): a vfio-user target is the topology its servers serve`);
        return fixed;
      },
      open: (asked) => openSession(asked),
      phases,
      // A reset (DEVICE_RESET, or the server started again) costs about a sequence's ops: a run strings 16 together.
      chain: 16,
      dispose,
    };
    // What the device is, learned from it; then what it says of its regions and interrupts.
    fixed = canonicalTopology(await learnTopology(target, fixed));
    fixed.roots.forEach((root, r) => {
      const d = root.devices[0];
      if (d.learned !== undefined) d.learned = { ...d.learned, regions: infos[r].regions, irqs: infos[r].irqs };
    });
    return target;
  } catch (e) {
    await dispose();
    throw e;
  }
}
