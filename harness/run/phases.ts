/**
 * Where a campaign's time goes, per sequence: drawing it, the target's
 * start, reset and reset verification (as the target reports them), the
 * rest of opening a session (learning, set-up), running the operations,
 * closing, checking, and shrinking what failed. Always on and cheap: a
 * clock read around each phase.
 */
import type { Target } from '../adapters/target.ts';

export const PHASES = ['generate', 'start', 'reset', 'verify', 'setup', 'run', 'close', 'check', 'shrink'] as const;
export type Phase = (typeof PHASES)[number];
export type PhaseTimes = Record<Phase, number>;

export const noPhases = (): PhaseTimes => ({ generate: 0, start: 0, reset: 0, verify: 0, setup: 0, run: 0, close: 0, check: 0, shrink: 0 });

export function addPhases(into: PhaseTimes, more: Readonly<PhaseTimes>): PhaseTimes {
  for (const p of PHASES) into[p] += more[p];
  return into;
}

/** Milliseconds per phase, accumulated. */
export class PhaseClock {
  readonly ms: PhaseTimes = noPhases();

  async time<T>(p: Phase, f: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      this.ms[p] += performance.now() - t0;
    }
  }

  timeSync<T>(p: Phase, f: () => T): T {
    const t0 = performance.now();
    try {
      return f();
    } finally {
      this.ms[p] += performance.now() - t0;
    }
  }

  /**
   * Times opening a session: what the target reports as its start, reset and
   * verification goes to those phases, the rest to set-up.
   */
  async opening<T>(target: Target, f: () => Promise<T>): Promise<T> {
    const before = target.phases === undefined ? null : { ...target.phases };
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      const total = performance.now() - t0;
      let own = 0;
      if (before !== null && target.phases !== undefined)
        for (const p of ['start', 'reset', 'verify'] as const) {
          const d = target.phases[p] - before[p];
          this.ms[p] += d;
          own += d;
        }
      this.ms.setup += Math.max(0, total - own);
    }
  }
}

/** One line per phase: ms per sequence and share of the time. */
export function showPhases(t: Readonly<PhaseTimes>, sequences: number): string {
  const total = PHASES.reduce((s, p) => s + t[p], 0);
  if (total === 0 || sequences === 0) return 'no time recorded';
  return PHASES.filter((p) => t[p] > 0)
    .map((p) => `${p} ${(t[p] / sequences).toFixed(2)} ms (${((100 * t[p]) / total).toFixed(0)}%)`)
    .join(', ');
}
