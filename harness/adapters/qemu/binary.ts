/** Finding the QEMU binary (`--qemu PATH`, or qemu-system-x86_64 on PATH) and its version. */
import { spawnSync } from 'node:child_process';
import { InputError } from '../../util/errors.ts';

export const DEFAULT_QEMU = 'qemu-system-x86_64';

export interface QemuBinary {
  path: string;
  /** "7.2.22" */
  version: string;
  /** The whole first line QEMU prints, with the distribution's build tag. */
  banner: string;
  /** The machine types it offers (-machine help). */
  machines: string[];
}

export function probeQemu(path: string = DEFAULT_QEMU): QemuBinary {
  const r = spawnSync(path, ['-version'], { encoding: 'utf8', timeout: 20_000 });
  const where = path === DEFAULT_QEMU ? 'QEMU (qemu-system-x86_64 on PATH)' : `--qemu ${path}`;
  if (r.error !== undefined) throw new InputError(where, `a QEMU binary that runs (${r.error.message}); on Debian: apt-get install qemu-system-x86`);
  const banner = (r.stdout ?? '').split('\n')[0].trim();
  const m = /QEMU emulator version (\d+\.\d+\.\d+)/.exec(banner);
  if (r.status !== 0 || m === null) throw new InputError(where, `a QEMU binary: "${path} -version" should print "QEMU emulator version X.Y.Z" (got ${JSON.stringify(banner || (r.stderr ?? '').trim().slice(0, 200))})`);
  const help = spawnSync(path, ['-machine', 'help'], { encoding: 'utf8', timeout: 20_000 });
  const machines = (help.stdout ?? '').split('\n').flatMap((l) => /^(\S+)\s+\S/.exec(l)?.[1] ?? []).filter((x) => x !== 'Supported');
  return { path, version: m[1], banner, machines };
}
