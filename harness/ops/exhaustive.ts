/**
 * The end of every dispatch on an operation's kind. A switch on `op.op`
 * has one case per kind and no default; after it, `op` is `never` only
 * when every kind was handled, so a kind added to the catalog does not
 * compile until each dispatch handles it or declares it unsupported.
 */
export function unhandled(op: never): never {
  throw new Error(`an operation kind no case handles: ${JSON.stringify(op)}`);
}
