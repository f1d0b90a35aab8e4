/**
 * The target interface every adapter implements, in the manner of QEMU's
 * libqos bus abstraction: a target opens a session on a topology and
 * applies operations to it; each returns an observation. Adapters never
 * judge: oracles do, from the trace.
 */
import type { Capability, Op } from '../ops/catalog.ts';
import type { Via } from '../ops/fields.ts';
import type { Observation, Observes } from '../ops/observation.ts';
import type { CapName, Personality, ScalableStages, SpaceKind, Topology } from '../topology/types.ts';
import { InputError } from '../util/errors.ts';
import type { Profile } from '../profiles/profile.ts';

export interface TargetInfo {
  name: string;
  version: string;
  /** Set for a faulty variant of the model. */
  mutant?: string;
}

export interface Capabilities {
  /** Operation families the target carries out. */
  ops: readonly Capability[];
  maxRoots: number;
  personalities: readonly Personality[];
  /** Personalities allowed directly on roots other than root 0 (default: all of `personalities`). */
  expanderPersonalities?: readonly Personality[];
  /**
   * Which devices hot-plug reaches (with the 'hotplug' ops): 'any' (the
   * default), or 'root-port': only a device alone in a root port's slot
   * (PCIe native hot-plug, PCIe Base §6.7).
   */
  hotplugSlots?: HotplugSlots;
  /** Capabilities an endpoint may have. */
  caps: readonly CapName[];
  /** Whether a root port may be built without ACS (DeviceSpec.acs false; QEMU's disable-acs, which QEMU 11 dropped); default false. */
  acsOptional?: boolean;
  /** Whether a slot may hold several functions (default true); false: function 0 only. */
  multifunction?: boolean;
  /** With 'emulator': whether an emulator may host devices of its own (default true); false: emulators claim BDFs and ranges only. */
  emulatedDevices?: boolean;
  /**
   * How many times one sequence may repeat a lifecycle op (reset, unplug and plug) to reach what leaks once per cycle;
   * default 0 (not tried): a target declares it where a cycle is cheap (QEMU's hot-plug is not).
   */
  lifecycleRepeat?: number;
  /**
   * With an IOMMU: the kinds of Intel VT-d scalable mode a topology may ask
   * for (RootSpec.scalable), where PASID contexts are PASID tables; the
   * 'pasid' ops then need it (default none).
   */
  scalableIommu?: readonly ScalableStages[];
  vias: readonly Via[];
  observes: Observes;
  /**
   * The isolation contract. "topology": the target implements whatever the
   * topology declares. Otherwise, for each space kind, whether the
   * target's roots always share it or always isolate it.
   */
  contract: 'topology' | Partial<Record<SpaceKind, 'shared' | 'isolated'>>;
}

export const HOTPLUG_SLOTS = ['any', 'root-port'] as const;
export type HotplugSlots = (typeof HOTPLUG_SLOTS)[number];

/**
 * protocol: the target's messages broke its protocol (a vfio-user field
 * out of the specification). poweroff: the platform switched itself off
 * (QEMU exited with status 0 after a guest's power-off), an event of the
 * platform, not a fault: the ops after it did not run.
 */
export type FailureKind = 'crash' | 'hang' | 'protocol' | 'poweroff';

/** A protocol failure's field starts with this when the protocol is xen-vpci-agent's line protocol, not vfio-user's ("xen-vpci-agent io write"). */
export const XEN_AGENT_FIELD = 'xen-vpci-agent ';

/** A target that died, hung or broke its protocol while running op `index`. */
export interface TargetFailure {
  kind: FailureKind;
  index: number;
  message: string;
  /** Whatever the target printed on stderr, for the finding. */
  stderr?: string;
  /** protocol: the message and field that broke it (e.g. "REGION_READ reply.count"), for the signature. */
  field?: string;
}

export interface RunResult {
  observations: Observation[];
  failure?: TargetFailure;
}

/** Thrown by Session.apply when the target fails instead of answering. */
export class TargetFailed extends Error {
  override name = 'TargetFailed';
  constructor(readonly failure: TargetFailure) {
    super(`${failure.kind}: ${failure.message}`);
  }
}

export interface Session {
  /** Applies one operation and returns its observation; a failing target throws TargetFailed. */
  apply(op: Op): Promise<Observation>;
  /**
   * Applies the operations in order and returns their observations. Ops do
   * not depend on earlier replies, so transports may pipeline them. On a
   * failure the observations gathered so far come back with it.
   */
  run(ops: readonly Op[]): Promise<RunResult>;
  close(): Promise<void>;
}

export interface Target {
  readonly info: TargetInfo;
  readonly capabilities: Capabilities;
  /**
   * The choices this target makes where the specifications allow several
   * (harness/profiles): the one it declares, or --profile. Null or absent:
   * it is judged by the specifications alone.
   */
  profile?: Profile | null;
  /**
   * The topology this target builds for the one asked: what its platform
   * adds (chipset functions, reserved ranges) filled in, and what it
   * cannot build refused with an InputError. Idempotent. Topologies go
   * through it before they are run and recorded, so that traces carry
   * what ran. Absent: the topology is taken as it is.
   */
  prepare?(topology: Topology): Topology;
  /**
   * The one topology the target is (a vfio-user client's: the devices
   * behind its sockets). Campaigns fuzz it instead of generated ones.
   */
  readonly fixedTopology?: Topology;
  open(topology: Topology): Promise<Session>;
  /**
   * Milliseconds this target spent, since it was made, starting its process,
   * resetting it between sessions and verifying those resets, for the
   * campaign's time breakdown. Absent: the target does not tell them apart.
   */
  readonly phases?: TargetPhases;
  /**
   * How many consecutive fresh sequences of a campaign share one generated
   * topology. A target that starts a process per topology (QEMU) asks for
   * more, so that most sequences cost a reset, not a start. Default 8.
   */
  readonly topologyBlock?: number;
  /**
   * How many consecutive runs of a campaign (on one topology) go through
   * one session, with no reset between them: the oracles judge them as one
   * sequence. A target whose reset costs more than a sequence's ops (QEMU,
   * a vfio-user server) asks for more, so that a reset serves many ops; a
   * finding is shrunk from the run it lies in alone, else from the whole
   * batch. Default 1.
   */
  readonly chain?: number;
}

export interface TargetPhases {
  start: number;
  reset: number;
  verify: number;
}

/** The topology as the target builds it. */
export const prepared = (target: Target, t: Topology): Topology => (target.prepare === undefined ? t : target.prepare(t));

/** prepared(), for a topology read from `source`: a refusal names the file. */
export function preparedFor(target: Target, t: Topology, source: string): Topology {
  try {
    return prepared(target, t);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(`${source}: topology`, `one that ${target.info.name} can build (${e.where}: ${e.expected})`);
    throw e;
  }
}

/** A session whose target failed before the first op: every run reports that failure at op 0. */
export function failedSession(f: TargetFailure): Session {
  const failure = { ...f, index: 0 };
  return {
    apply: () => Promise.reject(new TargetFailed(failure)),
    run: () => Promise.resolve({ observations: [], failure }),
    close: () => Promise.resolve(),
  };
}

/** apply() in terms of run(), for sessions whose transport is batched. */
export async function applyOne(session: Pick<Session, 'run'>, op: Op): Promise<Observation> {
  const r = await session.run([op]);
  if (r.failure !== undefined) throw new TargetFailed({ ...r.failure, index: 0 });
  return r.observations[0];
}
