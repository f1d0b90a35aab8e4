/**
 * The pieces of the guest image that isoroot writes itself: the newc
 * archive the kernel unpacks, and the module load order read from each
 * module's .modinfo. (The whole image boots in conformance.spec.ts.)
 */
import { expect, test } from '@playwright/test';
import { newcArchive } from '../../harness/adapters/vfio-guest/image/newc.ts';
import { loadOrder, readModInfo, type ModInfo } from '../../harness/adapters/vfio-guest/image/modinfo.ts';
import { initScript } from '../../harness/adapters/vfio-guest/image/init-script.ts';

/** The entries of an uncompressed newc archive: name, mode, data, and where each header began. */
function entries(a: Uint8Array): { name: string; mode: number; data: string; at: number; rdev: [number, number] }[] {
  const b = Buffer.from(a);
  const out = [];
  let off = 0;
  for (;;) {
    expect(b.toString('latin1', off, off + 6)).toBe('070701');
    expect(off % 4).toBe(0);
    const field = (i: number): number => parseInt(b.toString('latin1', off + 6 + 8 * i, off + 14 + 8 * i), 16);
    const [mode, size, rmaj, rmin, namesize] = [field(1), field(6), field(9), field(10), field(11)];
    const nameStart = off + 110;
    const name = b.toString('latin1', nameStart, nameStart + namesize - 1);
    expect(b[nameStart + namesize - 1]).toBe(0);
    const dataStart = Math.ceil((nameStart + namesize) / 4) * 4;
    out.push({ name, mode, data: b.toString('latin1', dataStart, dataStart + size), at: off, rdev: [rmaj, rmin] as [number, number] });
    if (name === 'TRAILER!!!') return out;
    off = Math.ceil((dataStart + size) / 4) * 4;
  }
}

test('newc: each entry a 110-byte header, its name and data padded to 4 bytes; directories, files, device nodes, links; the trailer last', () => {
  const a = newcArchive(
    [
      { kind: 'dir', path: 'dev' },
      { kind: 'char', path: 'dev/console', major: 5, minor: 1 },
      { kind: 'file', path: '/init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
      { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    ],
    false,
  );
  const e = entries(a);
  expect(e.map((x) => x.name)).toEqual(['dev', 'dev/console', 'init', 'bin/sh', 'TRAILER!!!']);
  expect(e[0].mode).toBe(0o040755);
  expect(e[1].mode).toBe(0o020600);
  expect(e[1].rdev).toEqual([5, 1]);
  expect(e[2].mode).toBe(0o100755);
  expect(e[2].data).toBe('#!/bin/sh\n');
  expect(e[3].mode).toBe(0o120777);
  expect(e[3].data).toBe('busybox');
  expect(() => newcArchive([{ kind: 'dir', path: '../etc' }], false)).toThrow(/not inside the archive/);
});

test('module order: dependencies first, each once; a missing one names who wanted it; a cycle is refused', () => {
  const infos = new Map<string, ModInfo>([
    ['vfio_pci', { name: 'vfio-pci', depends: ['vfio_pci_core', 'vfio'] }],
    ['vfio_pci_core', { name: 'vfio-pci-core', depends: ['vfio', 'irqbypass'] }],
    ['vfio', { name: 'vfio', depends: [] }],
    ['irqbypass', { name: 'irqbypass', depends: [] }],
  ]);
  const order = loadOrder(['vfio-pci', 'vfio'], infos, 'mods');
  expect(order).toEqual(['vfio', 'irqbypass', 'vfio_pci_core', 'vfio_pci']);
  expect(() => loadOrder(['virtio_console'], infos, 'mods')).toThrow(/mods: module virtio_console \(wanted by isoroot\)/);
  infos.set('vfio', { name: 'vfio', depends: ['vfio_pci'] });
  expect(() => loadOrder(['vfio_pci'], infos, 'mods')).toThrow(/cycle/);
});

test('.modinfo: a file that is not an ELF object is refused with its name and the byte', () => {
  expect(() => readModInfo(Buffer.from('not a module at all, but long enough to have a header of sixty-four bytes'), 'x.ko')).toThrow(/x\.ko: byte 0: an ELF object/);
});

test('/init loads the modules in the order given, then hands over to the agent', () => {
  const s = initScript(['vfio', 'vfio_pci']);
  expect(s.indexOf('insmod /lib/modules/vfio.ko')).toBeLessThan(s.indexOf('insmod /lib/modules/vfio_pci.ko'));
  expect(s.trim().split('\n').pop()).toBe('exec /agent isoroot.agent');
});
