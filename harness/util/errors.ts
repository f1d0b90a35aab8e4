/**
 * Errors raised at the edges (trace files, topology files, the target
 * protocol, CLI arguments). Each says where and what was expected, so the
 * CLI can print it and exit 2 without a stack trace.
 */
export class InputError extends Error {
  constructor(
    readonly where: string,
    readonly expected: string,
  ) {
    super(`${where}: ${expected}`);
    this.name = 'InputError';
  }
}

/** Location of a value inside a JSON document, e.g. `roots[1].devices[0].bars`. */
export type JsonPath = string;

export const at = (path: JsonPath, key: string | number): JsonPath =>
  typeof key === 'number' ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;
