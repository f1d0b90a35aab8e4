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

test('hot-plug into a root port: the device appears, Slot Status shows presence and change', () => {
  const p = new Poke(t);
  p.wr('00:05.0', 0x18, 0x010100);
  const sltsta = 0x50 + 0x1a; // MSI (14 bytes) at 0x40, PCIe at 0x50
  expect(p.cfg('00:05.0', 0x50, 1)).toBe(0x10);
  expect(p.rd('01:00.0', 0).status).toBe('ur');
  expect(p.cfg('00:05.0', sltsta, 2) & 0x40).toBe(0);
  expect(p.apply({ op: 'dev.plug', dev: 'hot' }).status).toBe('ok');
  expect(p.cfg('01:00.0', 0)).toBe(0x11001b36);
  expect(p.cfg('00:05.0', sltsta, 2) & 0x148).toBe(0x148); // presence, presence changed, link changed
  p.wr('00:05.0', sltsta, 0x0008, 2); // RW1C
  expect(p.cfg('00:05.0', sltsta, 2) & 0x8).toBe(0);
  expect(p.apply({ op: 'dev.plug', dev: 'hot' })).toEqual({ status: 'error', reason: 'present' });
});

test('a root port with hot-plug interrupts enabled signals the presence change', () => {
  const p = new Poke(t);
  p.wr('00:05.0', 0x18, 0x010100);
  p.wr('00:05.0', 0x04, 0x4, 2);
  p.wr('00:05.0', 0x50 + 0x18, 0x0028, 2); // PDCE | HPIE
  expect(p.apply({ op: 'dev.plug', dev: 'hot' }).irqs).toEqual([{ space: 0, dev: 'rp', kind: 'intx', pin: 0, level: 1 }]);
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
