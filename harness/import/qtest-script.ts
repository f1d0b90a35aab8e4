/**
 * Reading qtest input, pure: text in, commands out. Three shapes are
 * accepted, detected per file: QEMU's -qtest-log (`[R +t] command`,
 * `[S +t] reply`, `[I t] OPENED`), plain qtest scripts as QEMU bug reports
 * carry them (often inside a shell here-document piped into QEMU), and C
 * reproducers in the manner of QEMU's tests/qtest/fuzz-*.c (qtest_* calls
 * and command strings). Each becomes the same list of commands with their
 * line numbers, the replies a log recorded, and the QEMU command line when
 * the input has one. Errors name the file and line and what was expected.
 */
import { InputError } from '../util/errors.ts';
import { bytesToHex, hex, hexToBytes } from '../util/hex.ts';

export type QtestFormat = 'log' | 'script' | 'c';

/** A qtest command as QEMU's system/qtest.c reads it. */
export type QtestCommand =
  /** inb … outl, readb … writeq: one access of `size` bytes; `value` for writes. */
  | { kind: 'access'; space: 'pio' | 'mmio'; addr: bigint; size: number; value?: bigint }
  /** write, b64write, memset: bytes written from `addr` on. */
  | { kind: 'write-bytes'; addr: bigint; data: Uint8Array }
  /** read, b64read: `len` bytes read from `addr` on; the reply comes in hex or base64. */
  | { kind: 'read-bytes'; addr: bigint; len: number; encoding: 'hex' | 'base64' }
  /** clock_step [NS]: null steps to the next timer deadline. */
  | { kind: 'clock-step'; ns: bigint | null }
  /** clock_set NS: the virtual clock to NS, if that is ahead. */
  | { kind: 'clock-set'; ns: bigint }
  /** A command isoroot has no operation for (irq_intercept_in, endianness, …; qtest_qmp in C). */
  | { kind: 'other'; name: string };

export interface Reply {
  line: number;
  text: string;
}

export interface Entry {
  line: number;
  /** The command as qtest reads it, for messages. */
  text: string;
  command: QtestCommand;
  /** From a log: what QEMU replied. */
  reply?: Reply;
}

/** The QEMU arguments found in the input (after the program name). */
export interface CommandLine {
  line: number;
  args: string[];
}

export interface QtestInput {
  format: QtestFormat;
  entries: Entry[];
  commandLine: CommandLine | null;
  /** "QEMU emulator version X" found anywhere in the text. */
  version: string | null;
  /** C reproducers: the function the commands come from. */
  function?: string;
  /** Log lines that are neither qtest entries nor comments (QEMU's own messages on the same stream). */
  otherLines: number;
}

const U64_MAX = (1n << 64n) - 1n;
/** The most bytes one write, memset or read command may cover. */
const MAX_BULK = 1 << 20;
const NO_OP = ['irq_intercept_in', 'irq_intercept_out', 'set_irq_in', 'endianness', 'module_load'];
const EXPECTED_COMMAND = 'a qtest command (outl PORT VALUE, inw PORT, writel ADDR VALUE, readq ADDR, write ADDR SIZE 0xDATA, memset ADDR SIZE VALUE, clock_step [NS], …)';
const SIZE_OF: Record<string, number> = { b: 1, w: 2, l: 4, q: 8 };

/** An unsigned integer as strtoul(…, 0) reads it: 0x hex, 0 octal or decimal; null if malformed. */
function parseQtestInt(s: string): bigint | null {
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) return BigInt('0x' + s.slice(2));
  if (/^0[0-7]*$/.test(s)) return BigInt('0o0' + s.slice(1));
  if (/^[1-9][0-9]*$/.test(s)) return BigInt(s);
  return null;
}

/** The arguments of one command line, checked against its usage. */
class Args {
  constructor(
    private readonly where: string,
    private readonly text: string,
    readonly usage: string,
    readonly words: string[],
  ) {}

  fail(why?: string): never {
    throw new InputError(this.where, `${this.usage}${why === undefined ? '' : `, ${why}`}, got "${this.text}"`);
  }

  count(min: number, max = min): void {
    if (this.words.length < min || this.words.length > max) this.fail();
  }

  int(i: number, max = U64_MAX): bigint {
    const name = this.usage.split(' ')[i + 1].replace(/[[\]]/g, '');
    const v = parseQtestInt(this.words[i]);
    if (v === null) this.fail(`${name} an integer (0x… hex, decimal or 0… octal)`);
    if (v > max) this.fail(`${name} at most ${hex(max)}`);
    return v;
  }
}

function base64Bytes(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  return Uint8Array.from(Buffer.from(s, 'base64'));
}

/** One qtest command line (without a trailing newline). */
function parseCommand(text: string, where: string): QtestCommand {
  const [name, ...words] = text.trim().split(/\s+/);
  const access = /^(in|out|read|write)([bwlq])$/.exec(name);
  if (access !== null && !(access[2] === 'q' && (access[1] === 'in' || access[1] === 'out'))) {
    const pio = access[1] === 'in' || access[1] === 'out';
    const write = access[1] === 'out' || access[1] === 'write';
    const size = SIZE_OF[access[2]];
    const a = new Args(where, text.trim(), `${name} ${pio ? 'PORT' : 'ADDR'}${write ? ' VALUE' : ''}`, words);
    a.count(write ? 2 : 1);
    const cmd: QtestCommand = { kind: 'access', space: pio ? 'pio' : 'mmio', addr: a.int(0), size };
    if (write) cmd.value = a.int(1, (1n << BigInt(8 * size)) - 1n);
    return cmd;
  }
  switch (name) {
    case 'read':
    case 'b64read': {
      const a = new Args(where, text.trim(), `${name} ADDR SIZE`, words);
      a.count(2);
      const len = Number(a.int(1, BigInt(MAX_BULK)));
      if (len === 0) a.fail('SIZE at least 1');
      return { kind: 'read-bytes', addr: a.int(0), len, encoding: name === 'read' ? 'hex' : 'base64' };
    }
    case 'write': {
      const a = new Args(where, text.trim(), 'write ADDR SIZE 0xDATA', words);
      a.count(3);
      const len = Number(a.int(1, BigInt(MAX_BULK)));
      const digits = /^0x([0-9a-fA-F]*)$/i.exec(words[2]);
      const given = digits === null ? null : hexToBytes(digits[1]);
      if (given === null || given.length === 0) return a.fail('DATA "0x" and an even number of hex digits');
      if (given.length > len) a.fail(`DATA at most SIZE (${len}) bytes`);
      // QEMU fills the bytes DATA leaves out with zeros.
      const data = new Uint8Array(len);
      data.set(given);
      return { kind: 'write-bytes', addr: a.int(0), data };
    }
    case 'b64write': {
      const a = new Args(where, text.trim(), 'b64write ADDR SIZE B64DATA', words);
      a.count(3);
      const len = Number(a.int(1, BigInt(MAX_BULK)));
      const data = base64Bytes(words[2]);
      if (data === null || data.length !== len) return a.fail(`B64DATA base64 for exactly SIZE (${len}) bytes`);
      return { kind: 'write-bytes', addr: a.int(0), data };
    }
    case 'memset': {
      const a = new Args(where, text.trim(), 'memset ADDR SIZE VALUE', words);
      a.count(3);
      const len = Number(a.int(1, BigInt(MAX_BULK)));
      return { kind: 'write-bytes', addr: a.int(0), data: new Uint8Array(len).fill(Number(a.int(2, 0xffn))) };
    }
    case 'clock_step': {
      const a = new Args(where, text.trim(), 'clock_step [NS]', words);
      a.count(0, 1);
      return { kind: 'clock-step', ns: words.length === 0 ? null : a.int(0) };
    }
    case 'clock_set': {
      const a = new Args(where, text.trim(), 'clock_set NS', words);
      a.count(1);
      return { kind: 'clock-set', ns: a.int(0) };
    }
  }
  if (NO_OP.includes(name)) return { kind: 'other', name };
  throw new InputError(where, `${EXPECTED_COMMAND}, got "${text.trim()}"`);
}

// ---- shell words: QEMU invocations and here-documents ------------------------------

interface Word {
  text: string;
  /** A shell operator (|, <<, >, ;, …), not a word. */
  op: boolean;
}

const OPERATOR = /^(<<-?|\|\||&&|>>|[0-9]?>|[|;&<])/;

/** Splits a shell line into words (quotes and backslashes removed) and operators. */
function shellWords(s: string): Word[] {
  const out: Word[] = [];
  let i = 0;
  while (i < s.length) {
    if (/\s/.test(s[i])) {
      i++;
      continue;
    }
    const op = OPERATOR.exec(s.slice(i));
    if (op !== null) {
      out.push({ text: op[1], op: true });
      i += op[1].length;
      continue;
    }
    let w = '';
    while (i < s.length && !/[\s|;&<>]/.test(s[i])) {
      const c = s[i];
      if (c === "'") {
        const end = s.indexOf("'", i + 1);
        w += s.slice(i + 1, end < 0 ? s.length : end);
        i = end < 0 ? s.length : end + 1;
      } else if (c === '"') {
        for (i++; i < s.length && s[i] !== '"'; i++) w += s[i] === '\\' && i + 1 < s.length ? s[++i] : s[i];
        i++;
      } else if (c === '\\' && i + 1 < s.length) {
        w += s[i + 1];
        i += 2;
      } else {
        w += c;
        i++;
      }
    }
    out.push({ text: w, op: false });
  }
  return out;
}

const isQemu = (w: Word): boolean => !w.op && /^(qemu-system-[A-Za-z0-9_]+|qemu-kvm)$/.test(w.text.split('/').pop() ?? '');

/** Whether words[i] starts a command: first on the line, after an operator, or after assignments or a `$` prompt. */
function startsCommand(words: Word[], i: number): boolean {
  for (let j = i - 1; j >= 0; j--) {
    if (words[j].op) return true;
    if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[j].text) && !(j === 0 && words[j].text === '$')) return false;
  }
  return true;
}

/**
 * A shell line: the QEMU arguments it runs (if any) and the here-document
 * it opens (if any); null for other lines. QEMU counts as run when it
 * starts a command: first on the line, after an operator (`|`), or after
 * variable assignments, so prose that mentions it is not a command line.
 */
function shellLine(text: string): { args: string[] | null; heredoc: string | null } | null {
  const words = shellWords(text);
  const q = words.findIndex((w, i) => isQemu(w) && startsCommand(words, i));
  const h = words.findIndex((w) => w.op && w.text.startsWith('<<'));
  if (q < 0 && h < 0) return null;
  let args: string[] | null = null;
  if (q >= 0) {
    const end = words.findIndex((w, i) => i > q && w.op);
    args = words.slice(q + 1, end < 0 ? words.length : end).map((w) => w.text);
  }
  const delimiter = h >= 0 ? words[h + 1] : undefined;
  return { args, heredoc: delimiter !== undefined && !delimiter.op ? delimiter.text : null };
}

/** Keeps the first QEMU command line; a second one is an error. */
class CommandLineSlot {
  value: CommandLine | null = null;
  constructor(private readonly file: string) {}
  set(line: number, args: string[]): void {
    if (this.value !== null) throw new InputError(`${this.file}:${line}`, `one QEMU command line per input (the first is at line ${this.value.line})`);
    this.value = { line, args };
  }
}

/** Physical lines joined where they end in a backslash, with the number of the first. */
function logicalLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let t = lines[i];
    while (/(^|[^\\])(\\\\)*\\$/.test(t) && i + 1 < lines.length) t = t.slice(0, -1) + lines[++i];
    out.push({ line: start + 1, text: t });
  }
  return out;
}

// ---- the three formats --------------------------------------------------------------

const LOG_ENTRY = /^\[([RSI]) \+?[0-9]+(?:\.[0-9]*)?\] ?(.*)$/;
const NOTICE = /^(IRQ (raise|lower) [0-9]+|b64write: .*)$/;
const REPLY = /^(OK|FAIL|ERR)( .*)?$/;

function readLog(text: string, file: string): Pick<QtestInput, 'entries' | 'commandLine' | 'otherLines'> {
  const entries: Entry[] = [];
  const cl = new CommandLineSlot(file);
  let pending: Entry | null = null;
  let otherLines = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const t = raw.trim();
    const m = LOG_ENTRY.exec(t);
    if (m === null) {
      const comment = t.startsWith('#');
      const sh = t === '' ? null : shellLine(comment ? t.slice(1) : t);
      if (sh !== null && sh.args !== null) cl.set(line, sh.args);
      else if (t !== '' && !comment) otherLines++;
      return;
    }
    const [, kind, rest] = m;
    if (kind === 'R') {
      pending = { line, text: rest.trim(), command: parseCommand(rest, `${file}:${line}`) };
      entries.push(pending);
    } else if (kind === 'S') {
      if (NOTICE.test(rest)) return;
      if (!REPLY.test(rest)) throw new InputError(`${file}:${line}`, `a reply (OK …, FAIL …, ERR …) or an IRQ notice, got "${rest}"`);
      if (pending === null) throw new InputError(`${file}:${line}`, `a command ([R …] line) before this reply "${rest}"`);
      pending.reply = { line, text: rest };
      pending = null;
    }
  });
  return { entries, commandLine: cl.value, otherLines };
}

function readScript(text: string, file: string): Pick<QtestInput, 'entries' | 'commandLine'> {
  const entries: Entry[] = [];
  const cl = new CommandLineSlot(file);
  const delimiters = new Set<string>();
  for (const { line, text: raw } of logicalLines(text)) {
    const t = raw.trim();
    if (t === '' || delimiters.has(t)) continue;
    const comment = t.startsWith('#');
    const sh = shellLine(comment ? t.slice(1) : t);
    if (sh !== null && sh.args !== null) cl.set(line, sh.args);
    if (sh !== null && sh.heredoc !== null) delimiters.add(sh.heredoc);
    if (comment || sh !== null) continue;
    entries.push({ line, text: t, command: parseCommand(t, `${file}:${line}`) });
  }
  return { entries, commandLine: cl.value };
}

// ---- C reproducers ----------------------------------------------------------------

interface CToken {
  kind: 'id' | 'num' | 'str' | 'punct';
  /** The source text (for str: the decoded bytes are in `bytes`). */
  text: string;
  line: number;
  bytes?: number[];
  /** str: where each adjacent literal starts in `bytes`, and its line. */
  parts?: { at: number; line: number }[];
}

/** A sticky regex matched at text[i], without copying the rest of the text. */
const at = (re: RegExp, text: string, i: number): RegExpExecArray | null => {
  re.lastIndex = i;
  return re.exec(text);
};
const HEX_DIGITS = /[0-9a-fA-F]+/y;
const OCT_DIGITS = /[0-7]{1,3}/y;
const CHAR_LITERAL = /'(\\.|[^'\\])*'/y;
const C_WORD = /[A-Za-z_][A-Za-z0-9_]*|[0-9][A-Za-z0-9_.]*/y;

const C_ESCAPES: Record<string, number> = { n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11, '\\': 92, "'": 39, '"': 34, '?': 63 };

/** Decodes the C string literal starting at text[i] (the opening quote); returns its bytes and where it ends. */
function cString(text: string, i: number, where: () => string): { bytes: number[]; end: number } {
  const bytes: number[] = [];
  let j = i + 1;
  while (j < text.length && text[j] !== '"') {
    const c = text[j];
    if (c === '\n') break;
    if (c !== '\\') {
      const ch = String.fromCodePoint(text.codePointAt(j)!);
      bytes.push(...Buffer.from(ch, 'utf8'));
      j += ch.length;
      continue;
    }
    const e = text[j + 1];
    const hexEsc = e === 'x' ? at(HEX_DIGITS, text, j + 2) : null;
    const octEsc = at(OCT_DIGITS, text, j + 1);
    if (hexEsc !== null) {
      const v = parseInt(hexEsc[0], 16);
      if (v > 0xff) throw new InputError(where(), `a \\x escape of at most 0xff, got "\\x${hexEsc[0]}"`);
      bytes.push(v);
      j += 2 + hexEsc[0].length;
    } else if (octEsc !== null) {
      bytes.push(parseInt(octEsc[0], 8) & 0xff);
      j += 1 + octEsc[0].length;
    } else {
      bytes.push(C_ESCAPES[e] ?? e.charCodeAt(0));
      j += 2;
    }
  }
  if (text[j] !== '"') throw new InputError(where(), 'a string literal closed on the same line');
  return { bytes, end: j + 1 };
}

/** C tokens, comments and preprocessor lines left out, adjacent string literals joined. */
function cTokens(text: string, file: string): CToken[] {
  const out: CToken[] = [];
  let line = 1;
  let lineStart = true;
  let i = 0;
  const newlines = (from: number, to: number): number => text.slice(from, to).split('\n').length - 1;
  while (i < text.length) {
    const c = text[i];
    if (c === '\n') {
      line++;
      lineStart = true;
      i++;
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '#' && lineStart) {
      let j = i;
      while (j < text.length && !(text[j] === '\n' && text[j - 1] !== '\\')) j++;
      line += newlines(i, j);
      i = j;
      continue;
    }
    lineStart = false;
    if (text.startsWith('//', i)) {
      const j = text.indexOf('\n', i);
      i = j < 0 ? text.length : j;
      continue;
    }
    if (text.startsWith('/*', i)) {
      const j = text.indexOf('*/', i + 2);
      if (j < 0) throw new InputError(`${file}:${line}`, 'a comment closed with */');
      line += newlines(i, j);
      i = j + 2;
      continue;
    }
    const start = i;
    if (c === '"') {
      const s = cString(text, i, () => `${file}:${line}`);
      i = s.end;
      const prev = out[out.length - 1];
      if (prev?.kind === 'str') {
        prev.parts!.push({ at: prev.bytes!.length, line });
        prev.bytes!.push(...s.bytes);
        prev.text += ' ' + text.slice(start, i);
      } else out.push({ kind: 'str', text: text.slice(start, i), line, bytes: s.bytes, parts: [{ at: 0, line }] });
      continue;
    }
    if (c === "'") {
      const m = at(CHAR_LITERAL, text, i);
      i += m === null ? 1 : m[0].length;
      out.push({ kind: 'num', text: text.slice(start, i), line });
      continue;
    }
    const word = at(C_WORD, text, i);
    if (word !== null) {
      i += word[0].length;
      out.push({ kind: /^[0-9]/.test(word[0]) ? 'num' : 'id', text: word[0], line });
      continue;
    }
    out.push({ kind: 'punct', text: c, line });
    i++;
  }
  return out;
}

/** The arguments of the call whose "(" is at tokens[open], split at top-level commas. */
function callArgs(tokens: CToken[], open: number): CToken[][] {
  const args: CToken[][] = [[]];
  let depth = 0;
  for (let i = open + 1; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind === 'punct' && '([{'.includes(t.text)) depth++;
    if (t.kind === 'punct' && ')]}'.includes(t.text)) {
      if (depth === 0) return args.length === 1 && args[0].length === 0 ? [] : args;
      depth--;
    }
    if (depth === 0 && t.kind === 'punct' && t.text === ',') args.push([]);
    else args[args.length - 1].push(t);
  }
  return args;
}

/** Calls that start QEMU; the first argument is (the format of) its command line. */
const C_INIT = ['qtest_init', 'qtest_initf', 'qtest_start', 'qtest_init_without_qmp_handshake'];
/** Calls that end a session or only query the harness: neither commands nor skipped. */
const C_QUIET = ['qtest_quit', 'qtest_get_arch', 'qtest_has_device', 'qtest_has_machine', 'qtest_add_func', 'qtest_add_data_func'];
const C_CONTROL = ['if', 'while', 'for', 'switch', 'return', 'sizeof'];

/** How a libqtest call reads as a qtest command: the command and which arguments go where. */
type CArg = { int: number } | { data: number; size: number };
const LIBQTEST: Record<string, { cmd: string; args: CArg[] }> = {
  qtest_memread: { cmd: 'read', args: [{ int: 1 }, { int: 3 }] },
  qtest_bufread: { cmd: 'read', args: [{ int: 1 }, { int: 3 }] },
  qtest_memwrite: { cmd: 'write', args: [{ int: 1 }, { int: 3 }, { data: 2, size: 3 }] },
  qtest_bufwrite: { cmd: 'write', args: [{ int: 1 }, { int: 3 }, { data: 2, size: 3 }] },
  qtest_memset: { cmd: 'memset', args: [{ int: 1 }, { int: 3 }, { int: 2 }] },
  qtest_clock_step: { cmd: 'clock_step', args: [{ int: 1 }] },
  qtest_clock_step_next: { cmd: 'clock_step', args: [] },
  qtest_clock_set: { cmd: 'clock_set', args: [{ int: 1 }] },
};
for (const s of ['b', 'w', 'l']) {
  LIBQTEST[`qtest_in${s}`] = { cmd: `in${s}`, args: [{ int: 1 }] };
  LIBQTEST[`qtest_out${s}`] = { cmd: `out${s}`, args: [{ int: 1 }, { int: 2 }] };
}
for (const s of ['b', 'w', 'l', 'q']) {
  LIBQTEST[`qtest_read${s}`] = { cmd: `read${s}`, args: [{ int: 1 }] };
  LIBQTEST[`qtest_write${s}`] = { cmd: `write${s}`, args: [{ int: 1 }, { int: 2 }] };
}
const arity = (spec: { args: CArg[] }): number => 1 + Math.max(0, ...spec.args.map((a) => ('int' in a ? a.int : Math.max(a.data, a.size))));

const cInt = (a: CToken[]): bigint | null => {
  const m = a.length === 1 && a[0].kind === 'num' ? /^(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*$/.exec(a[0].text) : null;
  return m === null ? null : parseQtestInt(m[1]);
};
const showCall = (name: string, args: CToken[][]): string => `${name}(${args.map((a) => a.map((t) => t.text).join(' ')).join(', ')})`;

/** The qtest command a libqtest call sends, as text. */
function libqtestCommand(name: string, args: CToken[][], where: string): string {
  const spec = LIBQTEST[name];
  const expect = (what: string): never => {
    throw new InputError(where, `${name} with ${what}, got ${showCall(name, args)}`);
  };
  if (args.length !== arity(spec)) expect(`${arity(spec)} arguments`);
  const words = spec.args.map((a) => {
    if ('int' in a) {
      const v = cInt(args[a.int]);
      return v === null ? expect(`an integer literal as argument ${a.int + 1}`) : hex(v);
    }
    const s = args[a.data];
    const size = cInt(args[a.size]);
    // The literal's bytes and its terminating NUL are what the call reads.
    const bytes = s.length === 1 && s[0].kind === 'str' ? [...s[0].bytes!, 0] : null;
    if (bytes === null) return expect(`a string literal holding the data as argument ${a.data + 1}`);
    if (size === null || size > BigInt(bytes.length)) return expect(`a size literal of at most the string's ${bytes.length} bytes`);
    return '0x' + bytesToHex(Uint8Array.from(bytes.slice(0, Number(size))));
  });
  return [spec.cmd, ...words].join(' ');
}

interface CUnit {
  entries: Entry[];
  inits: CommandLine[];
}

/** The commands of a C reproducer, per function, and the QEMU command lines its qtest_init calls give. */
function cUnits(text: string, file: string): Map<string, CUnit> {
  const tokens = cTokens(text, file);
  const units = new Map<string, CUnit>();
  const unit = (name: string): CUnit => units.get(name) ?? (units.set(name, { entries: [], inits: [] }), units.get(name)!);
  let braces = 0;
  let fn = '(file scope)';
  let candidate = fn;
  /** Enclosing parentheses: the call they belong to, or null. */
  const calls: (string | null)[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const where = `${file}:${t.line}`;
    if (t.kind === 'punct') {
      // A function body opens right after its parameter list.
      if (t.text === '{' && braces++ === 0) fn = tokens[i - 1]?.text === ')' ? candidate : '(file scope)';
      if (t.text === '}' && --braces === 0) fn = '(file scope)';
      if (t.text === '(') calls.push(tokens[i - 1]?.kind === 'id' && !C_CONTROL.includes(tokens[i - 1].text) ? tokens[i - 1].text : null);
      if (t.text === ')') calls.pop();
      continue;
    }
    if (t.kind === 'str') {
      // A string that ends in a newline, outside any call or passed to a qtest_* call of no known
      // meaning (not QMP or HMP), is qtest script.
      const call = calls.findLast((c) => c !== null) ?? null;
      const text = Buffer.from(t.bytes!).toString('latin1');
      const script = call === null || (call.startsWith('qtest_') && !C_INIT.includes(call) && !(call in LIBQTEST) && !/[qh]mp/.test(call));
      if (!text.endsWith('\n') || !script) continue;
      let offset = 0;
      for (const cmd of text.slice(0, -1).split('\n')) {
        const line = t.parts!.findLast((p) => p.at <= offset)!.line;
        offset += cmd.length + 1;
        if (cmd.trim() !== '') unit(fn).entries.push({ line, text: cmd.trim(), command: parseCommand(cmd, `${file}:${line}`) });
      }
      continue;
    }
    if (t.kind !== 'id' || tokens[i + 1]?.text !== '(') continue;
    if (braces === 0) candidate = t.text;
    if (!t.text.startsWith('qtest_') || C_QUIET.includes(t.text)) continue;
    const args = callArgs(tokens, i + 1);
    if (C_INIT.includes(t.text)) {
      const format = args[0]?.find((a) => a.kind === 'str');
      if (format === undefined) throw new InputError(where, `${t.text} with a string literal for the QEMU command line, got ${showCall(t.text, args)}`);
      unit(fn).inits.push({ line: t.line, args: shellWords(Buffer.from(format.bytes!).toString('latin1')).map((w) => w.text) });
    } else if (t.text in LIBQTEST) {
      const cmd = libqtestCommand(t.text, args, where);
      unit(fn).entries.push({ line: t.line, text: cmd, command: parseCommand(cmd, where) });
    } else if (args[0]?.length === 1 && args[0][0].kind === 'id') {
      // Any other call on a QTestState (qtest_qmp, qtest_irq_intercept_in, …) has no isoroot operation.
      unit(fn).entries.push({ line: t.line, text: showCall(t.text, args), command: { kind: 'other', name: t.text } });
    }
  }
  return units;
}

function readC(text: string, file: string, only: string | undefined): Pick<QtestInput, 'entries' | 'commandLine' | 'function'> {
  const units = cUnits(text, file);
  const withCommands = [...units].filter(([, u]) => u.entries.length > 0);
  const list = (): string => withCommands.map(([n, u]) => `${n} (line ${u.entries[0].line})`).join(', ');
  let chosen: [string, CUnit];
  if (only !== undefined) {
    const u = units.get(only);
    if (u === undefined) throw new InputError(file, `a function "${only}" with qtest commands; the functions with them: ${list() || 'none'}`);
    chosen = [only, u];
  } else if (withCommands.length === 1) chosen = withCommands[0];
  else if (withCommands.length === 0) return { entries: [], commandLine: null };
  else throw new InputError(file, `one reproducer per trace: ${withCommands.length} functions have qtest commands (${list()}); choose one with --function NAME`);
  const [name, u] = chosen;
  if (u.inits.length > 1) throw new InputError(`${file}:${u.inits[1].line}`, `one QEMU session in ${name} (it starts another at line ${u.inits[0].line})`);
  // A function that does not start QEMU itself runs in the file's only session, if there is one.
  const all = [...units.values()].flatMap((x) => x.inits);
  return { entries: u.entries, commandLine: u.inits[0] ?? (all.length === 1 ? all[0] : null), function: name };
}

// ---- entry point ------------------------------------------------------------------

function detectFormat(text: string, file: string): QtestFormat {
  if (text.split(/\r?\n/).some((l) => LOG_ENTRY.test(l.trim()))) return 'log';
  return /\.[ch]$/.test(file) || /\bqtest_[a-z0-9_]+\s*\(/.test(text) ? 'c' : 'script';
}

/** Reads qtest input of any of the three formats; `only` picks a function of a C reproducer. */
export function readQtest(text: string, file: string, only?: string): QtestInput {
  const format = detectFormat(text, file);
  const version = /QEMU emulator version (\S+)/.exec(text)?.[1] ?? null;
  if (only !== undefined && format !== 'c') throw new InputError(file, `--function picks a function of a C reproducer, but this is a qtest ${format}`);
  if (format === 'log') return { format, version, ...readLog(text, file) };
  if (format === 'script') return { format, version, otherLines: 0, ...readScript(text, file) };
  return { format, version, otherLines: 0, ...readC(text, file, only) };
}
