/**
 * The guest isoroot boots for the vfio-guest target: a kernel, and an
 * initramfs of busybox, the VFIO and virtio-serial modules with their
 * dependencies, and isoroot's agent, compiled here with the machine's gcc.
 * Built once and cached under ~/.cache/isoroot/vfio-guest/<key>, keyed by
 * the package versions (or the user's kernel) and the agent's source.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../../../util/errors.ts';
import { BUSYBOX_PACKAGE, candidate, fetchAndExtract, kernelPackage, type DebPackage } from './debian.ts';
import { initScript } from './init-script.ts';
import { loadOrder, moduleKey, readModInfo, type ModInfo } from './modinfo.ts';
import { newcArchive, type NewcEntry } from './newc.ts';

/** The modules the guest loads: VFIO with the type1 IOMMU backend (vfio asks for it by name, and there is no modprobe), and the agent's channel. */
export const WANTED_MODULES = ['vfio_iommu_type1', 'vfio_pci', 'virtio_pci', 'virtio_console'];

export const AGENT_SOURCE = join(dirname(fileURLToPath(import.meta.url)), '..', 'agent.c');

/** A user's own kernel (--kernel, --modules): its modules folder is lib/modules/<release>. */
export interface OwnKernel {
  kernel: string;
  modules: string;
}

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** The kernel's release (uname -r), from its modules folder. */
  release: string;
  /** What the guest is made of, for traces and reports: package names and versions, or the user's files. */
  parts: string[];
  /** The modules in the initramfs, in load order. */
  modules: string[];
  dir: string;
}

export const guestCacheRoot = (): string => join(homedir(), '.cache', 'isoroot', 'vfio-guest');

/** Raised when what goes into an image changes in a way its inputs do not show (the archive's layout, the set-up's steps). */
const IMAGE_FORMAT = '1';

const sha = (...parts: (string | Uint8Array)[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 12);
};

function compileAgent(out: string): void {
  const r = spawnSync('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-o', out, AGENT_SOURCE], { encoding: 'utf8' });
  if (r.error !== undefined) throw new InputError('set-up: gcc', `the machine's gcc, to compile the guest agent (${r.error.message}; apt-get install gcc libc6-dev)`);
  if (r.status !== 0) throw new InputError(`set-up: gcc ${AGENT_SOURCE}`, `a clean compile (${r.stderr.trim().split('\n').slice(-4).join(' / ')})`);
}

/** Every module file under `dir` by its name, for modules whose name is wanted or depended on. */
function moduleInfos(dir: string): { infos: Map<string, ModInfo>; files: Map<string, string> } {
  const infos = new Map<string, ModInfo>();
  const files = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) {
        const info = readModInfo(readFileSync(p), p);
        infos.set(moduleKey(info.name), info);
        files.set(moduleKey(info.name), p);
      }
    }
  };
  walk(dir);
  return { infos, files };
}

/** Module names the kernel has built in (modules.builtin), which need no loading. */
function builtins(modulesDir: string): Set<string> {
  const f = join(modulesDir, 'modules.builtin');
  if (!existsSync(f)) return new Set();
  return new Set(readFileSync(f, 'utf8').split('\n').filter((l) => l !== '').map((l) => moduleKey(basename(l).replace(/\.ko.*$/, ''))));
}

function writeInitrd(modulesDir: string, busybox: string, agent: string, out: string): string[] {
  const { infos, files } = moduleInfos(modulesDir);
  const built = builtins(modulesDir);
  if (infos.size === 0 && built.size === 0) throw new InputError(modulesDir, 'a modules folder with .ko files (lib/modules/<release>; compressed .ko.xz modules: unpack them first)');
  const wanted = WANTED_MODULES.filter((m) => !built.has(moduleKey(m)));
  // A built-in module needs no file; loadOrder sees it as a module without dependencies.
  for (const b of built) if (!infos.has(b)) infos.set(b, { name: b, depends: [] });
  const order = loadOrder(wanted, infos, modulesDir).filter((m) => !built.has(m));
  const entries: NewcEntry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'tmp', 'lib', 'lib/modules'].map((path) => ({ kind: 'dir' as const, path })),
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    { kind: 'char', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'bin/busybox', data: readFileSync(busybox), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'file', path: 'agent', data: readFileSync(agent), mode: 0o755 },
    { kind: 'file', path: 'init', data: Buffer.from(initScript(order)), mode: 0o755 },
    ...order.map((m) => ({ kind: 'file' as const, path: `lib/modules/${m}.ko`, data: readFileSync(files.get(m)!) })),
  ];
  writeFileSync(out, newcArchive(entries));
  return order;
}

/** The release of a modules folder lib/modules/<release>. */
const releaseOf = (modulesDir: string): string => basename(modulesDir.replace(/\/+$/, ''));

/**
 * The guest image, built now if the cache does not have it. With `own`,
 * the user's kernel and modules; otherwise Debian's cloud kernel through
 * its metapackage. busybox is always Debian's busybox-static.
 */
export function guestImage(own?: OwnKernel, log: (m: string) => void = () => {}): GuestImage {
  const agentSrc = readFileSync(AGENT_SOURCE);
  const bb = candidate(BUSYBOX_PACKAGE);
  let kpkg: DebPackage | null = null;
  let key: string;
  if (own !== undefined) {
    for (const [flag, p] of [['--kernel', own.kernel], ['--modules', own.modules]] as const) if (!existsSync(p)) throw new InputError(flag, `an existing path (${p} is not there)`);
    const st = statSync(own.kernel);
    key = `own-${releaseOf(own.modules)}-${sha(IMAGE_FORMAT, own.kernel, String(st.size), String(st.mtimeMs), own.modules, bb.version, agentSrc, initScript(WANTED_MODULES))}`;
  } else {
    kpkg = kernelPackage();
    key = `${kpkg.name.replace(/^linux-image-/, '')}_${kpkg.version}-${sha(IMAGE_FORMAT, bb.version, agentSrc, initScript(WANTED_MODULES))}`;
  }
  const dir = join(guestCacheRoot(), key);
  const manifest = join(dir, 'image.json');
  if (existsSync(manifest)) return JSON.parse(readFileSync(manifest, 'utf8')) as GuestImage;
  log(`isoroot: building the vfio-guest image in ${dir}`);
  const work = `${dir}.tmp-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'debs'), { recursive: true });
  try {
    fetchAndExtract(bb, join(work, 'debs'), join(work, 'root'));
    let kernel: string;
    let modulesDir: string;
    if (kpkg !== null) {
      fetchAndExtract(kpkg, join(work, 'debs'), join(work, 'root'));
      const release = kpkg.name.replace(/^linux-image-/, '');
      kernel = join(work, 'root', 'boot', `vmlinuz-${release}`);
      modulesDir = join(work, 'root', 'lib', 'modules', release);
    } else {
      kernel = own!.kernel;
      modulesDir = own!.modules;
    }
    compileAgent(join(work, 'agent'));
    const modules = writeInitrd(modulesDir, join(work, 'root', 'bin', 'busybox'), join(work, 'agent'), join(work, 'initrd.cpio.gz'));
    const release = releaseOf(modulesDir);
    if (kpkg !== null) renameSync(kernel, join(work, 'vmlinuz'));
    rmSync(join(work, 'debs'), { recursive: true, force: true });
    rmSync(join(work, 'root'), { recursive: true, force: true });
    const parts = [...(kpkg !== null ? [`${kpkg.name} ${kpkg.version}`] : [`kernel ${own!.kernel}`, `modules ${own!.modules}`]), `${bb.name} ${bb.version}`, `agent ${sha(agentSrc)}`];
    const image: GuestImage = { kernel: kpkg !== null ? join(dir, 'vmlinuz') : own!.kernel, initrd: join(dir, 'initrd.cpio.gz'), release, parts, modules, dir };
    writeFileSync(join(work, 'image.json'), JSON.stringify(image, null, 2) + '\n');
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
    return image;
  } catch (e) {
    rmSync(work, { recursive: true, force: true });
    throw e;
  }
}
