/** Reads a topology JSON file given on the command line, with errors that name the file. */
import { readFile } from 'node:fs/promises';
import { InputError } from '../util/errors.ts';
import { parseTopology } from '../topology/validate.ts';
import type { Topology } from '../topology/types.ts';

export async function readTopologyFile(file: string): Promise<Topology> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new InputError(file, 'a readable topology file (JSON)');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(file, `valid JSON (${(e as Error).message})`);
  }
  return parseTopology(json, (path) => `${file}: ${path}`);
}
