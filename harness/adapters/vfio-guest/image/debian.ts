/**
 * Debian's packages the guest is made of, resolved and fetched at set-up
 * (apt-cache, apt-get download, dpkg -x): nothing is installed on the
 * host, and nothing fetched is kept in the repository.
 */
import { spawnSync } from 'node:child_process';
import { InputError } from '../../../util/errors.ts';

/** The kernel metapackage the guest follows: Debian's cloud kernel boots fastest and has VFIO as modules. */
export const KERNEL_METAPACKAGE = 'linux-image-cloud-amd64';
export const BUSYBOX_PACKAGE = 'busybox-static';

export interface DebPackage {
  name: string;
  version: string;
}

function run(cmd: string, args: readonly string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (r.error !== undefined) throw new InputError(`set-up: ${cmd}`, `a working ${cmd} (${r.error.message}); the vfio-guest target needs Debian's apt and dpkg`);
  if (r.status !== 0) throw new InputError(`set-up: ${cmd} ${args.join(' ')}`, `exit status 0 (got ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')})`);
  return r.stdout;
}

let updated = false;

/** The candidate version apt would install of `name`; as root, apt's lists are updated once when they do not know it. */
export function candidate(name: string): DebPackage {
  let out = run('apt-cache', ['policy', name]);
  if (!/^\s*Candidate:\s*[^(\s]/m.test(out) && !updated && process.getuid?.() === 0) {
    updated = true;
    run('apt-get', ['update', '-qq']);
    out = run('apt-cache', ['policy', name]);
  }
  const m = /^\s*Candidate:\s*(\S+)/m.exec(out);
  if (m === null || m[1] === '(none)') throw new InputError(`set-up: apt-cache policy ${name}`, `a candidate version (is ${name} in apt's lists? run apt-get update)`);
  return { name, version: m[1] };
}

/** The versioned kernel package a metapackage depends on (linux-image-cloud-amd64 → linux-image-6.1.0-57-cloud-amd64). */
export function kernelPackage(meta: string = KERNEL_METAPACKAGE): DebPackage {
  const out = run('apt-cache', ['depends', candidate(meta).name]);
  const m = /Depends:\s*(linux-image-\d\S*)/.exec(out);
  if (m === null) throw new InputError(`set-up: apt-cache depends ${meta}`, 'a dependency on a versioned linux-image package');
  return candidate(m[1]);
}

/** Downloads `p` (apt-get download) into `dir` and unpacks it there under `into` (dpkg -x). */
export function fetchAndExtract(p: DebPackage, dir: string, into: string): void {
  run('apt-get', ['download', `${p.name}=${p.version}`], dir);
  const deb = run('sh', ['-c', `ls -1 ${JSON.stringify(p.name)}_*.deb`], dir).trim().split('\n').pop()!;
  run('dpkg', ['-x', deb, into], dir);
}
