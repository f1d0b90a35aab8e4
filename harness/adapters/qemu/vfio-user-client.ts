/**
 * QEMU as a vfio-user client (vfio-user-pci, QEMU 10.1 and later): a q35
 * machine on the qtest accelerator (no guest code runs; qtest is the
 * guest) with vfio-user-pci devices on sockets a server already listens
 * on (realize connects). The suites and the bench drive it the same way.
 */
import { QemuProcess } from './process.ts';

/** The vfio-user-pci device on `socket`, as a -device argument (the socket property only takes the JSON form). */
export const vfioUserDevice = (socket: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ driver: 'vfio-user-pci', ...extra, socket: { type: 'unix', path: socket } });

/** QEMU `binary` (256 MiB, qtest accelerator) with the given extra arguments. */
export function startClientQemu(binary: string, args: readonly string[], machine = 'q35'): Promise<QemuProcess> {
  return QemuProcess.start({
    binary,
    args: ['-machine', machine, '-m', '256M', '-accel', 'qtest', '-nodefaults', '-no-user-config', '-display', 'none', ...args],
    startupMs: 20_000,
  });
}
