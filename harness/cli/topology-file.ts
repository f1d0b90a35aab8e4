/** Reads a topology JSON file given on the command line, with errors that name the file. */
import { readFile } from 'node:fs/promises';
import { InputError } from '../util/errors.ts';
import { parseTopology } from '../topology/validate.ts';
import type { Topology } from '../topology/types.ts';
import { prepareForChoice, type TargetChoice } from '../adapters/select.ts';

/** The topology in `file`, as the chosen target builds it (see Target.prepare). */
export async function readTopologyFile(file: string, choice?: TargetChoice): Promise<Topology> {
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
  const t = parseTopology(json, (path) => `${file}: ${path}`);
  if (choice === undefined) return t;
  try {
    return prepareForChoice(choice, t);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(`${file}: ${e.where}`, e.expected);
    throw e;
  }
}
