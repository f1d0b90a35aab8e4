/**
 * Campaign progress. On a terminal: one live status line, redrawn in place.
 * Elsewhere (CI logs): a plain line at intervals.
 */
import { showDuration } from './budget.ts';

export interface Tally {
  elapsedMs: number;
  budget: string;
  runs: number;
  ops: number;
  covered: number;
  total: number;
  findings: Map<string, number>;
}

const rate = (n: number, ms: number): string => {
  const r = ms > 0 ? (n * 1000) / ms : 0;
  return r >= 10_000 ? `${(r / 1000).toFixed(0)}k` : r >= 1000 ? `${(r / 1000).toFixed(1)}k` : r.toFixed(0);
};

export function statusLine(t: Tally): string {
  const f = [...t.findings].map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const pct = t.total === 0 ? 0 : (100 * t.covered) / t.total;
  return `[${showDuration(t.elapsedMs)}/${t.budget}] ${t.runs} seq (${rate(t.runs, t.elapsedMs)}/s), ${t.ops} ops (${rate(t.ops, t.elapsedMs)}/s) | coverage ${t.covered}/${t.total} (${pct.toFixed(1)}%) | findings: ${f}`;
}

export class Progress {
  private drawn = false;
  private lastPlain = 0;

  constructor(
    private readonly out: NodeJS.WriteStream | { isTTY?: boolean; write(s: string): unknown },
    private readonly plainEveryMs = 10_000,
  ) {}

  get live(): boolean {
    return this.out.isTTY === true;
  }

  /** A line that stays (a finding, a note): clears the status line first. */
  say(line: string): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
    this.out.write(line + '\n');
  }

  tick(t: Tally, force = false): void {
    if (this.live) {
      this.out.write(`\r\x1b[K${statusLine(t)}`);
      this.drawn = true;
    } else if (force || t.elapsedMs - this.lastPlain >= this.plainEveryMs) {
      this.lastPlain = t.elapsedMs;
      this.out.write(statusLine(t) + '\n');
    }
  }

  end(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
