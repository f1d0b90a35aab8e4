/**
 * Streaming trace reader. Memory stays constant however long the trace:
 * steps are parsed one line at a time. A malformed line stops the read
 * with the file, the line number and what was expected.
 */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { InputError } from '../util/errors.ts';
import { JsonReader } from '../util/json-read.ts';
import { parseHeader, parseStep, type Step, type Trace, type TraceHeader } from './format.ts';

function parseLine(file: string, n: number, text: string): unknown {
  if (text.trim() === '') throw new InputError(`${file}:${n}`, 'a JSON object, got an empty line');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`${file}:${n}`, `valid JSON (${(e as Error).message})`);
  }
}

const readerAt = (file: string, n: number): JsonReader => new JsonReader((path) => `${file}:${n}: ${path}`);

export interface TraceStream {
  header: TraceHeader;
  /** Steps with their line numbers; iterate once. */
  steps: AsyncIterable<Step & { line: number }>;
  close(): void;
}

export async function openTrace(file: string): Promise<TraceStream> {
  try {
    await access(file);
  } catch {
    throw new InputError(file, 'a readable trace file (it does not exist or cannot be read)');
  }
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  const it = rl[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done === true) {
    rl.close();
    throw new InputError(`${file}:1`, 'a header line, got an empty file');
  }
  const header = parseHeader(readerAt(file, 1), parseLine(file, 1, first.value));
  async function* steps(): AsyncGenerator<Step & { line: number }> {
    let n = 1;
    for (;;) {
      const next = await it.next();
      if (next.done === true) return;
      n++;
      yield { ...parseStep(readerAt(file, n), parseLine(file, n, next.value)), line: n };
    }
  }
  return { header, steps: steps(), close: () => rl.close() };
}

/** Reads a whole trace into memory (for traces small enough to shrink or print). */
export async function readTrace(file: string): Promise<Trace> {
  const t = await openTrace(file);
  const steps: Step[] = [];
  for await (const { line: _, ...s } of t.steps) steps.push(s);
  return { header: t.header, steps };
}

/** Parses a trace held in a string; `name` stands for the file in errors. */
export function parseTraceText(text: string, name: string): Trace {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw new InputError(`${name}:1`, 'a header line, got an empty file');
  const header = parseHeader(readerAt(name, 1), parseLine(name, 1, lines[0]));
  const steps = lines.slice(1).map((l, i) => parseStep(readerAt(name, i + 2), parseLine(name, i + 2, l)));
  return { header, steps };
}
