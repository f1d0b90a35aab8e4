/**
 * QEMU's vfio-user-pci client against isoroot's reference server, as the
 * suites run them: `isoroot serve vfio-user` in a child process, and QEMU
 * instances on the qtest accelerator (no guest code runs: the test is the
 * guest, through qtest), each with one vfio-user-pci device on one of
 * the server's sockets. A QEMU without vfio-user-pci (Debian's 7.2) fails
 * the suite in CI and skips it loudly elsewhere, as suites/require.ts does
 * for missing programs.
 */
import { QEMU11 } from '../qemu/qemu11.ts';
import { test } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import type { QemuProcess } from '../../harness/adapters/qemu/process.ts';
import { startClientQemu } from '../../harness/adapters/qemu/vfio-user-client.ts';
import { Q, parseValue, type QtestChannel } from '../../harness/adapters/qemu/qtest.ts';
import { cf8Access } from '../../harness/adapters/qemu/access.ts';
import { ecamAddress } from '../../harness/bus/config-access.ts';
import { bdf } from '../../harness/topology/bdf.ts';
import { requireProgram } from '../require.ts';

/** The QEMU with a vfio-user client (Debian 12's has none). */
export const CLIENT_QEMU = QEMU11;

/** Replies from QEMU (every vfio-user request it makes waits at most 5 s: x-msg-timeout). */
export const QT_TIMEOUT = 8000;

/** A QEMU with `-device vfio-user-pci` (QEMU 10.1 and later), or a failure in CI / a loud skip elsewhere. */
let hasVfioUser: boolean | undefined;

export function requireVfioUserQemu(): void {
  requireProgram(CLIENT_QEMU, 'scripts/install-qemu-backports.sh installs QEMU 11');
  hasVfioUser ??= /name "vfio-user-pci"/.test(spawnSync(CLIENT_QEMU, ['-device', 'help'], { encoding: 'utf8', timeout: 20_000 }).stdout ?? '');
  if (hasVfioUser) return;
  const msg = `${CLIENT_QEMU} has no -device vfio-user-pci (QEMU 10.1 or later has it: ISOROOT_QEMU names one, scripts/install-qemu-backports.sh installs QEMU 11); the vfio-user client suites cannot run`;
  if (process.env.CI !== undefined) throw new Error(`${msg}. In CI this is a failure.`);
  process.stderr.write(`\n!!!!! SKIPPING: ${msg}. !!!!!\n\n`);
  test.skip(true, msg);
}

export { startServer, type ServerProcess } from '../../harness/serve/vfio-user/child.ts';

export { vfioUserDevice } from '../../harness/adapters/qemu/vfio-user-client.ts';

/** A q35 QEMU on the qtest accelerator with the given devices, from CLIENT_QEMU. */
export const startQemu = (args: readonly string[], machine = 'q35'): Promise<QemuProcess> => startClientQemu(CLIENT_QEMU, args, machine);

/** What the guest does, through qtest: config space by CF8/CFC or ECAM, memory. */
export class Guest {
  constructor(readonly qt: QtestChannel) {}

  async cf8Read(bus: number, dev: number, reg: number, size: 1 | 2 | 4): Promise<number> {
    const r = await this.qt.call(cf8Access(bdf(bus, dev, 0), reg, size), QT_TIMEOUT);
    return Number(parseValue(r[1]));
  }

  async cf8Write(bus: number, dev: number, reg: number, size: 1 | 2 | 4, value: number): Promise<void> {
    await this.qt.call(cf8Access(bdf(bus, dev, 0), reg, size, value), QT_TIMEOUT);
  }

  /** q35 without firmware has ECAM off: PCIEXBAR (00:00.0 0x60) at 0xb0000000, enabled. */
  async enableEcam(): Promise<void> {
    await this.cf8Write(0, 0, 0x64, 4, 0);
    await this.cf8Write(0, 0, 0x60, 4, 0xb0000001);
  }

  private static ecam(bus: number, dev: number, reg: number): number {
    return ecamAddress(0xb0000000, bdf(bus, dev, 0), reg);
  }

  async ecamRead(bus: number, dev: number, reg: number, size: 1 | 2 | 4): Promise<number> {
    return Number(await this.qt.value(Q.read(Guest.ecam(bus, dev, reg), size), QT_TIMEOUT));
  }

  async ecamWrite(bus: number, dev: number, reg: number, size: 1 | 2 | 4, value: number): Promise<void> {
    await this.qt.call([Q.write(Guest.ecam(bus, dev, reg), size, BigInt(value))], QT_TIMEOUT);
  }

  async readl(addr: number): Promise<number> {
    return Number(await this.qt.value(Q.read(addr, 4), QT_TIMEOUT));
  }

  async writel(addr: number, value: number): Promise<void> {
    await this.qt.call([Q.write(addr, 4, BigInt(value))], QT_TIMEOUT);
  }

  /** The offset of capability `id` in the config space of bus:dev.0 (CF8), or 0. */
  async findCap(bus: number, dev: number, id: number): Promise<number> {
    let p = (await this.cf8Read(bus, dev, 0x34, 1)) & 0xfc;
    for (let n = 0; p !== 0 && n < 48; n++) {
      const h = await this.cf8Read(bus, dev, p, 2);
      if ((h & 0xff) === id) return p;
      p = (h >> 8) & 0xfc;
    }
    return 0;
  }
}
