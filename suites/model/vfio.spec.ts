/**
 * The model's Linux VFIO rules without a guest: groups from the topology
 * (drivers/iommu/iommu.c pci_device_group), and the checker naming the
 * rule when a kernel answers otherwise.
 */
import { expect, test } from '@playwright/test';
import { prepareGuestTopology } from '../../harness/adapters/vfio-guest/prepare.ts';
import { VFIO_GUEST_CAPABILITIES } from '../../harness/adapters/vfio-guest/target.ts';
import { predictGroups } from '../../harness/model/vfio/groups.ts';
import { Model } from '../../harness/model/model.ts';
import { checkSteps } from '../../harness/oracles/checker.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import { walkDevices, type Topology } from '../../harness/topology/types.ts';

const t: Topology = prepareGuestTopology({
  roots: [
    {
      bus: 0,
      busLimit: 0x3f,
      devices: [
        { id: 'rp', kind: 'root-port', slot: 3, fn: 0, children: [{ id: 'e1', kind: 'edu', slot: 0, fn: 0 }] },
        { id: 'rpn', kind: 'root-port', slot: 4, fn: 0, acs: false, children: [{ id: 'e2', kind: 'edu', slot: 0, fn: 0 }] },
        { id: 'r0', kind: 'root-port', slot: 5, fn: 0, acs: false, children: [{ id: 'br', kind: 'bridge', qdev: 'pcie-pci-bridge', slot: 0, fn: 0, children: [{ id: 'e3', kind: 'edu', slot: 1, fn: 0 }] }] },
      ],
    },
  ],
});

test('a bridge below a root port without ACS joins the port, and what is behind the bridge joins them', () => {
  const g = predictGroups(t).find((x) => x.members.includes('e3'))!;
  expect(g.members.sort()).toEqual(['br', 'e3', 'r0']);
  expect(g.rule).toBe('vfio.group.no-acs');
  expect(predictGroups(t).find((x) => x.members.includes('e1'))!.members).toEqual(['e1']);
});

test('the checker flags a kernel group that merges devices the model isolates, naming the rule', () => {
  const m = new Model(t);
  const op: Op = { op: 'vfio.group.members', dev: 'e1' };
  const p = m.apply(op);
  // The kernel (here, a made-up answer) puts e1's root port in its group too.
  const rpBit = 1n << BigInt([...walkDevices(t)].findIndex((w) => w.dev.id === 'rp'));
  const findings = checkSteps(t, VFIO_GUEST_CAPABILITIES.observes, [{ op, obs: { status: 'ok', value: (p.value ?? 0n) | rpBit } }]);
  expect(findings.length).toBe(1);
  expect(findings[0].signature).toContain('vfio.group.members');
  // The value rests on the group rule that put e1 alone (ACS on its path).
  expect(JSON.stringify(findings[0])).toContain('vfio.group.isolated');
});

test('a group joins a second container only if the kernel is wrong: EINVAL predicted, success flagged', () => {
  const ops: Op[] = [
    { op: 'vfio.bind', dev: 'e1', driver: 'vfio-pci' },
    { op: 'vfio.group.open', dev: 'e1' },
    { op: 'vfio.container.open', container: 0 },
    { op: 'vfio.container.open', container: 1 },
    { op: 'vfio.set-container', dev: 'e1', container: 0 },
    { op: 'vfio.set-container', dev: 'e1', container: 1 },
  ];
  const m = new Model(t);
  const predicted = ops.map((o) => m.apply(o));
  expect(predicted[5]).toMatchObject({ status: 'error', errno: 'EINVAL', rule: 'vfio.container' });
  const observed = predicted.map((p, i) => (i === 5 ? { status: 'ok' as const } : { status: p.status, ...(p.value !== undefined ? { value: p.value } : {}), ...(p.reason !== undefined ? { reason: p.reason } : {}) }));
  const findings = checkSteps(t, VFIO_GUEST_CAPABILITIES.observes, ops.map((op, i) => ({ op, obs: observed[i] })));
  expect(findings.map((f) => f.signature)).toEqual([expect.stringContaining('vfio.set-container')]);
});

test('DMA that reaches another container is a finding on the container isolation rule', () => {
  const ops: Op[] = [
    { op: 'vfio.bind', dev: 'e1', driver: 'vfio-pci' },
    { op: 'vfio.group.open', dev: 'e1' },
    { op: 'vfio.container.open', container: 0 },
    { op: 'vfio.set-container', dev: 'e1', container: 0 },
    { op: 'vfio.set-iommu', container: 0, type: 'type1v2' },
    { op: 'vfio.device.open', dev: 'e1' },
    { op: 'vfio.dma', dev: 'e1', iova: 0x1000, len: 4 },
  ];
  const m = new Model(t);
  const predicted = ops.map((o) => m.apply(o));
  expect(predicted[6]).toMatchObject({ status: 'fault', value: 0n });
  const findings = checkSteps(t, VFIO_GUEST_CAPABILITIES.observes, ops.map((op, i) => ({ op, obs: i === 6 ? { status: 'ok', value: 2n } : predicted[i] })));
  expect(findings.length).toBe(1);
  expect(JSON.stringify(findings[0])).toContain('isolation.vfio-container');
});

const assigned = (dev: string): Op[] => [
  { op: 'vfio.bind', dev, driver: 'vfio-pci' },
  { op: 'vfio.group.open', dev },
  { op: 'vfio.container.open', container: 0 },
  { op: 'vfio.set-container', dev, container: 0 },
  { op: 'vfio.set-iommu', container: 0, type: 'type1v2' },
  { op: 'vfio.device.open', dev },
];

test('region accesses past the end: config space EFAULT, a BAR EINVAL from its end on, cut short across it', () => {
  const m = new Model(t);
  for (const o of assigned('e1')) m.apply(o);
  expect(m.apply({ op: 'vfio.region.read', dev: 'e1', region: 7, offset: 0xfc, size: 8, via: 'pread' })).toMatchObject({ status: 'error', errno: 'EFAULT' });
  expect(m.apply({ op: 'vfio.region.read', dev: 'e1', region: 0, offset: 0x100000, size: 4, via: 'pread' })).toMatchObject({ status: 'error', errno: 'EINVAL' });
  expect(m.apply({ op: 'vfio.region.read', dev: 'e1', region: 0, offset: 0xffffc, size: 8, via: 'pread' })).toMatchObject({ status: 'error', reason: 'past-end' });
  expect(m.apply({ op: 'vfio.region.read', dev: 'e1', region: 0, offset: 0, size: 4, via: 'mmap' })).toMatchObject({ status: 'ok', value: 0x010000edn });
});

test("a group closed while a device's file is open stays open: a new open is EBUSY until the device closes", () => {
  const m = new Model(t);
  for (const o of assigned('e1')) m.apply(o);
  expect(m.apply({ op: 'vfio.group.close', dev: 'e1' }).status).toBe('ok');
  expect(m.apply({ op: 'vfio.group.open', dev: 'e1' })).toMatchObject({ errno: 'EBUSY' });
  expect(m.apply({ op: 'vfio.device.close', dev: 'e1' }).status).toBe('ok');
  expect(m.apply({ op: 'vfio.group.open', dev: 'e1' }).status).toBe('ok');
});

test("the machine's own functions are refused, except a look at their group", () => {
  const m = new Model(t);
  expect(m.apply({ op: 'vfio.bind', dev: 'q35-mch', driver: 'vfio-pci' })).toMatchObject({ status: 'error', errno: 'ENODEV' });
  expect(m.apply({ op: 'vfio.group.members', dev: 'q35-lpc' }).status).toBe('ok');
});
