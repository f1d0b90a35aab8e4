/** Hot-plug, hot-unplug, function-level reset and root reset, each with what it tears down. */
import { test, expect } from '@playwright/test';
import { Poke, ep, oneRoot } from '../helpers.ts';
import type { Topology } from '../../harness/topology/types.ts';

const caps = { caps: ['msi', 'pcie', 'pasid'] as ('msi' | 'pcie' | 'pasid')[], domain: 0, pasidContext: 0 };
const t: Topology = {
  ...oneRoot(
    [ep('a', 3, caps), { id: 'rp', kind: 'root-port', slot: 5, fn: 0, children: [ep('hot', 0, { ...caps, present: false })] }],
    { iommu: true, domains: 1, pasidContexts: 1 },
  ),
  emulators: ['qemu'],
};

/** The same port on an expander root (sharing root 0's spaces, as QEMU's pxb-pcie does): native PCIe hot-plug. */
const share = { memory: 0, io: 0, dma: 0, irq: 0, pasid: 0, config: 0 };
const expander: Topology = {
  roots: [
    { bus: 0, busLimit: 0x1f, cf8: true, devices: [] },
    { bus: 0x20, busLimit: 0x3f, share, devices: [{ id: 'rp', kind: 'root-port', slot: 1, fn: 0, children: [ep('hot', 0, { present: false })] }] },
  ],
};
const SLTCTL = 0x54 + 0x18; // PCIe capability at 0x54 (QEMU's layout)
const SLTSTA = 0x54 + 0x1a;

test('native hot-plug: presence shows, the change is latched (RW1C), and the device gets the slot power', () => {
  const p = new Poke(expander);
  p.wr('20:01.0', 0x18, 0x212120);
  expect(p.rd('21:00.0', 0).status).toBe('ur');
  expect(p.cfg('20:01.0', SLTCTL, 2)).toBe(0x07c0); // empty at reset: power and both indicators off
  expect(p.apply({ op: 'dev.plug', dev: 'hot' }).status).toBe('ok');
  expect(p.cfg('20:01.0', SLTSTA, 2)).toBe(0x0049); // presence, presence changed, attention button
  expect(p.cfg('20:01.0', 0x54 + 0x12, 2) & 0x2000).toBe(0x2000); // data link layer active
  expect(p.cfg('21:00.0', 0)).toBe(0xffffffff); // plugged into an unpowered slot
  p.wr('20:01.0', SLTCTL, 0x0100, 2); // power on, power indicator on
  expect(p.cfg('21:00.0', 0)).toBe(0x11001b36);
  p.wr('20:01.0', SLTSTA, 0x0008, 2);
  expect(p.cfg('20:01.0', SLTSTA, 2) & 0x0008).toBe(0);
  expect(p.apply({ op: 'dev.plug', dev: 'hot' })).toEqual({ status: 'error', reason: 'present' });
  expect(p.apply({ op: 'dev.unplug', dev: 'hot' }).status).toBe('ok');
  expect(p.cfg('20:01.0', SLTSTA, 2) & 0x0048).toBe(0x0008); // presence gone, change latched
});

test('native hot-plug with interrupts enabled raises INTx; the next config write lowers it', () => {
  const p = new Poke(expander);
  p.wr('20:01.0', 0x18, 0x212120);
  p.wr('20:01.0', SLTCTL, 0x0028, 2); // PDCE | HPIE, which also completes a command
  p.wr('20:01.0', SLTSTA, 0x0010, 2); // clear Command Completed
  const irq = { space: 0, dev: 'rp', kind: 'intx' as const, pin: 0 };
  expect(p.apply({ op: 'dev.plug', dev: 'hot' }).irqs).toEqual([{ ...irq, level: 1 }]);
  expect(p.cfg('20:01.0', 0x06, 2) & 0x08).toBe(0x08); // Interrupt Status
  expect(p.wr('20:01.0', 0x70, 0, 2).irqs).toEqual([{ ...irq, level: 0 }]); // QEMU's AER root interrupt update
});

test("unplug below a root port is the eject (power and power indicator off, Slot Control put back): its config writes drop the port's INTx, and a clear Command Completed stays clear", () => {
  const p = new Poke(expander);
  p.wr('20:01.0', 0x18, 0x212120);
  p.wr('20:01.0', SLTCTL, 0x0028, 2);
  p.wr('20:01.0', SLTSTA, 0x0010, 2);
  const irq = { space: 0, dev: 'rp', kind: 'intx' as const, pin: 0 };
  expect(p.apply({ op: 'dev.plug', dev: 'hot' }).irqs).toEqual([{ ...irq, level: 1 }]);
  expect(p.apply({ op: 'dev.unplug', dev: 'hot' }).irqs).toEqual([{ ...irq, level: 0 }]);
  expect(p.cfg('20:01.0', SLTCTL, 2)).toBe(0x0028);
  expect(p.cfg('20:01.0', SLTSTA, 2)).toBe(0x0009); // presence gone; Presence Detect Changed and Attention Button latched; no Command Completed
  expect(p.rd('21:00.0', 0).status).toBe('ur');
});

test("a root port declared with resetPowerIndicator 'off' (QEMU 11) resets a populated slot powered with its power indicator off; an empty one as before", () => {
  const off = (t: Topology): Topology => ({ ...t, roots: t.roots.map((r) => ({ ...r, devices: r.devices.map((d) => (d.kind === 'root-port' ? { ...d, resetPowerIndicator: 'off' as const } : d)) })) });
  const populated = new Poke(off({ roots: [{ bus: 0, busLimit: 0x1f, devices: [{ id: 'rp', kind: 'root-port', slot: 5, fn: 0, children: [ep('x', 0)] }] }] }));
  expect(populated.cfg('00:05.0', SLTCTL, 2)).toBe(0x03c0);
  expect(new Poke(expander).cfg('20:01.0', SLTCTL, 2)).toBe(0x07c0);
  expect(new Poke(off(expander)).cfg('20:01.0', SLTCTL, 2)).toBe(0x07c0);
  const on = new Poke({ roots: [{ bus: 0, busLimit: 0x1f, devices: [{ id: 'rp', kind: 'root-port', slot: 5, fn: 0, children: [ep('x', 0)] }] }] });
  expect(on.cfg('00:05.0', SLTCTL, 2)).toBe(0x01c0);
});

test('hot-plug into a powered-off slot: presence shows and is signalled at once, the device answers when the slot powers on', () => {
  const p = new Poke(t);
  p.wr('00:05.0', 0x18, 0x010100);
  p.wr('00:05.0', SLTCTL, 0x0728, 2); // power and power indicator off, PDCE | HPIE
  p.wr('00:05.0', SLTSTA, 0x0010, 2);
  expect(p.cfg('00:05.0', SLTCTL, 2) & 0x0400).toBe(0x0400); // empty slot: powered off
  const plug = p.apply({ op: 'dev.plug', dev: 'hot' });
  expect(plug.irqs?.length).toBe(1);
  expect(p.cfg('00:05.0', SLTSTA, 2) & 0x0049).toBe(0x0049); // Presence Detect State, Changed, Attention Button Pressed
  expect(p.cfg('01:00.0', 0)).toBe(0xffffffff); // unpowered
  p.wr('00:05.0', SLTCTL, 0x0128, 2); // power on, power indicator on
  expect(p.cfg('01:00.0', 0)).toBe(0x11001b36);
});

test('hot-unplug tears down decode, INTx, the IOMMU attachment and PASID bindings', () => {
  const p = new Poke(t);
  p.place('00:03.0', 0, 0xc0000000);
  p.wr('00:03.0', 0x106, 1, 2);
  p.apply({ op: 'pasid.alloc', dev: 'a' });
  p.apply({ op: 'pasid.bind', dev: 'a', pasid: 1, domain: 0 });
  p.mw(0xc0000004, 0); // assert INTx
  expect(p.apply({ op: 'dev.unplug', dev: 'a' }).irqs).toEqual([{ space: 0, dev: 'a', kind: 'intx', pin: 0, level: 0 }]);
  expect(p.mr(0xc0000000).status).toBe('ma');
  expect(p.rd('00:03.0', 0).status).toBe('ur');
  expect(p.m.attachedDomain('a')).toBeUndefined();
  expect(p.m.pasidContextOf('a')?.lookup('a', 1)).toBe('pasid-unbound');
  expect(p.apply({ op: 'dev.unplug', dev: 'a' })).toEqual({ status: 'error', reason: 'not-present' });
  // Plugged back, it starts from reset and attached to its domain again.
  expect(p.apply({ op: 'dev.plug', dev: 'a' }).status).toBe('ok');
  expect(p.cfg('00:03.0', 0x10)).toBe(0);
  expect(p.m.attachedDomain('a')).toBe(0);
});

test('function-level reset clears registers and decode but keeps the IOMMU attachment and mappings', () => {
  const p = new Poke(t);
  p.place('00:03.0', 0, 0xc0000000);
  p.wr('00:03.0', 0x40 + 2, 1, 2);
  p.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x1000, size: 0x1000, gpa: 0x1000, perm: 'rw' });
  expect(p.apply({ op: 'dev.reset', dev: 'a' }).status).toBe('ok');
  expect(p.cfg('00:03.0', 0x04, 2)).toBe(0);
  expect(p.cfg('00:03.0', 0x42, 2) & 1).toBe(0);
  expect(p.mr(0xc0000000).status).toBe('ma');
  p.wr('00:03.0', 0x04, 0x4, 2);
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0x1000, len: 4 }).status).toBe('ok');
});

test('root reset: functions reset, IOMMU mappings, PASIDs and emulator claims torn down; RAM kept', () => {
  const p = new Poke(t);
  p.place('00:03.0', 0, 0xc0000000);
  p.wr('00:05.0', 0x18, 0x010100);
  p.mw(0x8000, 0x55);
  p.apply({ op: 'dma.map', root: 0, domain: 0, iova: 0x1000, size: 0x1000, gpa: 0x8000, perm: 'rw' });
  p.apply({ op: 'pasid.alloc', dev: 'a' });
  p.apply({ op: 'emu.map-bdf', root: 0, emulator: 'qemu', bdf: 7 << 3 });
  p.apply({ op: 'root.reset', root: 0 });
  expect(p.cfg('00:03.0', 0x04, 2)).toBe(0);
  expect(p.cfg('00:05.0', 0x18)).toBe(0);
  expect(p.mr(0x8000).value).toBe(0x55n);
  p.wr('00:03.0', 0x04, 0x4, 2);
  expect(p.apply({ op: 'dma.read', dev: 'a', iova: 0x1000, len: 1 })).toEqual({ status: 'fault', reason: 'iova-unmapped' });
  expect(p.apply({ op: 'pasid.alloc', dev: 'a' }).value).toBe(1n);
  expect(p.apply({ op: 'emu.unmap-bdf', root: 0, emulator: 'qemu', bdf: 7 << 3 })).toEqual({ status: 'error', reason: 'not-registered' });
});
