/**
 * The guest side of vfio-user through QEMU's client, for the bench: QEMU
 * (>= 10.1, vfio-user-pci) on q35 with the qtest accelerator, its device
 * on the reference server's ep0, BAR0 programmed through CF8/CFC, then
 * 4-byte readl of the BAR (each one a REGION_READ to the server), lockstep
 * and pipelined over the qtest channel.
 */
import { spawnSync } from 'node:child_process';
import { startServer } from '../harness/serve/vfio-user/child.ts';
import { startClientQemu, vfioUserDevice } from '../harness/adapters/qemu/vfio-user-client.ts';
import { Q, parseValue } from '../harness/adapters/qemu/qtest.ts';
import type { QemuProcess } from '../harness/adapters/qemu/process.ts';
import { cf8Access } from '../harness/adapters/qemu/access.ts';
import { bdf } from '../harness/topology/bdf.ts';

export interface GuestRates {
  version: string;
  lockstep: number;
  pipelined: number;
}

const BAR = 0xc0000000;
const SLOT = 4;
/** Each reply within QEMU's own vfio-user timeout (x-msg-timeout, 5 s) and some. */
const TIMEOUT = 8000;
/** CONFIG_ADDRESS of bus 0, device SLOT (PCI 3.0 §3.2.2.3.2). */

export async function guestReads(o: { seconds: number; window: number; qemu: string }): Promise<GuestRates | string> {
  const qemu = o.qemu === '' ? 'qemu-system-x86_64' : o.qemu;
  const help = spawnSync(qemu, ['-device', 'help'], { encoding: 'utf8' });
  if (help.status !== 0) return `${qemu} does not run`;
  if (!help.stdout.includes('vfio-user-pci')) return `${qemu} has no vfio-user-pci (QEMU >= 10.1 has; scripts/install-qemu-backports.sh installs one, then ISOROOT_QEMU=<path>)`;
  const version = /version ([0-9.]+)/.exec(spawnSync(qemu, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
  const server = await startServer();
  let q: QemuProcess | null = null;
  try {
    q = await startClientQemu(qemu, ['-device', vfioUserDevice(server.sockets[0], { addr: String(SLOT) })]);
    const qt = q.qtest;
    await qt.call([...cf8Access(bdf(0, SLOT, 0), 0x10, 4, BAR), ...cf8Access(bdf(0, SLOT, 0), 0x04, 2, 0x6)], TIMEOUT);
    const id = await qt.value(Q.read(BAR, 4), TIMEOUT);
    if (id >> 12n !== 0x15000n) return `the device did not answer at its BAR (read 0x${id.toString(16)}); QEMU said: ${q.stderr.slice(-400)}`;
    const measure = async (window: number): Promise<number> => {
      const batch = Array.from({ length: window }, () => Q.read(BAR + 0x10, 4));
      const until = Date.now() + o.seconds * 1000;
      let done = 0;
      const t0 = process.hrtime.bigint();
      while (Date.now() < until) {
        for (const r of await qt.call(batch, TIMEOUT)) parseValue(r);
        done += window;
      }
      return done / (Number(process.hrtime.bigint() - t0) / 1e9);
    };
    return { version, lockstep: await measure(1), pipelined: await measure(o.window) };
  } finally {
    await q?.kill();
    await server.dispose();
  }
}
