/** isoroot import qtest: the three input formats, splitting into aligned ops, recorded observations, errors, replay. */
import { test, expect } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Q35 } from '../harness/adapters/qemu/platform.ts';
import { qemuCapabilities } from '../harness/adapters/qemu/target.ts';
import { importEntries } from '../harness/import/qtest-ops.ts';
import { readQtest } from '../harness/import/qtest-script.ts';
import { machineFor, qemuSetup } from '../harness/import/qtest-topology.ts';
import { showOp } from '../harness/ops/codec.ts';
import { readTrace } from '../harness/trace/reader.ts';
import { requireProgram } from './require.ts';
import { isoroot } from './cli-run.ts';



/** Writes `text` to a fresh directory and returns its path. */
function sample(name: string, text: string): string {
  const f = join(mkdtempSync(join(tmpdir(), 'isoroot-import-')), name);
  writeFileSync(f, text);
  return f;
}

/** The ops of qtest input, one line each (showOp), and the import's counts. */
function ops(text: string, file = 'in.txt'): { shown: string[]; imported: ReturnType<typeof importEntries> } {
  const input = readQtest(text, file);
  const imported = importEntries(input.entries, file, input.format === 'log');
  return { shown: imported.steps.map((s) => showOp(s.op)), imported };
}

// Replies as QEMU 7.2 gave them: q35, -nodefaults, edu at 00:01.0, its BAR0 placed at 0xfe000000.
const LOG = `# qemu-system-x86_64 -machine q35 -nodefaults -device edu -qtest stdio -qtest-log edu.log
# QEMU emulator version 7.2.22
[I 0.000000] OPENED
[R +0.009270] outl 0xcf8 0x80000800
[S +0.009287] OK
[R +0.009291] inl 0xcfc
[S +0.009295] OK 0x11e81234
[R +0.009297] outl 0xcf8 0x80000810
[S +0.009297] OK
[R +0.009298] outl 0xcfc 0xfe000000
[S +0.009300] OK
[R +0.009301] outl 0xcf8 0x80000804
[S +0.009302] OK
[R +0.009302] outw 0xcfc 0x0002
[S +0.009376] OK
[R +0.009377] readl 0xfe000000
[S +0.009379] OK 0x00000000010000ed
[S +0.009379] IRQ raise 4
[R +0.009381] writel 0xfe000004 0x12345678
[S +0.009382] OK
[R +0.009383] readl 0xfe000004
[S +0.009383] OK 0x00000000edcba987
[R +0.009384] read 0xfe000000 0x6
[S +0.009386] OK 0xed0000010000
[R +0.009387] b64read 0xfe000004 0x4
[S +0.009389] OK h6nL7Q==
[R +0.009392] inb 0x5001
[S +0.009393] OK 0x00ff
qemu-system-x86_64: a message of QEMU's own on the same stream
[R +0.009395] clock_step 1000
[S +0.009396] FAIL Unknown command 'clock_step'
[I +0.009421] CLOSED
`;

test.describe('input formats', () => {
  test('a qtest log: commands, their replies, the command line and the version', () => {
    const input = readQtest(LOG, 'edu.log');
    expect(input.format).toBe('log');
    expect(input.version).toBe('7.2.22');
    expect(input.commandLine).toEqual({ line: 1, args: ['-machine', 'q35', '-nodefaults', '-device', 'edu', '-qtest', 'stdio', '-qtest-log', 'edu.log'] });
    expect(input.entries.map((e) => [e.line, e.text, e.reply?.text])).toEqual([
      [4, 'outl 0xcf8 0x80000800', 'OK'],
      [6, 'inl 0xcfc', 'OK 0x11e81234'],
      [8, 'outl 0xcf8 0x80000810', 'OK'],
      [10, 'outl 0xcfc 0xfe000000', 'OK'],
      [12, 'outl 0xcf8 0x80000804', 'OK'],
      [14, 'outw 0xcfc 0x0002', 'OK'],
      [16, 'readl 0xfe000000', 'OK 0x00000000010000ed'],
      [19, 'writel 0xfe000004 0x12345678', 'OK'],
      [21, 'readl 0xfe000004', 'OK 0x00000000edcba987'],
      [23, 'read 0xfe000000 0x6', 'OK 0xed0000010000'],
      [25, 'b64read 0xfe000004 0x4', 'OK h6nL7Q=='],
      [27, 'inb 0x5001', 'OK 0x00ff'],
      [30, 'clock_step 1000', "FAIL Unknown command 'clock_step'"],
    ]);
    expect(input.otherLines).toBe(1);
  });

  test('a bug-report script in a here-document, with continuations and comments', () => {
    const text = [
      '# from a bug report',
      'cat << EOF | ./qemu-system-x86_64 -display none -machine q35 \\',
      '-nodefaults -device edu,addr=0x5 -qtest stdio',
      'outl 0xcf8 0x80002810',
      '',
      '# the BAR',
      'outl 0xcfc 0xfe0000\\',
      '00',
      'inw 0xcfc',
      'writeq 0xfe000000 0x1122334455667788',
      'EOF',
    ].join('\n');
    const input = readQtest(text, 'bug.sh');
    expect(input.format).toBe('script');
    expect(input.commandLine).toEqual({ line: 2, args: ['-display', 'none', '-machine', 'q35', '-nodefaults', '-device', 'edu,addr=0x5', '-qtest', 'stdio'] });
    expect(input.entries.map((e) => [e.line, e.text])).toEqual([
      [4, 'outl 0xcf8 0x80002810'],
      [7, 'outl 0xcfc 0xfe000000'],
      [9, 'inw 0xcfc'],
      [10, 'writeq 0xfe000000 0x1122334455667788'],
    ]);
    expect(input.entries.every((e) => e.reply === undefined)).toBe(true);
  });

  test('a C reproducer: qtest_* calls and command strings, the command line from qtest_init, comments ignored', () => {
    const text = `/*
 * cat << EOF | qemu-system-x86_64 -machine pc -device edu -qtest stdio
 * outl 0xcf8 0x80001010
 * EOF
 */
#include "libqtest.h"

static void test_one(void)
{
    QTestState *s = qtest_init("-machine pc -nodefaults "
                               "-device pci-testdev");
    qtest_outl(s, 0xcf8, 0x80001010); // BAR0
    qtest_outl(s, 0xcfc, 0xfe000000U);
    g_assert_cmphex(qtest_inb(s, 0x80), ==, 0xff);
    qtest_bufwrite(s, 0x1000, "\\x01\\x02", 0x2);
    qtest_memset(s, 0x2000, 0x5a, 3);
    send_script(s, "writew 0x3000 0x1\\n"
                   "readb 0x3001\\n");
    qtest_qmp(s, "{ 'execute': 'stop' }");
    qtest_clock_step(s, 100);
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    qtest_add_func("fuzz/one", test_one);
    return g_test_run();
}
`;
    const input = readQtest(text, 'fuzz-x.c');
    expect(input.format).toBe('c');
    expect(input.function).toBe('test_one');
    expect(input.commandLine).toEqual({ line: 10, args: ['-machine', 'pc', '-nodefaults', '-device', 'pci-testdev'] });
    expect(input.entries.map((e) => [e.line, e.text])).toEqual([
      [12, 'outl 0xcf8 0x80001010'],
      [13, 'outl 0xcfc 0xfe000000'],
      [14, 'inb 0x80'],
      [15, 'write 0x1000 0x2 0x0102'],
      [16, 'memset 0x2000 0x3 0x5a'],
      [19, 'qtest_qmp(s, "{ \'execute\': \'stop\' }")'],
      [20, 'clock_step 0x64'],
    ]);
    // Command strings count where they stand alone or go to a qtest_* call, not to other calls (send_script above).
    const strings = readQtest('static const char *cmds = "writew 0x3000 0x1\\n"\n  "readb 0x3001\\n";\n', 'cmds.c');
    expect(strings.entries.map((e) => [e.line, e.text])).toEqual([
      [1, 'writew 0x3000 0x1'],
      [2, 'readb 0x3001'],
    ]);
  });

  test('a C file with several reproducers needs --function', () => {
    const text = 'static void a(void) { QTestState *s = qtest_init("-M q35"); qtest_inb(s, 0x80); }\nstatic void b(void) { QTestState *s = qtest_init("-M pc -device edu"); qtest_inw(s, 0x80); }\n';
    expect(() => readQtest(text, 'two.c')).toThrow(/two\.c: one reproducer per trace: 2 functions have qtest commands \(a \(line 1\), b \(line 2\)\); choose one with --function NAME/);
    const b = readQtest(text, 'two.c', 'b');
    expect(b.entries.map((e) => e.text)).toEqual(['inw 0x80']);
    expect(b.commandLine?.args).toEqual(['-M', 'pc', '-device', 'edu']);
    expect(() => readQtest(text, 'two.c', 'c')).toThrow(/two\.c: a function "c" with qtest commands; the functions with them: a \(line 1\), b \(line 2\)/);
  });
});

test.describe('operations', () => {
  test('write, b64write and memset become naturally aligned little-endian writes', () => {
    expect(ops('write 0x1001 0x7 0x01020304050607').shown).toEqual([
      'mmio.write r0 addr=0x1001 size=1 value=0x1',
      'mmio.write r0 addr=0x1002 size=2 value=0x302',
      'mmio.write r0 addr=0x1004 size=4 value=0x7060504',
    ]);
    // DATA shorter than SIZE is filled with zeros, as QEMU does.
    expect(ops('write 0x2000 0x9 0xff').shown).toEqual(['mmio.write r0 addr=0x2000 size=8 value=0xff', 'mmio.write r0 addr=0x2008 size=1 value=0x0']);
    expect(ops('b64write 0x2006 0x4 AQIDBA==').shown).toEqual(['mmio.write r0 addr=0x2006 size=2 value=0x201', 'mmio.write r0 addr=0x2008 size=2 value=0x403']);
    expect(ops('memset 0x3000 0x10 0xab').shown).toEqual(['mmio.write r0 addr=0x3000 size=8 value=0xabababababababab', 'mmio.write r0 addr=0x3008 size=8 value=0xabababababababab']);
    expect(ops('memset 0x3000 0 0xab').imported.skipped).toEqual(new Map([['memset of 0 bytes', 1]]));
  });

  test('unaligned accesses are split into aligned pieces; ports at most 4 bytes at a time', () => {
    expect(ops('readl 0x1001').shown).toEqual(['mmio.read r0 addr=0x1001 size=1', 'mmio.read r0 addr=0x1002 size=2', 'mmio.read r0 addr=0x1004 size=1']);
    expect(ops('writeq 0x1004 0x1122334455667788').shown).toEqual(['mmio.write r0 addr=0x1004 size=4 value=0x55667788', 'mmio.write r0 addr=0x1008 size=4 value=0x11223344']);
    expect(ops('outl 0x5d02 0xaabbccdd').shown).toEqual(['pio.write r0 port=0x5d02 size=2 value=0xccdd', 'pio.write r0 port=0x5d04 size=2 value=0xaabb']);
    expect(ops('inl 0xcfc\nreadq 0x2000\nread 0x3003 3').shown).toEqual([
      'pio.read r0 port=0xcfc size=4',
      'mmio.read r0 addr=0x2000 size=8',
      'mmio.read r0 addr=0x3003 size=1',
      'mmio.read r0 addr=0x3004 size=2',
    ]);
  });

  test('clock commands become clock.step; commands without an op are counted', () => {
    const r = ops('clock_step 25000000000\nclock_set 25000000100\nclock_set 5\nclock_step\nirq_intercept_in ioapic\nendianness\nirq_intercept_in ioapic');
    expect(r.shown).toEqual(['clock.step ns=10000000000', 'clock.step ns=10000000000', 'clock.step ns=5000000000', 'clock.step ns=100']);
    expect(r.imported.skipped).toEqual(
      new Map([
        ['clock_set that does not advance the clock', 1],
        ['clock_step to the next deadline (only a log tells how far that is)', 1],
        ['irq_intercept_in', 2],
        ['endianness', 1],
      ]),
    );
  });

  test('a log gives each op its observation; unaligned and unanswered commands get none, failed ones are skipped', () => {
    const { imported } = ops(LOG, 'edu.log');
    const obs = imported.steps.map((s) => (s.obs === undefined ? null : [s.obs.status, s.obs.value]));
    expect(obs).toEqual([
      ['ok', undefined],
      ['ok', 0x11e81234n],
      ['ok', undefined],
      ['ok', undefined],
      ['ok', undefined],
      ['ok', undefined],
      ['ok', 0x010000edn],
      ['ok', undefined],
      ['ok', 0xedcba987n],
      // read 0xfe000000 6: the reply's bytes, piece by piece.
      ['ok', 0x010000edn],
      ['ok', 0n],
      // b64read: h6nL7Q== is 87 a9 cb ed.
      ['ok', 0xedcba987n],
      ['ok', 0xffn],
    ]);
    expect(imported.observed).toBe(13);
    expect(imported.skipped).toEqual(new Map([['clock_step failed in the log', 1]]));
    const partial = ops('[R +0.1] readl 0x1001\n[S +0.1] OK 0x0000000000000000\n[R +0.2] clock_step 100\n[S +0.2] OK 100\n[R +0.3] outb 0x80 0x1\n', 'crash.log');
    expect(partial.imported.steps.map((s) => s.obs?.status ?? null)).toEqual([null, null, null, 'ok', null]);
    expect(partial.imported.unobserved).toEqual(new Map([['unaligned access split into aligned pieces', 3], ['no reply in the log', 1]]));
  });

  test('the command line gives the machine and the devices at the slots QEMU gives them', () => {
    const cl = (args: string): { line: number; args: string[] } => ({ line: 1, args: args.split(' ') });
    const devices = (args: string): string[] => {
      const machine = machineFor(cl(args), 'f');
      return qemuSetup(cl(args), 'f', machine).topology.roots[0].devices.map((d) => `${machine} ${d.id} ${d.kind}${d.qdev === undefined ? '' : `/${d.qdev}`} ${d.slot}.${d.fn}`);
    };
    // q35 leaves slot 1 free, pc slot 2; without -nodefaults QEMU's VGA and NIC come first, as the machine's own.
    expect(devices('-machine q35 -nodefaults -device edu -device megasas -device scsi-cd,drive=d0')).toEqual(['q35 edu edu 1.0', 'q35 megasas opaque/megasas 2.0']);
    expect(devices('-M pc-i440fx-7.2 -device pci-testdev,id=td,addr=06.1 -device edu -device edu')).toEqual(['pc td pci-testdev 6.1', 'pc edu edu 4.0', 'pc edu-2 edu 5.0', 'pc qemu-vga opaque/VGA 2.0', 'pc qemu-nic opaque/e1000 3.0']);
    expect(devices('-nodefaults -device edu')).toEqual(['pc edu edu 2.0']);
    expect(devices('-M q35 -vga none -nic none -device lsi53c895a,id=scsi0 -device scsi-hd,bus=scsi0.0')).toEqual(['q35 scsi0 opaque/lsi53c895a 1.0']);
    // A device keeps its own properties (a drive), and the rest of the command line goes to QEMU as given.
    const disk = qemuSetup(cl('-M pc-q35-7.2,accel=qtest -m 512M -nodefaults -drive file=null-co://,if=none,id=d0 -device virtio-blk-pci,drive=d0,addr=04.0 -device sb16 -qtest stdio -display none'), 'f', 'q35', new Map([['sb16', 'ISA'], ['virtio-blk-pci', 'PCI']]));
    expect(disk.topology.roots[0].devices).toEqual([{ id: 'virtio-blk-pci', kind: 'opaque', qdev: 'virtio-blk-pci,drive=d0', slot: 4, fn: 0 }]);
    expect(disk.topology.roots[0].ram).toBe(512 * 2 ** 20);
    expect(disk.topology.qemu).toEqual({ args: ['-drive', 'file=null-co://,if=none,id=d0', '-device', 'sb16'], machine: 'pc-q35-7.2' });
    expect(disk.notPassed).toEqual([expect.stringMatching(/^-qtest stdio \(/), expect.stringMatching(/^-display none \(/)]);
    expect(machineFor(null, 'f')).toBe('q35');
    expect(machineFor(cl('-M q35'), 'f', 'pc')).toBe('pc');
    expect(() => machineFor(cl('-M virt'), 'f')).toThrow(/f:1: an x86 machine isoroot drives .*got "virt": a reproducer for another machine or architecture runs with its own qemu-system binary/);
  });
});

test.describe('the command', () => {
  test('an imported log checks against the model; a changed value is a divergence', () => {
    const f = sample('edu.log', LOG);
    const r = isoroot('import', 'qtest', f);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const out = f.replace(/\.log$/, '.jsonl');
    expect(r.out).toContain('13 operations from 13 qtest commands; skipped: 1 clock_step failed in the log');
    expect(r.out).toContain('observations: 13 of 13 operations; 1 lines of other output passed over');
    expect(r.out).toContain('topology: QEMU q35, edu 00:01.0 (edu)');
    expect(r.out).toContain(`isoroot check ${out} --target qemu:q35`);
    expect(r.out).toContain(`isoroot check ${out} --target model`);
    // The header keeps that QEMU sees no aborts: the unclaimed port reads 0xff with status ok.
    const c = isoroot('check', out);
    expect(c.out).toContain('13 operations, no violations');
    expect(c.code).toBe(0);

    const tampered = sample('edu.log', LOG.replace('OK 0x11e81234', 'OK 0x11e91234'));
    expect(isoroot('import', 'qtest', tampered).code).toBe(0);
    const bad = isoroot('check', tampered.replace(/\.log$/, '.jsonl'));
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('DIVERGENCE at op #1: pio.read r0 port=0xcfc size=4');
  });

  test('an imported script replays on the model', async () => {
    const f = sample(
      'bug.txt',
      'cat << EOF | qemu-system-x86_64 -M q35 -nodefaults -device edu -device pci-testdev -qtest stdio\noutl 0xcf8 0x80000810\noutl 0xcfc 0xfe000000\noutl 0xcf8 0x80000804\noutw 0xcfc 0x2\nwritel 0xfe000004 0x1\nreadl 0xfe000004\nwrite 0xfe000081 0x5 0x0102030405\nread 0xfe000080 0x8\nclock_step 1000\nEOF\n',
    );
    const out = join(f, '..', 'replay.jsonl');
    expect(isoroot('import', 'qtest', f, '--out', out).code).toBe(0);
    const t = await readTrace(out);
    // What QEMU observes, as its target declares it: no aborts, few faults.
    expect(t.header.target).toEqual({ name: 'qemu', version: 'unknown', observes: qemuCapabilities(Q35).observes });
    expect(t.header.target.observes.aborts).toBe(false);
    expect(t.header.topology.roots[0].devices.filter((d) => d.builtin !== true).map((d) => [d.id, d.slot])).toEqual([
      ['edu', 1],
      ['pci-testdev', 2],
    ]);
    expect(t.steps.length).toBe(11);
    const r = isoroot('check', out, '--target', 'model');
    expect(r.out).toContain('11 operations, no violations');
    expect(r.code).toBe(0);
  });

  test('--topology gives the topology; --machine the machine', async () => {
    const topo = sample('t.json', JSON.stringify({ roots: [{ bus: 0, busLimit: 255, cf8: true, devices: [{ id: 'td', kind: 'pci-testdev', slot: 9 }] }] }));
    const f = sample('s.qtest', 'outl 0xcf8 0x80004800\ninl 0xcfc\n');
    const r = isoroot('import', 'qtest', f, '--topology', topo, '--machine', 'pc');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`topology: QEMU pc from ${topo}, td 00:09.0 (pci-testdev)`);
    const t = await readTrace(f.replace(/\.qtest$/, '.jsonl'));
    expect(t.header.topology.roots[0].devices.map((d) => d.id)).toEqual(expect.arrayContaining(['td', 'pc-i440fx', 'pc-piix3']));
  });

  test('isoroot import --help', () => {
    const r = isoroot('import', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('usage: isoroot import qtest FILE [--out TRACE] [--topology TOPOLOGY.json] [--machine q35|pc] [--function NAME]');
  });

  test('usage and input errors exit 2 and say where and what was expected', () => {
    const script = sample('bad.sh', 'outl 0xcf8 0x80000800\n# fine\noutz 0x1 2\n');
    const c = sample('fuzz-x.c', 'static void t(void)\n{\n    QTestState *s = qtest_init("-M q35");\n    qtest_outl(s, 0xcf8, base + 4);\n}\n');
    const cString = sample('fuzz-y.c', 'static const char *cmds =\n    "outb 0x80 0x1\\n"\n    "outz 0x1 2\\n";\n');
    const wide = sample('wide.txt', 'outb 0x80 0x1ff\n');
    const far = sample('far.txt', 'readl 0x10000000000000\n');
    const reply = sample('r.log', '[R +0.1] inl 0xcfc\n[S +0.1] OK 0x1ffffffff\n');
    const orphan = sample('o.log', '[I 0.0] OPENED\n[S +0.1] OK\n');
    const twice = sample('twice.sh', 'qemu-system-x86_64 -M q35 -qtest stdio\nqemu-system-x86_64 -M pc -qtest stdio\n');
    const none = sample('none.sh', '# nothing here\n');
    const ram = sample('ram.sh', 'qemu-system-x86_64 -M q35 -m lots -qtest stdio\ninb 0x80\n');
    const virt = sample('virt.sh', 'qemu-system-aarch64 -M virt -qtest stdio\ninb 0x80\n');
    const jsonl = sample('x.jsonl', 'inb 0x80\n');
    for (const [args, message] of [
      [['import'], /missing qtest\|pcap FILE/],
      [['import', 'pcap'], /missing FILE: isoroot import pcap FILE/],
      [['import', 'pcap', script], /bad\.sh: byte 0: a pcap file/],
      [['import', 'nbd', script], /the format to import first: isoroot import qtest FILE or isoroot import pcap FILE, got "nbd"/],
      [['import', 'qtest'], /missing FILE: isoroot import qtest FILE/],
      [['import', 'qtest', script, script], /one FILE only, got 2/],
      [['import', 'qtest', script, '--machine', 'i440fx'], /--machine must be q35 or pc, got "i440fx"/],
      [['import', 'qtest', script, '--function', 'main'], /bad\.sh: --function picks a function of a C reproducer, but this is a qtest script/],
      [['import', 'qtest', '/nonexistent/x.sh'], /\/nonexistent\/x\.sh: a readable qtest log, qtest script or C reproducer/],
      [['import', 'qtest', script], /bad\.sh:3: a qtest command \(outl PORT VALUE, inw PORT, .*\), got "outz 0x1 2"/],
      [['import', 'qtest', c], /fuzz-x\.c:4: qtest_outl with an integer literal as argument 3, got qtest_outl\(s, 0xcf8, base \+ 4\)/],
      [['import', 'qtest', cString], /fuzz-y\.c:3: a qtest command \(outl PORT VALUE, .*\), got "outz 0x1 2"/],
      [['import', 'qtest', wide], /wide\.txt:1: outb PORT VALUE, VALUE at most 0xff, got "outb 0x80 0x1ff"/],
      [['import', 'qtest', far], /far\.txt:1: "readl 0x10000000000000" \(addr\): expected an integer in \[0, 0xfffffffffffff\]/],
      [['import', 'qtest', reply], /r\.log:2: a reply "OK 0x…" with a value of at most 4 bytes to "inl 0xcfc", got "OK 0x1ffffffff"/],
      [['import', 'qtest', orphan], /o\.log:2: a command \(\[R …\] line\) before this reply "OK"/],
      [['import', 'qtest', twice], /twice\.sh:2: one QEMU command line per input \(the first is at line 1\)/],
      [['import', 'qtest', none], /none\.sh: qtest commands \(none in this qtest script\)/],
      [['import', 'qtest', ram], /ram\.sh:1: -m SIZE such as 512M or 2G, got "lots"/],
      [['import', 'qtest', virt], /virt\.sh:1: an x86 machine isoroot drives .*got "virt"/],
      [['import', 'qtest', jsonl], /the trace would overwrite the input .*x\.jsonl: give --out TRACE/],
    ] as const) {
      const r = isoroot(...args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(2);
      expect(r.err).toMatch(message);
    }
    expect(existsSync(script.replace(/\.sh$/, '.jsonl'))).toBe(false);
    expect(readFileSync(jsonl, 'utf8')).toBe('inb 0x80\n');
  });
});

test.describe('on QEMU', () => {
  test.beforeEach(() => requireProgram('qemu-system-x86_64', 'apt-get install qemu-system-x86'));

  test("a log QEMU wrote imports, checks and replays: the devices sit where QEMU put them", () => {
    const dir = mkdtempSync(join(tmpdir(), 'isoroot-import-'));
    const log = join(dir, 'pc.log');
    const commands = ['outl 0xcf8 0x80002000', 'inl 0xcfc', 'outl 0xcf8 0x80002010', 'outl 0xcfc 0xfe000000', 'outl 0xcf8 0x80002004', 'outw 0xcfc 0x2', 'writel 0xfe000004 0xa5a5', 'readl 0xfe000004', 'readb 0xfe000001', 'inb 0x5001'];
    const args = ['-machine', 'pc', '-device', 'edu', '-display', 'none', '-qtest', 'stdio'];
    const q = spawnSync('qemu-system-x86_64', [...args, '-qtest-log', log], { input: commands.join('\n') + '\n', encoding: 'utf8', timeout: 30_000 });
    expect(q.status).toBe(0);
    writeFileSync(join(dir, 'edu.log'), `# qemu-system-x86_64 ${args.join(' ')}\n${readFileSync(log, 'utf8')}`);
    const r = isoroot('import', 'qtest', join(dir, 'edu.log'));
    expect(r.code).toBe(0);
    // No -nodefaults: VGA at 2, the NIC at 3, edu at 4.
    expect(r.out).toContain('topology: QEMU pc, edu 00:04.0 (edu)');
    const trace = join(dir, 'edu.jsonl');
    const checked = isoroot('check', trace);
    expect(checked.out).toContain('10 operations, no violations');
    expect(checked.code).toBe(0);
    const replayed = isoroot('check', trace, '--target', 'qemu:pc');
    expect(replayed.out).toContain('10 operations, no violations');
    expect(replayed.code).toBe(0);
  });
});
