/**
 * The oracles as pure functions of a trace. Each test records a trace on
 * the reference model, tampers with one observation the way a faulty
 * target would, and checks what the oracles make of it.
 */
import { test, expect } from '@playwright/test';
import { Model } from '../../harness/model/model.ts';
import { checkSteps } from '../../harness/oracles/checker.ts';
import type { Op } from '../../harness/ops/catalog.ts';
import type { Observation } from '../../harness/ops/observation.ts';
import type { Topology } from '../../harness/topology/types.ts';
import { OBSERVES_ALL, type Observes } from '../../harness/ops/observation.ts';
import { B, ep, root } from '../helpers.ts';
import { parseProfile } from '../../harness/profiles/profile.ts';

const ALL: Observes = OBSERVES_ALL;

function record(t: Topology, ops: Op[]): { op: Op; obs: Observation }[] {
  const m = new Model(t);
  return ops.map((op) => ({ op, obs: m.apply(op) }));
}

const cw = (r: number, bdf: string, reg: number, value: number, size = 4): Op => ({ op: 'cfg.write', root: r, via: 'ecam', bdf: B(bdf), reg, size, value: BigInt(value) });
const place = (r: number, bdf: string, bar: number, addr: number): Op[] => [cw(r, bdf, 0x10 + 4 * bar, addr), cw(r, bdf, 0x04, 0x7, 2)];

const two: Topology = { roots: [root([ep('a', 3, { caps: ['msi'] })]), root([ep('x', 3, { caps: ['msi'] })])] };

test('no tampering, no finding; checking is pure and repeatable', () => {
  const steps = record(two, [...place(0, '00:03.0', 0, 0xc0000000), { op: 'mmio.read', root: 0, addr: 0xc0000000, size: 4 }]);
  const copy = JSON.stringify(steps, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  expect(checkSteps(two, ALL, steps)).toEqual([]);
  expect(checkSteps(two, ALL, steps)).toEqual([]);
  expect(JSON.stringify(steps, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).toBe(copy);
});

test('misroute: an access delivered to nobody where a BAR decodes', () => {
  const steps = record(two, [...place(0, '00:03.0', 0, 0xc0000000), { op: 'mmio.read', root: 0, addr: 0xc0000000, size: 4 }]);
  steps[2].obs = { status: 'ma', value: 0xffffffffn, to: { root: 0 } };
  const f = checkSteps(two, ALL, steps);
  expect(f).toHaveLength(1);
  expect(f[0]).toMatchObject({ kind: 'misroute', index: 2, severity: 'violation', signature: 'misroute:mmio:bar>nobody' });
  expect(f[0].message).toContain('a (endpoint, root 0 00:03.0) BAR0');
});

test('misroute: an MSI raised in another root\'s interrupt space', () => {
  const ops: Op[] = [...place(1, '00:03.0', 0, 0xc0000000), cw(1, '00:03.0', 0x44, 0xfee00000), cw(1, '00:03.0', 0x40 + 2, 1, 2), { op: 'mmio.write', root: 1, addr: 0xc0000004, size: 4, value: 0n }];
  const steps = record(two, ops);
  expect(steps[4].obs.irqs?.[0]).toMatchObject({ kind: 'msi', space: 1 });
  steps[4].obs = { ...steps[4].obs, irqs: [{ ...steps[4].obs.irqs![0], space: 0 }] };
  expect(checkSteps(two, ALL, steps)).toEqual([expect.objectContaining({ kind: 'misroute', signature: 'misroute:msi:interrupt-space', index: 4 })]);
});

test('collision: IO BARs of two isolated roots on one port, answered across roots', () => {
  const ops: Op[] = [cw(0, '00:03.0', 0x14, 0x1000), cw(0, '00:03.0', 0x04, 1, 2), cw(1, '00:03.0', 0x14, 0x1000), cw(1, '00:03.0', 0x04, 1, 2), { op: 'pio.read', root: 1, port: 0x1000, size: 4 }];
  const steps = record(two, ops);
  steps[4].obs = { status: 'ok', value: 0x15000101n, to: { root: 0, dev: 'a', region: 'bar1', offset: 0 } };
  const f = checkSteps(two, ALL, steps);
  expect(f).toEqual([expect.objectContaining({ kind: 'collision', signature: 'collision:io:cross-root', index: 4 })]);
  expect(f[0].message).toMatch(/port 0x1000 of root 1 reached a .*declared isolated/);
});

test('collision within one root is a notice; which decoder answers is the choice decode.overlap: either is accepted, and a profile that declares one holds the target to it', () => {
  const t: Topology = { roots: [root([ep('a', 3), ep('b', 4)])] };
  const ops: Op[] = [...place(0, '00:03.0', 0, 0xc0000000), ...place(0, '00:04.0', 0, 0xc0000000), { op: 'mmio.read', root: 0, addr: 0xc0000000, size: 4 }];
  const steps = record(t, ops);
  expect(steps[4].obs.to?.dev).toBe('b');
  const clean = checkSteps(t, ALL, steps);
  expect(clean).toEqual([expect.objectContaining({ kind: 'collision', severity: 'notice', signature: 'collision:memory:guest-conflict' })]);
  // The one mapped first answers: PCI 3.0 §6.2.5.1 leaves that open.
  steps[4].obs = { status: 'ok', value: 0x15000100n, to: { root: 0, dev: 'a', region: 'bar0', offset: 0 } };
  expect(checkSteps(t, ALL, steps).filter((x) => x.severity === 'violation')).toEqual([]);
  const later = parseProfile({ profile: 'later', describes: 'test', choices: { 'decode.overlap': { option: 'later', because: 'a test' } } }, (p) => p);
  const f = checkSteps(t, { observes: ALL, profile: later }, steps);
  expect(f.filter((x) => x.severity === 'violation')).toEqual([expect.objectContaining({ signature: 'divergence:profile:decode.overlap(later>earlier)' })]);
});

test("decode.overlap on a write is told apart by the interrupts it raises: a doorbell the earlier-mapped function answered is accepted, and judged by that function's message", () => {
  const t: Topology = { roots: [root([ep('a', 3, { caps: ['msi'] }), ep('b', 4, { caps: ['msi'] })])] };
  const msi = (bdf: string, addr: number): Op[] => [cw(0, bdf, 0x44, addr), cw(0, bdf, 0x42, 1, 2)];
  const ops: Op[] = [...place(0, '00:03.0', 0, 0xc0000000), ...place(0, '00:04.0', 0, 0xc0000000), ...msi('00:03.0', 0xfee00000), ...msi('00:04.0', 0xfee01000), { op: 'mmio.write', root: 0, addr: 0xc0000004, size: 4, value: 0n }];
  const steps = record(t, ops);
  const last = steps.length - 1;
  expect(steps[last].obs.irqs).toEqual([expect.objectContaining({ dev: 'b', addr: 0xfee01000 })]);
  // The target's doorbell went to a (mapped first): a's message, which the model finds under the option 'earlier'.
  const a = { ...steps[last].obs.irqs![0], dev: 'a', addr: 0xfee00000 };
  const to = { root: 0, dev: 'a', region: 'bar0' as const, offset: 4 };
  steps[last].obs = { status: 'ok', to, irqs: [a] };
  expect(checkSteps(t, ALL, steps).filter((x) => x.severity === 'violation')).toEqual([]);
  // A message neither function would send matches no option: the default's function (b) is expected, and a's delivery is reported.
  steps[last].obs = { status: 'ok', to, irqs: [{ ...a, addr: 0xfee02000 }] };
  expect(checkSteps(t, ALL, steps).filter((x) => x.severity === 'violation').map((x) => x.signature)).toEqual(['collision:memory:resolution']);
});

test('collision: one PASID handed out twice in a shared context; after free it may come back', () => {
  const t: Topology = { roots: [root([ep('a', 3, { caps: ['pcie', 'pasid'], pasidContext: 0 }), ep('b', 4, { caps: ['pcie', 'pasid'], pasidContext: 0 })], { pasidContexts: 1 })] };
  const steps = record(t, [{ op: 'pasid.alloc', dev: 'a' }, { op: 'pasid.alloc', dev: 'b' }, { op: 'pasid.free', dev: 'a', pasid: 1 }, { op: 'pasid.alloc', dev: 'b' }]);
  expect(checkSteps(t, ALL, steps)).toEqual([]);
  steps[1].obs = { status: 'ok', value: 1n };
  expect(checkSteps(t, ALL, steps)).toEqual([expect.objectContaining({ kind: 'collision', signature: 'collision:pasid:namespace', index: 1 })]);
});

test('collision: a reset of one root frees the PASIDs of every root its host bridge serves', () => {
  // The stale-bar campaign's trace (seed 1): edu3 on root 1, which shares
  // root 0's config space (one host bridge), so root 0's reset reaches it.
  const t: Topology = {
    roots: [
      root([ep('a', 3)]),
      root([ep('edu3', 3, { caps: ['pcie', 'pasid'], pasidContext: 0 })], { bus: 0x10, busLimit: 0x1f, share: { config: 0 }, pasidContexts: 1 }),
    ],
  };
  const steps = record(t, [{ op: 'pasid.alloc', dev: 'edu3' }, { op: 'root.reset', root: 0 }, { op: 'pasid.alloc', dev: 'edu3' }]);
  expect(steps.map((s) => s.obs.value)).toEqual([1n, undefined, 1n]);
  expect(checkSteps(t, ALL, steps)).toEqual([]);
  // A reset that does not reach the holder's root frees nothing.
  const apart: Topology = { roots: [t.roots[0], { ...t.roots[1], share: undefined, bus: 0, busLimit: 0xff }] };
  const kept = record(apart, [{ op: 'pasid.alloc', dev: 'edu3' }, { op: 'root.reset', root: 0 }, { op: 'pasid.alloc', dev: 'edu3' }]);
  expect(kept.map((s) => s.obs.value)).toEqual([1n, undefined, 2n]);
  kept[2].obs = { status: 'ok', value: 1n };
  expect(checkSteps(apart, ALL, kept)).toEqual([expect.objectContaining({ kind: 'collision', signature: 'collision:pasid:namespace', index: 2 })]);
});

test('leak: a BAR answering at the address it moved away from', () => {
  const t: Topology = { roots: [root([ep('a', 3)])] };
  const ops: Op[] = [...place(0, '00:03.0', 0, 0xc0000000), cw(0, '00:03.0', 0x10, 0xc0010000), { op: 'mmio.read', root: 0, addr: 0xc0000000, size: 4 }];
  const steps = record(t, ops);
  steps[3].obs = { status: 'ok', value: 0x15000100n, to: { root: 0, dev: 'a', region: 'bar0', offset: 0 } };
  // One violation per step: leak explains it, so misroute and divergence stay quiet.
  expect(checkSteps(t, ALL, steps)).toEqual([expect.objectContaining({ kind: 'leak', signature: 'leak:memory:stale-mapping', index: 3 })]);
});

test('leak: a target that does not say who answered, answering where only a reset BAR decoded before (a reset that left decode on)', () => {
  const t: Topology = { roots: [root([ep('a', 3)])] };
  const NO_DELIVERY: Observes = { delivery: false, irqs: false, aborts: true, faults: [] };
  const ops: Op[] = [...place(0, '00:03.0', 0, 0xc0000000), { op: 'dev.reset', dev: 'a' }, { op: 'mmio.read', root: 0, addr: 0xc0000000, size: 4 }];
  const steps = record(t, ops).map(({ op, obs }) => ({ op, obs: { status: obs.status, ...(obs.value === undefined ? {} : { value: obs.value }) } as Observation }));
  expect(steps[3].obs.status).toBe('ma');
  expect(checkSteps(t, NO_DELIVERY, steps)).toEqual([]);
  steps[3].obs = { status: 'ok', value: 0x15000100n };
  expect(checkSteps(t, NO_DELIVERY, steps)).toEqual([expect.objectContaining({ kind: 'leak', signature: 'leak:memory:stale-mapping', index: 3, rule: expect.objectContaining({ id: 'isolation.stale-mapping' }) })]);
  // Where no BAR ever decoded, the same answer is no leak: it stays a divergence of the master-abort rule.
  const far = [...steps.slice(0, 3), { op: { op: 'mmio.read', root: 0, addr: 0xd0000000, size: 4 } as Op, obs: { status: 'ok', value: 0x15000100n } as Observation }];
  expect(checkSteps(t, NO_DELIVERY, far)).toEqual([expect.objectContaining({ kind: 'divergence', rule: expect.objectContaining({ id: 'decode.master-abort' }) })]);
});

test('leak: DMA tagged with a freed PASID that still translates', () => {
  const t: Topology = { roots: [root([ep('a', 3, { caps: ['pcie', 'pasid'], pasidContext: 0, domain: 0 })], { iommu: true, domains: 1, pasidContexts: 1 })] };
  const ops: Op[] = [
    cw(0, '00:03.0', 0x04, 0x4, 2),
    cw(0, '00:03.0', 0x106, 1, 2),
    { op: 'pasid.alloc', dev: 'a' },
    { op: 'pasid.bind', dev: 'a', pasid: 1, domain: 0 },
    { op: 'dma.map', root: 0, domain: 0, iova: 0x1000, size: 0x1000, gpa: 0x1000, perm: 'rw' },
    { op: 'pasid.free', dev: 'a', pasid: 1 },
    { op: 'dma.read', dev: 'a', iova: 0x1000, len: 4, pasid: 1 },
  ];
  const steps = record(t, ops);
  steps[6].obs = { status: 'ok', data: new Uint8Array(4), to: { root: 0, region: 'ram', offset: 0x1000 } };
  expect(checkSteps(t, ALL, steps)).toEqual([expect.objectContaining({ kind: 'leak', signature: 'leak:pasid:after-free', index: 6 })]);
});

test('leak: data written through one root read back through another', () => {
  const steps = record(two, [{ op: 'mmio.write', root: 1, addr: 0x10000, size: 4, value: 0xfeedn }, { op: 'mmio.read', root: 0, addr: 0x10000, size: 4 }]);
  steps[1].obs = { ...steps[1].obs, value: 0xfeedn };
  expect(checkSteps(two, ALL, steps)).toEqual([expect.objectContaining({ kind: 'leak', signature: 'leak:memory:cross-root-data', index: 1 })]);
  // The same wrong value with nothing behind it in the other root is a plain divergence.
  steps[1].obs = { ...steps[1].obs, value: 0xbeefn };
  expect(checkSteps(two, ALL, steps)).toEqual([expect.objectContaining({ kind: 'divergence', signature: 'divergence:mmio.read:ram:value(zeros>other)' })]);
});

test('leak: an MSI sent while MSI is disabled', () => {
  const steps = record(two, [...place(0, '00:03.0', 0, 0xc0000000), { op: 'mmio.write', root: 0, addr: 0xc0000004, size: 4, value: 0n }]);
  steps[2].obs = { ...steps[2].obs, irqs: [{ space: 0, dev: 'a', kind: 'msi', vector: 0, addr: 0, data: 0 }] };
  expect(checkSteps(two, ALL, steps)).toEqual([expect.objectContaining({ kind: 'leak', signature: 'leak:msi:after-disable' })]);
});

test('divergence compares only what the target observes', () => {
  const steps = record(two, [...place(0, '00:03.0', 0, 0xc0000000), { op: 'mmio.read', root: 0, addr: 0xc0000000, size: 4 }]);
  steps[2].obs = { status: 'ok', value: 0x15000100n };
  expect(checkSteps(two, { ...OBSERVES_ALL, delivery: false, irqs: false }, steps)).toEqual([]);
  expect(checkSteps(two, ALL, steps)).toEqual([expect.objectContaining({ kind: 'divergence', signature: 'divergence:mmio.read:bar:delivery' })]);
  steps[2].obs = { status: 'ok', value: 0x15000101n };
  expect(checkSteps(two, { ...OBSERVES_ALL, delivery: false, irqs: false }, steps)).toEqual([
    expect.objectContaining({ kind: 'divergence', signature: 'divergence:mmio.read:bar:value(other>other)', details: expect.objectContaining({ expected: expect.stringContaining('0x15000100') }) }),
  ]);
});

test('a function that does not answer at its number rests on config.present-function (Vendor ID all ones); another register read all ones on its own rule', () => {
  const cr = (reg: number, size: number): Op => ({ op: 'cfg.read', root: 0, via: 'ecam', bdf: B('00:03.0'), reg, size });
  const CFG_ONLY: Observes = { ...OBSERVES_ALL, delivery: false, irqs: false };
  const steps = record(two, [cr(0, 4), cr(0x04, 2), cr(0x2c, 2)]);
  for (const [i, size] of [[0, 4], [1, 2], [2, 2]] as const) steps[i].obs = { status: 'ok', value: (1n << BigInt(8 * size)) - 1n };
  const f = checkSteps(two, CFG_ONLY, steps);
  expect(f.map((x) => [x.index, x.rule?.id])).toEqual([
    [0, 'config.present-function'],
    [1, 'header.command'],
    [2, 'header.misc'],
  ]);
  expect(f[0].message).toContain('Vendor ID is never 0xFFFF');
});

/** What a CPU-side target such as QEMU's qtest sees: values, no delivery, no aborts, no faults. */
const CPU_SIDE: Observes = { delivery: false, irqs: false, aborts: false, faults: [] };

test('an abort the target cannot tell completes with the value read, and only the value is compared', () => {
  const steps = record(two, [{ op: 'mmio.read', root: 0, addr: 0xd0000000, size: 4 }]);
  expect(steps[0].obs).toMatchObject({ status: 'ma', value: 0xffffffffn });
  steps[0].obs = { status: 'ok', value: 0xffffffffn, to: { root: 0 } };
  expect(checkSteps(two, CPU_SIDE, steps)).toEqual([]);
  expect(checkSteps(two, ALL, steps)).toEqual([expect.objectContaining({ signature: 'divergence:mmio.read:nobody:status(ma>ok)' })]);
  // Zeros where nobody answers: an outcome PCI leaves to the platform. With
  // no profile it is accepted; a profile that says all ones makes it a
  // departure from the profile, naming its entry.
  steps[0].obs = { status: 'ok', value: 0n };
  expect(checkSteps(two, CPU_SIDE, steps)).toEqual([]);
  const ones = parseProfile({ profile: 'ones', describes: 'test', choices: { 'memory.unassigned-read': { option: 'ones', because: 'a test' } } }, (p) => p);
  expect(checkSteps(two, { observes: CPU_SIDE, profile: ones }, steps)).toEqual([
    expect.objectContaining({ signature: 'divergence:profile:memory.unassigned-read(ones>zeros)', rule: { id: 'profile ones: memory.unassigned-read', cites: expect.stringContaining('PCI 3.0 §3.3.3.1') } }),
  ]);
  // Data where nobody answers is allowed by no specification: it names the rule.
  steps[0].obs = { status: 'ok', value: 0x1234n };
  expect(checkSteps(two, CPU_SIDE, steps)).toEqual([expect.objectContaining({ signature: 'divergence:mmio.read:nobody:value(ones>other)', rule: { id: 'decode.master-abort', cites: 'PCI 3.0 §3.3.3.1' } })]);
});

test('a fault the target cannot see is a silent completion: a DMA read gets zeros', () => {
  const t: Topology = { roots: [{ ...root([ep('a', 3)]), iommu: true, domains: 1 }] };
  t.roots[0].devices[0].domain = 0;
  const steps = record(t, [
    { op: 'cfg.write', root: 0, via: 'ecam', bdf: B('00:03.0'), reg: 4, size: 2, value: 6n },
    { op: 'dma.read', dev: 'a', iova: 0x5000, len: 4 },
  ]);
  expect(steps[1].obs).toMatchObject({ status: 'fault', reason: 'iova-unmapped' });
  steps[1].obs = { status: 'ok', data: new Uint8Array(4) };
  expect(checkSteps(t, CPU_SIDE, steps)).toEqual([]);
  expect(checkSteps(t, { ...CPU_SIDE, faults: ['iova-unmapped'] }, steps)).toEqual([expect.objectContaining({ signature: 'divergence:dma.read:unknown:status(fault>ok)+data(none>zeros)' })]);
  steps[1].obs = { status: 'ok', data: Uint8Array.of(1, 2, 3, 4) };
  expect(checkSteps(t, CPU_SIDE, steps)).toEqual([expect.objectContaining({ signature: 'divergence:dma.read:unknown:data(zeros>other)' })]);
});

test('the model predicts nothing for an opaque register or a reserved range, but still their status', () => {
  const t: Topology = {
    roots: [
      {
        ...root([{ id: 'mch', kind: 'opaque', slot: 0, fn: 0, identity: { vendor: 0x8086, device: 0x29c0, classCode: 0x060000 } }]),
        cf8: true,
        reserved: [{ space: 'io', base: 0x60, size: 0x10, name: 'i8042', pciWins: true }],
      },
    ],
  };
  const steps = record(t, [
    { op: 'cfg.read', root: 0, via: 'ecam', bdf: B('00:00.0'), reg: 0, size: 4 },
    { op: 'cfg.read', root: 0, via: 'ecam', bdf: B('00:00.0'), reg: 0x60, size: 4 },
    { op: 'pio.read', root: 0, port: 0x64, size: 1 },
  ]);
  expect(steps[0].obs).toMatchObject({ status: 'ok', value: 0x29c08086n });
  steps[1].obs = { status: 'ok', value: 0xb0000001n };
  steps[2].obs = { status: 'ok', value: 0x1cn };
  expect(checkSteps(t, CPU_SIDE, steps)).toEqual([]);
  steps[0].obs = { status: 'ok', value: 0x29c18086n };
  expect(checkSteps(t, CPU_SIDE, steps)).toEqual([expect.objectContaining({ signature: 'divergence:cfg.read:cfg:value(other>other)' })]);
});
