/**
 * Shrinking the topology of a finding: roots that nothing uses go, from
 * the middle too, and the operations follow the renumbering; a root that
 * the finding needs (by an operation, a device, or a space another root
 * shares) stays.
 */
import { test, expect } from '@playwright/test';
import { shrinkTopology } from '../harness/campaign/shrink-topology.ts';
import type { Scenario } from '../generators/sequence.ts';
import type { Topology } from '../harness/topology/types.ts';
import { ep, root } from './helpers.ts';

test('unused roots go from the middle of a topology, and operations are renumbered with the roots after them', async () => {
  const t: Topology = { roots: [root([]), root([]), root([], { share: { memory: 0 } }), root([ep('x', 1)]), root([])] };
  const sc: Scenario = { topology: t, ops: [{ op: 'cfg.read', root: 3, via: 'ecam', bdf: 1 << 3, reg: 0, size: 4 }] };
  // The "finding": the op's root holds device x (a stand-in for a replay on the target).
  const tries: Scenario[] = [];
  const fails = async (s: Scenario): Promise<boolean> => {
    tries.push(s);
    const op = s.ops[0];
    return 'root' in op && (s.topology.roots[op.root]?.devices ?? []).some((d) => d.id === 'x');
  };
  const out = await shrinkTopology(sc, fails);
  // Roots 1, 2 and 4 were unused: 2 shares root 0's memory but no other root shares its own, so it goes too.
  expect(out.topology.roots.length).toBe(2);
  expect(out.topology.roots[1].devices.map((d) => d.id)).toEqual(['x']);
  expect(out.ops).toEqual([{ op: 'cfg.read', root: 1, via: 'ecam', bdf: 1 << 3, reg: 0, size: 4 }]);
  expect(await fails(out)).toBe(true);
  // The original scenario is left alone.
  expect(sc.ops[0]).toMatchObject({ root: 3 });
});

test('a root that owns a space another root shares stays, and the shares follow the renumbering', async () => {
  const t: Topology = { roots: [root([]), root([]), root([]), root([ep('x', 1)], { share: { io: 2 } })] };
  const sc: Scenario = { topology: t, ops: [{ op: 'pio.read', root: 3, port: 0x1000, size: 4 }] };
  const fails = async (s: Scenario): Promise<boolean> => {
    const op = s.ops[0];
    if (!('root' in op)) return false;
    const r = s.topology.roots[op.root];
    // The finding needs x and the root whose IO space it shares.
    return r !== undefined && r.devices.some((d) => d.id === 'x') && r.share?.io !== undefined && s.topology.roots[r.share.io] !== undefined;
  };
  const out = await shrinkTopology(sc, fails);
  expect(out.topology.roots.length).toBe(3);
  expect(out.topology.roots[2].share).toEqual({ io: 1 });
  expect(out.ops[0]).toMatchObject({ root: 2 });
});

test("the platform's own functions stay: a shrunk topology keeps what the target brings anyway (a guest's agent channel)", async () => {
  const t: Topology = { roots: [root([ep('x', 1), ep('y', 2), { id: 'chan', kind: 'opaque', slot: 0x17, fn: 0, builtin: true, qdev: 'virtio-serial-pci' }])] };
  const sc: Scenario = { topology: t, ops: [{ op: 'cfg.read', root: 0, via: 'ecam', bdf: 1 << 3, reg: 0, size: 4 }] };
  const out = await shrinkTopology({ ...sc, ops: [{ op: 'dev.reset', dev: 'x' }] }, async () => true);
  expect(out.topology.roots[0].devices.map((d) => d.id).sort()).toEqual(['chan', 'x']);
});
