/**
 * The vfio-user client target (`--target vfio-user:SOCKET[,SOCKET...]`):
 * each socket is one root with the one device behind it. The target is
 * that topology: campaigns fuzz it rather than generated ones. By default
 * every space of every root is isolated (seed 000); `--contract` declares
 * the spaces the roots share, which root 0 then owns.
 */
import { canonicalTopology } from '../../topology/canonical.ts';
import { CAP_NAMES, SPACE_KINDS, type SpaceKind, type Topology } from '../../topology/types.ts';
import { InputError } from '../../util/errors.ts';
import { ISOROOT_VERSION } from '../../version.ts';
import { SERVABLE, servedTopology } from './served-topology.ts';
import type { Capabilities, Target } from '../target.ts';
import { readLe } from '../../util/access-split.ts';
import { DeviceLink } from './device-link.ts';
import { describeSocket } from './discover.ts';
import { REGION } from './messages.ts';
import { openClientSession } from './session.ts';

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
  dispose(): Promise<void>;
}

export async function openVfioUserTarget(sockets: readonly string[], contract: Contract = {}): Promise<VfioUserTarget> {
  const devices = [];
  const ids = new Set<string>();
  for (let i = 0; i < sockets.length; i++) {
    const link = await DeviceLink.open(sockets[i]);
    try {
      const r = await link.ask('REGION_READ', { offset: 0n, region: REGION.CONFIG, count: 0x100 });
      const cfg = (off: number, size: number): number => Number(readLe(r.data!, off, size));
      const d = describeSocket(sockets[i], `vfu${i}`, cfg, (k) => link.regionSizes[k] ?? 0);
      // Two servers of one topology name their devices alike; the root tells them apart.
      if (ids.has(d.id)) d.id = `${d.id}.${i}`;
      ids.add(d.id);
      devices.push(d);
    } finally {
      link.close();
    }
  }
  const t: Topology = servedTopology(devices);
  for (let r = 1; r < t.roots.length; r++)
    for (const k of SPACE_KINDS) if (contract[k] === 'shared') (t.roots[r].share ??= {})[k] = 0;
  const topology = canonicalTopology(t);
  const capabilities: Capabilities = {
    ops: ['config', 'mmio', 'pio', 'dma-map', 'reset', 'region'],
    maxRoots: sockets.length,
    personalities: [...SERVABLE, 'opaque'],
    caps: CAP_NAMES.filter((c) => c !== 'pasid' && c !== 'ats' && c !== 'acs'),
    vias: ['ecam'],
    observes: { delivery: false, irqs: { lines: false, messages: null, eventfds: true }, aborts: true, faults: [] },
    contract: Object.fromEntries(SPACE_KINDS.map((k) => [k, contract[k] ?? 'isolated'])),
  };
  const same = JSON.stringify(topology);
  return {
    info: { name: 'vfio-user', version: `${ISOROOT_VERSION} client; ${sockets.length} sockets` },
    capabilities,
    fixedTopology: topology,
    prepare(asked) {
      if (JSON.stringify(canonicalTopology(asked)) !== same) throw new InputError('topology', `the devices behind the sockets (${sockets.join(', ')}): a vfio-user target is the topology its servers serve`);
      return topology;
    },
    open: (asked) => openClientSession({ topology: asked, sockets }),
    async dispose() {},
  };
}
