/**
 * Linux's VFIO in a guest (--target vfio-guest), judged by the model: the
 * kernel's groups for each topology shape (root ports with and without
 * ACS, a PCIe-to-PCI bridge, a conventional bridge, a multi-function
 * device, an expander root), viability with a device a kernel driver
 * holds, no splitting of a group, DMA isolation between containers, DMA
 * after unmap, and reset. Each test asserts what the kernel answered and
 * that the checker finds nothing against the model; the guest is built
 * from Debian's packages at set-up (image.ts).
 */
import { expect, test } from '@playwright/test';
import { openGuestTarget, type GuestTarget } from '../../harness/adapters/vfio-guest/target.ts';
import { checkSteps } from '../../harness/oracles/checker.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import type { Observation } from '../../harness/ops/observation.ts';
import { walkDevices, type Topology } from '../../harness/topology/types.ts';
import { Model } from '../../harness/model/model.ts';
import { missing, requireProgram } from '../require.ts';

test.describe.configure({ mode: 'serial', timeout: 300_000 });

const SHAPES: Topology = {
  roots: [
    {
      bus: 0,
      busLimit: 0x3f,
      devices: [
        { id: 'a', kind: 'root-port', slot: 3, fn: 0, children: [{ id: 'eduA', kind: 'edu', slot: 0, fn: 0 }] },
        { id: 'b', kind: 'root-port', slot: 4, fn: 0, children: [{ id: 'eduB', kind: 'edu', slot: 0, fn: 0 }] },
        { id: 'noacs', kind: 'root-port', slot: 5, fn: 0, acs: false, children: [{ id: 'td', kind: 'pci-testdev', slot: 0, fn: 0 }] },
        { id: 'p2p', kind: 'bridge', qdev: 'pcie-pci-bridge', slot: 6, fn: 0, children: [{ id: 'eduC', kind: 'edu', slot: 1, fn: 0 }, { id: 'rng', kind: 'opaque', qdev: 'virtio-rng-pci', slot: 2, fn: 0 }] },
        { id: 'mf0', kind: 'edu', slot: 7, fn: 0 },
        { id: 'mf1', kind: 'pci-testdev', slot: 7, fn: 1 },
        { id: 'pb', kind: 'bridge', qdev: 'pci-bridge', slot: 8, fn: 0, children: [{ id: 'eduD', kind: 'edu', slot: 1, fn: 0 }, { id: 'tdD', kind: 'pci-testdev', slot: 2, fn: 0 }] },
      ],
    },
    { bus: 0x40, busLimit: 0x7f, devices: [{ id: 'xrp', kind: 'root-port', slot: 0, fn: 0, children: [{ id: 'eduX', kind: 'edu', slot: 0, fn: 0 }] }] },
  ],
};

let target: GuestTarget | null = null;
let topology: Topology;

test.beforeAll(() => {
  requireProgram('qemu-system-x86_64', 'bash scripts/prerequisites.sh, or apt-get install qemu-system-x86');
  requireProgram('gcc', 'apt-get install gcc libc6-dev');
  try {
    // Debian's QEMU: its root ports can be built without ACS (QEMU 11's cannot; the last test runs on QEMU 11).
    target = openGuestTarget({});
  } catch (e) {
    missing(`the vfio-guest image could not be built from Debian's packages: ${(e as Error).message}`);
  }
  topology = target!.prepare!(SHAPES);
});

test.afterAll(async () => {
  await target?.dispose();
});

/** Runs ops in a fresh session; returns the observations, and asserts that the model finds nothing to say. */
async function run(ops: Op[]): Promise<Observation[]> {
  const s = await target!.open(topology);
  const r = await s.run(ops);
  await s.close();
  expect(r.failure, r.failure?.message).toBeUndefined();
  const findings = checkSteps(topology, target!.capabilities.observes, ops.map((op, i) => ({ op, obs: r.observations[i] })));
  expect(findings.map((f) => `${f.signature}: ${f.message}`)).toEqual([]);
  return r.observations;
}

const members = (obs: Observation): string[] => {
  const ids = [...walkDevices(topology)].map((w) => w.dev.id);
  return ids.filter((_, i) => ((obs.value ?? 0n) >> BigInt(i)) & 1n);
};
const errno = (o: Observation): string => (o.status === 'ok' ? 'ok' : (o.errno ?? o.reason ?? o.status));
const bindAll = (ids: string[]): Op[] => ids.map((dev) => ({ op: 'vfio.bind', dev, driver: 'vfio-pci' }));

test('groups for each shape: ACS on and off, PCIe-to-PCI and conventional bridges, multi-function, expander, chipset', async () => {
  const ids = ['eduA', 'eduB', 'td', 'eduC', 'rng', 'mf0', 'mf1', 'eduD', 'tdD', 'eduX', 'q35-lpc'];
  const obs = await run(ids.map((dev) => ({ op: 'vfio.group.members', dev })));
  const g = new Map(ids.map((id, i) => [id, members(obs[i]).sort()]));
  expect(g.get('eduA')).toEqual(['eduA']); // below a root port with ACS: alone
  expect(g.get('td')).toEqual(['noacs', 'td']); // without ACS: with its port
  expect(g.get('eduC')).toEqual(['eduC', 'p2p', 'rng']); // behind a PCIe-to-PCI bridge: with it and everything behind it
  expect(g.get('eduD')).toEqual(['eduD', 'pb', 'tdD']); // behind a conventional bridge likewise
  expect(g.get('mf0')).toEqual(['mf0', 'mf1']); // functions of one slot without ACS
  expect(g.get('eduX')).toEqual(['eduX']); // an expander's root port with ACS
  expect(g.get('q35-lpc')).toEqual(['q35-lpc', 'q35-sata', 'q35-smbus']); // ICH9's functions share one
});

test('viability: a group with a device a kernel driver holds cannot join a container; unbound, it can; the driver cannot come back while VFIO holds it', async () => {
  const obs = await run([
    ...bindAll(['eduC']),
    { op: 'vfio.group.open', dev: 'eduC' },
    { op: 'vfio.group.status', dev: 'eduC' },
    { op: 'vfio.container.open', container: 0 },
    { op: 'vfio.set-container', dev: 'eduC', container: 0 },
    { op: 'vfio.bind', dev: 'rng', driver: 'none' },
    { op: 'vfio.group.status', dev: 'eduC' },
    { op: 'vfio.set-container', dev: 'eduC', container: 0 },
    { op: 'vfio.bind', dev: 'rng', driver: 'native' },
  ]);
  expect(obs[2].value).toBe(0n); // not viable
  expect(errno(obs[4])).toBe('EPERM');
  expect(obs[6].value).toBe(1n);
  expect(errno(obs[7])).toBe('ok');
  expect(obs[8].value).toBe(0n); // virtio-pci refused: the group is a VFIO user's
});

test('no splitting: a group opens once and joins one container, whichever of its devices names it', async () => {
  const obs = await run([
    ...bindAll(['mf0', 'mf1']),
    { op: 'vfio.group.open', dev: 'mf0' },
    { op: 'vfio.group.open', dev: 'mf1' },
    { op: 'vfio.container.open', container: 0 },
    { op: 'vfio.container.open', container: 1 },
    { op: 'vfio.set-container', dev: 'mf0', container: 0 },
    { op: 'vfio.set-container', dev: 'mf1', container: 1 },
  ]);
  expect(errno(obs[3])).toBe('EBUSY');
  expect(errno(obs[6])).toBe('ok');
  expect(errno(obs[7])).toBe('EINVAL');
});

const twoContainers = (): Op[] => [
  ...bindAll(['eduA', 'eduB']),
  { op: 'vfio.group.open', dev: 'eduA' },
  { op: 'vfio.group.open', dev: 'eduB' },
  { op: 'vfio.container.open', container: 0 },
  { op: 'vfio.container.open', container: 1 },
  { op: 'vfio.set-container', dev: 'eduA', container: 0 },
  { op: 'vfio.set-container', dev: 'eduB', container: 1 },
  { op: 'vfio.set-iommu', container: 0, type: 'type1v2' },
  { op: 'vfio.set-iommu', container: 1, type: 'type1v2' },
  { op: 'vfio.device.open', dev: 'eduA' },
  { op: 'vfio.device.open', dev: 'eduB' },
  { op: 'vfio.dma.map', container: 0, iova: 0x100000, size: 0x2000, offset: 0, perm: 'rw' },
];

test("cross-container DMA: a device's DMA reaches its own container's mapping, never another's", async () => {
  const base = twoContainers();
  const obs = await run([...base, { op: 'vfio.dma', dev: 'eduA', iova: 0x100000, len: 256 }, { op: 'vfio.dma', dev: 'eduB', iova: 0x100000, len: 256 }]);
  expect(obs[base.length].value).toBe(1n); // container 0's memory
  expect(obs[base.length + 1].value).toBe(0n); // nothing reached
  expect(obs[base.length + 1].status).toBe('fault'); // DMAR fault record, requester eduB
});

test('unmap, then the same DMA faults and reaches nothing', async () => {
  const base = twoContainers();
  const obs = await run([...base, { op: 'vfio.dma', dev: 'eduA', iova: 0x101000, len: 64 }, { op: 'vfio.dma.unmap', container: 0, iova: 0x100000, size: 0x2000 }, { op: 'vfio.dma', dev: 'eduA', iova: 0x101000, len: 64 }]);
  expect(obs[base.length].value).toBe(1n);
  expect(obs[base.length + 1].value).toBe(0x2000n);
  expect(obs[base.length + 2].value).toBe(0n);
});

test('reset: a device alone below its port resets, a function of a shared slot cannot (EINVAL); DMA works after reset', async () => {
  const base = twoContainers();
  const obs = await run([
    ...base,
    ...bindAll(['mf0', 'mf1']),
    { op: 'vfio.group.open', dev: 'mf0' },
    { op: 'vfio.container.open', container: 2 },
    { op: 'vfio.set-container', dev: 'mf0', container: 2 },
    { op: 'vfio.set-iommu', container: 2, type: 'type1v2' },
    { op: 'vfio.device.open', dev: 'mf0' },
    { op: 'vfio.device.info', dev: 'eduA' },
    { op: 'vfio.device.info', dev: 'mf0' },
    { op: 'vfio.reset', dev: 'eduA' },
    { op: 'vfio.reset', dev: 'mf0' },
    { op: 'vfio.dma', dev: 'eduA', iova: 0x100000, len: 16 },
  ]);
  const n = base.length + 7;
  expect((obs[n].value ?? 0n) & 1n).toBe(1n); // VFIO_DEVICE_FLAGS_RESET
  expect((obs[n + 1].value ?? 0n) & 1n).toBe(0n);
  expect(errno(obs[n + 2])).toBe('ok');
  expect(errno(obs[n + 3])).toBe('EINVAL');
  expect(obs[n + 4].value).toBe(1n);
});

test('the model stands apart from the target: its prediction for a group is the rule, not the observation', () => {
  // The groups the suite asserts above come from the kernel; here, the same from the model alone, with the rules named.
  const m = new Model(topology);
  const g = m.vfio.group('td')!;
  expect(g.members.sort()).toEqual(['noacs', 'td']);
  expect(g.rule).toBe('vfio.group.no-acs');
  expect(m.vfio.group('mf1')!.rule).toBe('vfio.group.multifunction');
  expect(m.vfio.group('eduA')!.rule).toBe('vfio.group.isolated');
});

test("on another QEMU (ISOROOT_QEMU: QEMU 11 in CI, whose root ports always have ACS): the kernel's groups and container isolation hold", async () => {
  const qemu = process.env.ISOROOT_QEMU;
  if (qemu === undefined) missing('ISOROOT_QEMU is not set (the path of QEMU 11: bash scripts/install-qemu-backports.sh prints it)');
  const other = openGuestTarget({ qemu });
  try {
    expect(other.capabilities.acsOptional).toBe(false);
    // Without disable-acs the topology with an ACS-less port is refused, naming the property.
    expect(() => other.prepare!(SHAPES)).toThrow(/disable-acs/);
    const shapes: Topology = { ...SHAPES, roots: [{ ...SHAPES.roots[0], devices: SHAPES.roots[0].devices.filter((d) => d.acs !== false) }, SHAPES.roots[1]] };
    const t = other.prepare!(shapes);
    const ids = ['eduA', 'eduC', 'mf0', 'eduD', 'eduX', 'q35-lpc'];
    const ops: Op[] = [...ids.map((dev): Op => ({ op: 'vfio.group.members', dev })), ...twoContainers(), { op: 'vfio.dma', dev: 'eduA', iova: 0x100000, len: 64 }, { op: 'vfio.dma', dev: 'eduB', iova: 0x100000, len: 64 }];
    const s = await other.open(t);
    const r = await s.run(ops);
    await s.close();
    expect(r.failure, r.failure?.message).toBeUndefined();
    expect(checkSteps(t, other.capabilities.observes, ops.map((op, i) => ({ op, obs: r.observations[i] }))).map((f) => f.signature)).toEqual([]);
    expect(r.observations[ops.length - 2].value).toBe(1n);
    expect(r.observations[ops.length - 1].value).toBe(0n);
  } finally {
    await other.dispose();
  }
});
