/**
 * What the QEMU at hand changes in the machine isoroot builds. The model's
 * QEMU personalities and platforms follow QEMU 7.2 (Debian 12's). On a
 * newer QEMU the target asks for the 7.2 machine type (pc-q35-7.2,
 * pc-i440fx-7.2) where the binary still has it: QEMU keeps a versioned
 * machine's guest-visible defaults through compat properties (PCIe
 * Extended Tag, AER's default masks, ...), so what still differs is a
 * change in QEMU's code, which is what a conformance run should see.
 * Behaviour that changed in the code, and that the model knows, is
 * declared here and carried into the topology, so a trace says which
 * behaviour its predictions assumed.
 *
 * How the machine runs depends on the binary too. With the qtest
 * accelerator (QEMU 11 has it; Debian's 7.2 does not) no CPU exists to
 * run guest code and virtual time moves only by qtest's clock_step, so
 * edu's DMA completes after a fixed step. Without it, QEMU runs TCG with
 * its CPUs stopped (-S) and virtual time moves while isoroot lets the VM
 * run (QMP cont) under -icount (dma.ts).
 */
import { deviceProps, type QemuBinary } from './binary.ts';
import type { Platform } from './platform.ts';

/** The QEMU release whose machines and devices the model follows. */
export const MODEL_QEMU = '7.2';

export interface QemuBuild {
  /** The -machine type: the 7.2 one where the binary has it, else the platform's alias. */
  machineType: string;
  /** A populated root port's power indicator after reset: on in 7.2, off on 11.1.3 (versions between: untested, taken as 11's). */
  resetPowerIndicator: 'on' | 'off';
  /** qtest: the qtest accelerator, time moved by clock_step; tcg: TCG with -S and -icount, time moved by running the VM. */
  accel: QemuAccel;
  /**
   * Whether intel-iommu runs VT-d scalable mode with PASID tables and
   * first-stage translation (properties scalable-mode, pasid-bits, fsts:
   * QEMU 11; 7.2 has only the experimental x-scalable-mode).
   */
  scalableIommu: boolean;
  /** Whether the binary has iommu-testdev (QEMU 11: a DMA master that needs no timer, hw/misc/iommu-testdev.c). */
  iommuTestdev: boolean;
}

export type QemuAccel = 'qtest' | 'tcg';

/** How the machine runs, as the trace header's target version says it ("11.1.3, accel qtest"). */
export const accelNote = (a: QemuAccel): string => (a === 'qtest' ? 'accel qtest' : 'accel tcg -S');

export function qemuBuild(bin: QemuBinary, p: Platform): QemuBuild {
  const major = Number(bin.version.split('.')[0]);
  const pinned = `${p.versionedMachine}${MODEL_QEMU}`;
  return {
    machineType: bin.version.startsWith(`${MODEL_QEMU}.`) || !bin.machines.includes(pinned) ? p.machine : pinned,
    resetPowerIndicator: major > 7 ? 'off' : 'on',
    accel: bin.qtestAccel ? 'qtest' : 'tcg',
    scalableIommu: p.machine === 'q35' && ['scalable-mode', 'pasid-bits', 'fsts'].every((x) => deviceProps(bin, 'intel-iommu').has(x)),
    iommuTestdev: deviceProps(bin, 'iommu-testdev').has('addr'),
  };
}
