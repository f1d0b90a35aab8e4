/**
 * Well-formed UTF-8 (RFC 3629), for the JSON text VERSION carries.
 */


/** The first byte of bytes[from, to) that is not well-formed UTF-8 (RFC 3629), or -1. */
export function badUtf8(b: Uint8Array, from: number, to: number): number {
  let i = from;
  while (i < to) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0; // no overlong forms
      if (c === 0xed) hi = 0x9f; // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f; // nothing past U+10FFFF
    } else return i;
    if (i + n >= to) return i; // a sequence cut short
    if (b[i + 1] < lo || b[i + 1] > hi) return i + 1;
    for (let k = 2; k <= n; k++) if (b[i + k] < 0x80 || b[i + k] > 0xbf) return i + k;
    i += n + 1;
  }
  return -1;
}
