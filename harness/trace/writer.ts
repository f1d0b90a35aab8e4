/**
 * Trace writer. Writes go to a temporary file that is renamed into place
 * on close, so a reader never sees half a trace and a crash never leaves
 * one behind under the final name.
 */
import { closeSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { headerToJson, stepToJson, type Step, type TraceHeader } from './format.ts';

const FLUSH_AT = 1 << 16;

export class TraceWriter {
  private buf: string[] = [];
  private size = 0;
  private readonly tmp: string;
  private readonly fd: number;

  constructor(
    readonly file: string,
    header: TraceHeader,
    /** A record kept while it grows (a server's): written under its name from the start, flushed by sync(). */
    live = false,
  ) {
    mkdirSync(dirname(file), { recursive: true });
    this.tmp = live ? file : `${file}.${process.pid}.tmp`;
    this.fd = openSync(this.tmp, 'w');
    this.push(JSON.stringify(headerToJson(header)));
  }

  private push(line: string): void {
    this.buf.push(line, '\n');
    this.size += line.length + 1;
    if (this.size >= FLUSH_AT) this.flush();
  }

  private flush(): void {
    if (this.buf.length === 0) return;
    writeSync(this.fd, this.buf.join(''));
    this.buf = [];
    this.size = 0;
  }

  /** Puts what was written so far into the file. */
  sync(): void {
    this.flush();
  }

  write(step: Step): void {
    this.push(JSON.stringify(stepToJson(step)));
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
    if (this.tmp !== this.file) renameSync(this.tmp, this.file);
  }
}

export function traceToText(header: TraceHeader, steps: readonly Step[]): string {
  return [JSON.stringify(headerToJson(header)), ...steps.map((s) => JSON.stringify(stepToJson(s)))].join('\n') + '\n';
}

export function writeTrace(file: string, header: TraceHeader, steps: readonly Step[]): void {
  const w = new TraceWriter(file, header);
  for (const s of steps) w.write(s);
  w.close();
}
