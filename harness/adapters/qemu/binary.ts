/** Finding the QEMU binary (`--qemu PATH`, or qemu-system-x86_64 on PATH), its version and what it offers. */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
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
  /**
   * Whether it has the qtest accelerator (Debian's 7.2 does not; QEMU 11
   * does, though `-accel help` does not list it): a QEMU started with
   * `-accel qtest` on a machine without devices answered QMP and quit.
   */
  qtestAccel: boolean;
}

/** What the probe sends on the QMP monitor of the accelerator check: the handshake, then quit. */
const QMP_QUIT = '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n';

/** Whether `path` starts with the qtest accelerator (an unknown accelerator is an error at start-up). */
function hasQtestAccel(path: string): boolean {
  const r = spawnSync(path, ['-accel', 'qtest', '-machine', 'none', '-nodefaults', '-no-user-config', '-display', 'none', '-qmp', 'stdio'], { input: QMP_QUIT, encoding: 'utf8', timeout: 20_000 });
  return r.error === undefined && r.status === 0 && (r.stdout ?? '').includes('"QMP"');
}

/** The file `path` runs (searched on PATH for a bare name), as an identity that changes when it is replaced; null if not found. */
function identity(path: string): string | null {
  const candidates = path.includes('/') ? [path] : (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, path));
  for (const c of candidates) {
    try {
      const s = statSync(c);
      if (s.isFile()) return `${c}\0${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      // not there: the next one
    }
  }
  return null;
}

const buses = new Map<string, Map<string, string>>();

/** The bus each device driver of the binary goes on ("PCI", "ISA", "SCSI", …), from `-device help`. */
export function deviceBuses(bin: QemuBinary): Map<string, string> {
  let m = buses.get(bin.path);
  if (m !== undefined) return m;
  const r = spawnSync(bin.path, ['-device', 'help'], { encoding: 'utf8', timeout: 20_000 });
  m = new Map();
  for (const line of `${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n')) {
    const x = /^name "([^"]+)"(?:, bus ([A-Za-z0-9_-]+))?/.exec(line.trim());
    if (x !== null) m.set(x[1], x[2] ?? 'none');
  }
  buses.set(bin.path, m);
  return m;
}

const props = new Map<string, Set<string>>();

/** The properties a device driver of the binary takes (`-device NAME,help`). */
export function deviceProps(bin: QemuBinary, name: string): ReadonlySet<string> {
  const key = `${bin.path}\0${name}`;
  let s = props.get(key);
  if (s !== undefined) return s;
  const r = spawnSync(bin.path, ['-device', `${name},help`], { encoding: 'utf8', timeout: 20_000 });
  s = new Set(`${r.stdout ?? ''}\n${r.stderr ?? ''}`.split('\n').flatMap((l) => /^\s*([a-z][a-z0-9_-]*)=/.exec(l)?.[1] ?? []));
  props.set(key, s);
  return s;
}

/** Probes by the identity of the file probed: a target per test or per worker does not run them again. */
const probed = new Map<string, QemuBinary>();

export function probeQemu(path: string = DEFAULT_QEMU): QemuBinary {
  const id = identity(path);
  const known = id === null ? undefined : probed.get(id);
  if (known !== undefined) return known;
  const r = spawnSync(path, ['-version'], { encoding: 'utf8', timeout: 20_000 });
  const where = path === DEFAULT_QEMU ? 'QEMU (qemu-system-x86_64 on PATH)' : `--qemu ${path}`;
  if (r.error !== undefined) throw new InputError(where, `a QEMU binary that runs (${r.error.message}); on Debian: apt-get install qemu-system-x86`);
  const banner = (r.stdout ?? '').split('\n')[0].trim();
  const m = /QEMU emulator version (\d+\.\d+\.\d+)/.exec(banner);
  if (r.status !== 0 || m === null) throw new InputError(where, `a QEMU binary: "${path} -version" should print "QEMU emulator version X.Y.Z" (got ${JSON.stringify(banner || (r.stderr ?? '').trim().slice(0, 200))})`);
  const help = spawnSync(path, ['-machine', 'help'], { encoding: 'utf8', timeout: 20_000 });
  const machines = (help.stdout ?? '').split('\n').flatMap((l) => /^(\S+)\s+\S/.exec(l)?.[1] ?? []).filter((x) => x !== 'Supported');
  const bin: QemuBinary = { path, version: m[1], banner, machines, qtestAccel: hasQtestAccel(path) };
  if (id !== null) probed.set(id, bin);
  return bin;
}
