/**
 * Child processes that must not outlive isoroot. Each runs in its own
 * process group, so killing the group also kills whatever it started.
 */
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();

export function killGroup(p: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (p.pid === undefined) return;
  try {
    process.kill(-p.pid, signal);
  } catch {
    // Already gone.
  }
}

export function track(p: ChildProcess): void {
  live.add(p);
  p.once('exit', () => live.delete(p));
}

export function killAll(): void {
  for (const p of live) killGroup(p);
  live.clear();
}

process.once('exit', killAll);

/** For the CLI: on SIGINT or SIGTERM, kill every child group, then exit with 128 + signal. */
export function killChildrenOnSignals(): void {
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const)
    process.once(sig, () => {
      killAll();
      process.exit(code);
    });
}
