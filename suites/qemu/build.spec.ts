/**
 * What a newer QEMU changes in the machine isoroot builds (build.ts): the
 * 7.2 machine type where the binary has it, the root port's power
 * indicator after reset carried into the topology, and the accelerator
 * (qtest where the binary has it, else TCG with -S). No QEMU runs here
 * (accel.spec.ts runs the suite's).
 */
import { expect, test } from '@playwright/test';
import { qemuBuild } from '../../harness/adapters/qemu/build.ts';
import { machineArgs } from '../../harness/adapters/qemu/machine.ts';
import type { QemuBinary } from '../../harness/adapters/qemu/binary.ts';
import { PC, Q35 } from '../../harness/adapters/qemu/platform.ts';
import { prepareTopology } from '../../harness/adapters/qemu/prepare.ts';
import { walkDevices } from '../../harness/topology/types.ts';
import { edu, machine, port } from './helpers.ts';

const bin = (version: string, machines: string[], qtestAccel = false): QemuBinary => ({ path: 'qemu', version, banner: `QEMU emulator version ${version}`, machines, qtestAccel });

test("QEMU 7.2 runs its own machine; a newer QEMU runs 7.2's versioned machine where it still has it, else its own", () => {
  expect(qemuBuild(bin('7.2.22', ['q35', 'pc-q35-7.2', 'pc']), Q35)).toMatchObject({ machineType: 'q35', resetPowerIndicator: 'on', accel: 'tcg' });
  expect(qemuBuild(bin('11.1.3', ['q35', 'pc-q35-11.1', 'pc-q35-7.2', 'pc-i440fx-7.2'], true), Q35)).toMatchObject({ machineType: 'pc-q35-7.2', resetPowerIndicator: 'off', accel: 'qtest' });
  expect(qemuBuild(bin('11.1.3', ['q35', 'pc-q35-7.2', 'pc-i440fx-7.2']), PC).machineType).toBe('pc-i440fx-7.2');
  expect(qemuBuild(bin('13.0.0', ['q35', 'pc-q35-13.0']), Q35).machineType).toBe('q35');
});

test("the root ports of a topology prepared for a newer QEMU say their indicator is off after reset; for 7.2 they say nothing (the default)", () => {
  const t = machine([port('p0', 4, edu('e0', 0)), edu('e1', 5)]);
  const indicators = (x: ReturnType<typeof prepareTopology>): (string | undefined)[] => [...walkDevices(x)].filter((d) => d.dev.kind === 'root-port').map((d) => d.dev.resetPowerIndicator);
  const newer = prepareTopology(t, Q35, { resetPowerIndicator: 'off', scalableIommu: false, iommuTestdev: false });
  expect(indicators(newer)).toEqual(['off']);
  // Prepared again for 7.2, the field goes: a trace recorded on one QEMU is re-predicted for the other.
  expect(indicators(prepareTopology(newer, Q35, { resetPowerIndicator: 'on', scalableIommu: false, iommuTestdev: false }))).toEqual([undefined]);
});

test('with the qtest accelerator the machine runs without -S, TCG or -icount; without it, TCG with its CPUs stopped (-S) and -icount', () => {
  const t = prepareTopology(machine([edu('e0', 4)]), Q35);
  const qtest = machineArgs(t, Q35, 'pc-q35-7.2', 'qtest');
  expect(qtest.join(' ')).toContain('-accel qtest');
  expect(qtest).not.toContain('-S');
  expect(qtest).not.toContain('-icount');
  expect(qtest).not.toContain('tcg');
  const tcg = machineArgs(t, Q35);
  expect(tcg.join(' ')).toContain('-accel tcg -icount shift=0,sleep=off -S');
  // The rest of the machine is the same either way, the halting firmware included.
  const rest = (a: string[]): string[] => a.filter((x, i) => !['-accel', 'qtest', 'tcg', '-icount', 'shift=0,sleep=off', '-S'].includes(x) && !(i > 0 && a[i - 1] === '-machine'));
  expect(rest(qtest)).toEqual(rest(tcg));
  expect(qtest.join(' ')).toContain('-bios {dir}/halt.bin');
});
