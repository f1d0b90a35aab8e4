/**
 * QEMU reproducers imported and replayed as a QEMU developer's are: the
 * reproducer's command line reaches QEMU (its drives and the devices that
 * need them, ISA devices on ISA, the machine and RAM it names), what
 * isoroot adds is listed in the trace, the reproducer's own device is
 * learned rather than guessed, a guest power-off is the platform's event
 * and not a crash, and a command line QEMU refuses is a usage error in
 * QEMU's words. The scripts here are this project's own.
 */
import { test, expect } from '@playwright/test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isoroot } from '../cli-run.ts';
import { readTrace } from '../../harness/trace/reader.ts';
import { requireQemu, SUITE_QEMU_ARGS } from './helpers.ts';

test.beforeEach(() => requireQemu());

function script(name: string, text: string): { file: string; trace: string } {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-repro-'));
  const file = join(dir, `${name}.sh`);
  writeFileSync(file, text);
  return { file, trace: join(dir, `${name}.jsonl`) };
}

test("a reproducer's drive reaches QEMU with the device that needs it; its device is learned, and replays clean", async () => {
  const s = script(
    'disk',
    [
      'cat << EOF | qemu-system-x86_64 -machine q35,accel=qtest -m 64M -nodefaults -drive file=null-co://,if=none,format=raw,id=disk0 -device virtio-blk-pci,drive=disk0,addr=04.0 -display none -qtest stdio',
      'outl 0xcf8 0x80002000',
      'inl 0xcfc',
      'outl 0xcf8 0x80002010',
      'outl 0xcfc 0xffffffff',
      'inl 0xcfc',
      'outl 0xcfc 0xc000',
      'outl 0xcf8 0x80002004',
      'outw 0xcfc 0x1',
      'inb 0xc000',
      'EOF',
    ].join('\n'),
  );
  const imp = isoroot('import', 'qtest', s.file, '--out', s.trace);
  expect(imp.code, imp.err).toBe(0);
  expect(imp.out).toContain('passed to QEMU as given: -machine q35 -drive file=null-co://,if=none,format=raw,id=disk0');
  expect(imp.out).toMatch(/not passed: -display none .*-qtest stdio/);
  const t = await readTrace(s.trace);
  expect(t.header.topology.roots[0].ram).toBe(64 * 2 ** 20);
  expect(t.header.topology.roots[0].devices.find((d) => d.id === 'virtio-blk-pci')).toMatchObject({ kind: 'opaque', qdev: 'virtio-blk-pci,drive=disk0', slot: 4 });
  expect(t.header.topology.qemu?.added?.join(' ')).toContain('-m 68M');
  // QEMU starts only with the drive: the replay ran the device, learned it, and judged its header and IO BAR.
  const r = isoroot('check', s.trace, '--target', 'qemu', ...SUITE_QEMU_ARGS);
  expect(r.code, r.out + r.err).toBe(0);
  expect(r.out).toMatch(/9 operations, no violations/);
});

test('an ISA device stays on ISA: QEMU gets it as given, the topology does not take it for a PCI function', async () => {
  const s = script('isa', ['qemu-system-x86_64 -M q35 -nodefaults -device sb16,audiodev=snd0 -audiodev none,id=snd0 -qtest stdio', 'outb 0x22c 0x10', 'inb 0x22e'].join('\n'));
  expect(isoroot('import', 'qtest', s.file, '--out', s.trace).code).toBe(0);
  const t = await readTrace(s.trace);
  expect(t.header.topology.roots[0].devices.filter((d) => d.builtin !== true)).toEqual([]);
  expect(t.header.topology.qemu?.args).toEqual(['-device', 'sb16,audiodev=snd0', '-audiodev', 'none,id=snd0']);
  const r = isoroot('check', s.trace, '--target', 'qemu', ...SUITE_QEMU_ARGS);
  expect(r.code, r.out + r.err).toBe(0);
});

test("a guest's power-off ends the run as the platform's event, not a crash", () => {
  // ICH9's ACPI: PMBASE at 0x600, ACPI enabled, then PM1_CNT.SLP_EN with SLP_TYP 0 (QEMU: soft power off).
  const s = script(
    'poweroff',
    ['qemu-system-x86_64 -M q35 -nodefaults -qtest stdio', 'outl 0xcf8 0x8000f840', 'outl 0xcfc 0x601', 'outl 0xcf8 0x8000f844', 'outb 0xcfc 0x80', 'outw 0x604 0x2000', 'inb 0x80', 'inb 0x80'].join('\n'),
  );
  expect(isoroot('import', 'qtest', s.file, '--out', s.trace).code).toBe(0);
  const r = isoroot('check', s.trace, '--target', 'qemu', ...SUITE_QEMU_ARGS);
  expect(r.code, r.out + r.err).toBe(0);
  expect(r.out).toMatch(/notice platform at op #\d: the platform powered off/);
  expect(r.out).not.toMatch(/^CRASH/m);
});

test("a command line QEMU refuses is a usage error in QEMU's words, naming the device", () => {
  const s = script('refused', ['qemu-system-x86_64 -M q35 -nodefaults -device no-such-device-here -qtest stdio', 'inb 0x80'].join('\n'));
  expect(isoroot('import', 'qtest', s.file, '--out', s.trace).code).toBe(0);
  const r = isoroot('check', s.trace, '--target', 'qemu', ...SUITE_QEMU_ARGS);
  expect(r.code, r.out + r.err).toBe(2);
  expect(r.err).toMatch(/a machine QEMU starts; it refused: .*no-such-device-here/);
  expect(r.err).not.toContain('internal error');
});
