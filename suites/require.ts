/**
 * External programs a suite needs. Missing in CI, the suite fails; on a
 * developer's machine it is skipped with a loud message saying what to
 * install.
 */
import { test } from '@playwright/test';
import { spawnSync } from 'node:child_process';

export function requireProgram(name: string, install: string): void {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
  if (!found) missing(`${name} is not installed (${install}); the suites that need it cannot run`);
}

/** Something a suite needs is missing: a failure in CI, else a loud skip. Never returns. */
export function missing(msg: string): never {
  if (process.env.CI !== undefined) throw new Error(`${msg}. In CI this is a failure.`);
  process.stderr.write(`\n!!!!! SKIPPING: ${msg}. !!!!!\n\n`);
  test.skip(true, msg);
  throw new Error('unreachable: test.skip ends the test');
}
