/**
 * Xen's own vPCI code (xen/drivers/vpci and xen/common/rangeset.c), built
 * unmodified in user space against isoroot's shim by
 * scripts/build-xen-vpci.sh, and its self-test. The Xen tree is the one
 * scripts/xen-source.sh finds (Debian's source package in
 * ~/.cache/isoroot/xen-src; scripts/prerequisites.sh gets it) or the one
 * ISOROOT_XEN_SRC names. Without a tree or gcc the suite fails in CI and is
 * skipped loudly elsewhere. Builds go to temporary folders outside the
 * repository: Xen is GPLv2 and isoroot is MIT.
 */
import { expect, test } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { xenVersion } from '../../harness/adapters/xen/agent.ts';
import { missing, requireProgram } from '../require.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BUILD = join(ROOT, 'scripts', 'build-xen-vpci.sh');
const XEN_SOURCE = join(ROOT, 'scripts', 'xen-source.sh');
const MANIFESTS = join(ROOT, 'harness', 'adapters', 'xen', 'manifests');
interface Manifest {
  xen_version: string;
  files: { path: string; sha256: string }[];
}
/** The committed manifest for a Xen version (harness/adapters/xen/manifests/<version>.json), if there is one. */
function manifestFor(version: string): Manifest | undefined {
  const f = join(MANIFESTS, `${version}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Manifest) : undefined;
}
/** A build compiles five files and runs a self-test in a few seconds; a slow, shared machine gets ample room. */
const BUILD_TIMEOUT = 300_000;

/**
 * The Xen tree to build from, without fetching anything: ISOROOT_XEN_SRC,
 * else the tree in the cache. None: a failure in CI, a loud skip elsewhere
 * (as requireProgram does for programs).
 */
function requireXenTree(): string {
  const user = process.env.ISOROOT_XEN_SRC;
  const r = spawnSync('bash', [XEN_SOURCE, '--no-fetch', ...(user ? ['--xen-src', user] : [])], { encoding: 'utf8' });
  const tree = r.stdout?.trim().split('\n').pop() ?? '';
  if (r.status === 0 && tree !== '') return tree;
  const why = (r.stderr || r.error?.message || `exit status ${r.status}`).trim().replace(/^xen-source: error: /, '');
  const msg = user
    ? `ISOROOT_XEN_SRC=${user} cannot be built from (${why}); the Xen suites cannot run`
    : `no Xen source tree (${why}; for the suites, ISOROOT_XEN_SRC names a checkout); the Xen suites cannot run without one`;
  return missing(msg);
}

interface Built {
  status: number | null;
  stdout: string;
  stderr: string;
  /** OUT_DIR/manifest.json, the files the build copied and their sha256 (undefined if not written). */
  manifest: Manifest | undefined;
}

/** Runs the build script into a fresh temporary folder, removed afterwards. An empty tree: none given (the script asks scripts/xen-source.sh). */
function build(tree: string): Built {
  const out = mkdtempSync(join(tmpdir(), 'isoroot-xen-build-'));
  try {
    const r = spawnSync('bash', [BUILD, tree, out], { encoding: 'utf8', timeout: BUILD_TIMEOUT });
    if (r.error) throw new Error(`${BUILD} did not finish: ${r.error.message}\n${r.stdout}\n${r.stderr}`);
    let manifest: Manifest | undefined;
    try {
      manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest;
    } catch {
      manifest = undefined;
    }
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, manifest };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const shown = (r: Built): string => `exit ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
/** The version line the build prints: "build-xen-vpci: Xen 4.17.5 from /path". */
const builtVersion = (r: Built): string | undefined => /^build-xen-vpci: Xen (\S+) from /m.exec(r.stdout)?.[1];

test.beforeEach(() => {
  test.setTimeout(2 * BUILD_TIMEOUT);
  requireProgram('gcc', 'apt-get install build-essential');
});

test("Xen's vPCI builds from the tree set-up found, matches the committed manifest for its version, and its self-test sizes BAR0, maps it on memory decoding and unmaps it when decoding goes off", () => {
  const tree = requireXenTree();
  const version = xenVersion(tree);
  const manifest = manifestFor(version);
  // Without ISOROOT_XEN_SRC the build is given no tree, so it asks scripts/xen-source.sh itself.
  const r = build(process.env.ISOROOT_XEN_SRC ? tree : '');
  expect(r.status, shown(r)).toBe(0);
  expect(r.stdout, shown(r)).toContain(`build-xen-vpci: Xen ${version} from ${realpathSync(tree)}\n`);
  if (manifest === undefined) expect(r.stdout, shown(r)).toContain(`build-xen-vpci: no reference manifest for Xen ${version} `);
  else {
    const headers = manifest.files.filter((f) => f.path.endsWith('.h')).length;
    const sources = manifest.files.length - headers;
    expect(r.stdout, shown(r)).toContain(`build-xen-vpci: all ${sources} sources and ${headers} headers match harness/adapters/xen/manifests/${version}.json\n`);
  }
  expect(r.stderr).not.toContain('differs from the reference manifest');
  const lines = r.stdout.split('\n');
  // BAR0 is a 32-bit 16 KiB memory BAR: all ones written, the size mask read back.
  expect(lines).toContain('ok   BAR0 sizing: wrote 0xffffffff, read back 0xffffc000 (size 16384)');
  // Placed at 0xfe000000 and decoded: 4 pages mapped 1:1 in the hardware domain's p2m...
  expect(lines).toContainEqual(expect.stringMatching(/^ok +memory decoding on \(\d+ process_pending rounds\): map_mmio_regions\(gfn 0xfe000, nr 4, mfn 0xfe000\)$/));
  expect(lines).toContain('     p2m[0] map gfn 0xfe000 mfn 0xfe000 nr 4 -> done 4 rc 0');
  // ...and unmapped when decoding goes off.
  expect(lines).toContainEqual(expect.stringMatching(/^ok +memory decoding off \(\d+ rounds\): unmap_mmio_regions\(gfn 0xfe000, nr 4\)$/));
  expect(lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
  expect(lines).toContain('PASSED: 0 failure(s)');
  // The build's own manifest lists the tree's files with the committed hashes.
  expect(r.manifest?.xen_version).toBe(version);
  if (manifest !== undefined) expect(r.manifest?.files).toEqual(manifest.files);
});

test('every committed manifest is for the Xen version its file is named after, and names vpci.c and rangeset.c', () => {
  for (const version of ['4.17.5', '4.21.2', '4.22.0']) {
    const m = manifestFor(version);
    expect(m?.xen_version, version).toBe(version);
    expect(m?.files.map((f) => f.path)).toEqual(expect.arrayContaining(['xen/drivers/vpci/vpci.c', 'xen/common/rangeset.c', 'xen/include/xen/vpci.h']));
    for (const f of m?.files ?? []) expect(f.sha256, f.path).toMatch(/^[0-9a-f]{64}$/);
  }
});

test('a tree with one byte of xen/drivers/vpci/msi.c changed is named as differing from the manifest, and the build goes on', () => {
  const tree = requireXenTree();
  const version = xenVersion(tree);
  const MANIFEST = manifestFor(version);
  test.skip(MANIFEST === undefined, `no committed manifest for Xen ${version}: no check to make`);
  if (MANIFEST === undefined) return;
  const copy = mkdtempSync(join(tmpdir(), 'isoroot-xen-tree-'));
  try {
    // Only what the build reads, at the same relative paths: xen/Makefile (the version) and the manifest's files.
    for (const f of ['xen/Makefile', ...MANIFEST.files.map((m) => m.path)]) {
      mkdirSync(dirname(join(copy, f)), { recursive: true });
      copyFileSync(join(tree, f), join(copy, f));
    }
    const msi = join(copy, 'xen/drivers/vpci/msi.c');
    const bytes = readFileSync(msi);
    // One letter of the leading comment changes case: still a comment, so it still compiles.
    const end = bytes.indexOf('*/');
    let at = -1;
    for (let i = 2; i < end && at < 0; i++) if (bytes[i] >= 0x61 && bytes[i] <= 0x7a) at = i;
    expect(at, 'a lower-case letter in msi.c\'s leading comment').toBeGreaterThan(0);
    bytes[at] ^= 0x20;
    writeFileSync(msi, bytes);

    const r = build(copy);
    expect(builtVersion(r), shown(r)).toBe(version);
    expect(r.status, shown(r)).toBe(0);
    const want = MANIFEST.files.find((m) => m.path === 'xen/drivers/vpci/msi.c')!.sha256;
    expect(r.stderr).toContain(`build-xen-vpci: WARNING: xen/drivers/vpci/msi.c differs from the reference manifest for Xen ${MANIFEST.xen_version}\n`);
    expect(r.stderr).toContain(`build-xen-vpci:   expected sha256 ${want}, got ${sha256(bytes)}\n`);
    // Only msi.c is named, here and again at the end.
    expect(r.stderr.match(/differs from the reference manifest for Xen/g)).toHaveLength(1);
    expect(r.stderr).toContain('build-xen-vpci: WARNING: built from a tree that differs from the reference manifest: xen/drivers/vpci/msi.c\n');
    expect(r.stdout).not.toContain(`match harness/adapters/xen/manifests/${version}.json`);
    expect(r.stdout.split('\n')).toContain('PASSED: 0 failure(s)');
    // The build's own manifest records the changed file as it found it.
    expect(r.manifest?.files.find((m) => m.path === 'xen/drivers/vpci/msi.c')?.sha256).toBe(sha256(bytes));
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
