/**
 * The guest side of vfio-user through QEMU's client, for the bench: QEMU
 * (>= 10.1, vfio-user-pci) on q35 with the qtest accelerator, its device
 * on the reference server's ep0, BAR0 programmed through CF8/CFC, then
 * 4-byte readl of the BAR (each one a REGION_READ to the server), lockstep
 * and pipelined over qtest on stdio.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { startServer } from '../harness/serve/vfio-user/child.ts';

export interface GuestRates {
  version: string;
  lockstep: number;
  pipelined: number;
}

const BAR = 0xc0000000;
/** Device 4 on bus 0: CONFIG_ADDRESS = enable | device << 11 | register (PCI 3.0 §3.2.2.3.2). */
const cf8 = (reg: number): string => `0x${((0x80000000 | (4 << 11) | reg) >>> 0).toString(16)}`;

export async function guestReads(o: { seconds: number; window: number; qemu: string }): Promise<GuestRates | string> {
  const qemu = o.qemu === '' ? 'qemu-system-x86_64' : o.qemu;
  const help = spawnSync(qemu, ['-device', 'help'], { encoding: 'utf8' });
  if (help.status !== 0) return `${qemu} does not run`;
  if (!help.stdout.includes('vfio-user-pci')) return `${qemu} has no vfio-user-pci (QEMU >= 10.1 has; scripts/install-qemu-backports.sh installs one, then ISOROOT_QEMU=<path>)`;
  const version = /version ([0-9.]+)/.exec(spawnSync(qemu, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
  const server = await startServer();
  const dev = JSON.stringify({ driver: 'vfio-user-pci', socket: { type: 'unix', path: server.sockets[0] }, addr: '0x4' });
  const q = spawn(qemu, ['-M', 'q35', '-m', '256M', '-accel', 'qtest', '-qtest', 'stdio', '-qtest-log', '/dev/null', '-display', 'none', '-nodefaults', '-device', dev], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  const waiting: ((l: string) => void)[] = [];
  // A QEMU that dies answers every pending command with its last words.
  q.on('exit', (c, sig) => {
    for (const w of waiting.splice(0)) w(`FAIL QEMU exited (${c ?? sig}): ${err.slice(-300)}`);
  });
  q.stderr!.on('data', (b) => (err += b));
  const lines = createInterface({ input: q.stdout! });
  lines.on('line', (l) => {
    if (l.startsWith('OK') || l.startsWith('ERR') || l.startsWith('FAIL')) waiting.shift()?.(l);
  });
  const ask = (cmd: string): Promise<string> =>
    new Promise((resolve) => {
      waiting.push(resolve);
      q.stdin!.write(`${cmd}\n`);
    });
  try {
    for (const c of [`outl 0xcf8 ${cf8(0x10)}`, `outl 0xcfc 0x${BAR.toString(16)}`, `outl 0xcf8 ${cf8(0x04)}`, 'outw 0xcfc 0x6']) await ask(c);
    const probe = await ask(`readl 0x${BAR.toString(16)}`);
    if (!/^OK 0x0*15000/.test(probe)) return `the device did not answer at its BAR (${probe}); QEMU said: ${err.slice(-400)}`;
    const read = `readl 0x${(BAR + 0x10).toString(16)}`;
    const measure = async (window: number): Promise<number> => {
      const until = Date.now() + o.seconds * 1000;
      let done = 0;
      const t0 = process.hrtime.bigint();
      while (Date.now() < until) {
        await Promise.all(Array.from({ length: window }, () => ask(read)));
        done += window;
      }
      return done / (Number(process.hrtime.bigint() - t0) / 1e9);
    };
    return { version, lockstep: await measure(1), pipelined: await measure(o.window) };
  } finally {
    q.kill('SIGKILL');
    await server.stop();
  }
}
