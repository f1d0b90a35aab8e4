/** Writes that a crash cannot leave half done: a temporary file, then a rename. */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function writeFileAtomic(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export const writeJsonAtomic = (file: string, v: unknown): void => writeFileAtomic(file, JSON.stringify(v, null, 2) + '\n');
