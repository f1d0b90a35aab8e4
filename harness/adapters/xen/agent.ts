/**
 * The process boundary to Xen's own vPCI code: xen-vpci-agent (the Xen
 * objects, isoroot's shim and harness/adapters/xen/shim/agent.c, linked by
 * scripts/build-xen-vpci.sh into a build folder outside the repository)
 * speaks a line protocol on stdin/stdout, the way QEMU's qtest does for the
 * QEMU target: one command per line, exactly one reply per command ("OK
 * [fields]" or "ERR <reason>"), in order, so commands are pipelined: a batch
 * is written at once and its replies read afterwards. A failed Xen
 * assertion replaces the reply with "CRASH <message>" and the agent exits
 * with status 3. agent.c's header documents every command; the builders in
 * `X` write them and parse their replies strictly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { killGroup, track } from '../../util/children.ts';
import { LineQueue } from '../../util/line-queue.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const SHIM = join(ROOT, 'harness', 'adapters', 'xen', 'shim');
const BUILD_SCRIPT = join(ROOT, 'scripts', 'build-xen-vpci.sh');
const XEN_SOURCE = join(ROOT, 'scripts', 'xen-source.sh');
export const AGENT_NAME = 'xen-vpci-agent';
const STDERR_TAIL = 64 * 1024;

// ---- Finding or building the agent ------------------------------------------

/** The Xen tree to build from, without fetching anything: `xenSrc`, else ISOROOT_XEN_SRC, else the tree in the cache (scripts/xen-source.sh --no-fetch). */
export function findXenTree(xenSrc = process.env.ISOROOT_XEN_SRC): { tree: string } | { why: string } {
  const r = spawnSync('bash', [XEN_SOURCE, '--no-fetch', ...(xenSrc ? ['--xen-src', xenSrc] : [])], { encoding: 'utf8' });
  const tree = r.stdout?.trim().split('\n').pop() ?? '';
  if (r.status === 0 && tree !== '') return { tree };
  return { why: (r.stderr || r.error?.message || `exit status ${r.status}`).trim().replace(/^xen-source: error: /, '') };
}

/** The Xen version a tree's xen/Makefile gives (XEN_VERSION.XEN_SUBVERSION + XEN_EXTRAVERSION), as the build script reads it. */
export function xenVersion(tree: string): string {
  const mk = readFileSync(join(tree, 'xen', 'Makefile'), 'utf8');
  const v = (name: string): string => new RegExp(`^export ${name}\\s*\\??=\\s*([^$\\s]*)`, 'm').exec(mk)?.[1] ?? '';
  const major = v('XEN_VERSION');
  const minor = v('XEN_SUBVERSION');
  if (!/^\d+$/.test(major) || !/^\d+$/.test(minor)) throw new Error(`cannot read the Xen version from ${join(tree, 'xen', 'Makefile')}`);
  return `${major}.${minor}${v('XEN_EXTRAVERSION')}`;
}

/** The build script's default folder for a version: ~/.cache/isoroot/xen-build/<version>. */
export const xenBuildDir = (version: string): string => join(homedir(), '.cache', 'isoroot', 'xen-build', version);

/** Newest modification time of what the agent is built from: the shim's sources and the build script. */
function sourcesMtime(): number {
  const files = [BUILD_SCRIPT, ...readdirSync(SHIM).filter((f) => /\.[ch]$/.test(f)).map((f) => join(SHIM, f))];
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

export class XenAgentBuildError extends Error {
  override name = 'XenAgentBuildError';
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

export interface EnsureOptions {
  /** The Xen tree (default: findXenTree()). */
  tree?: string;
  /** The build folder (default: xenBuildDir(version of the tree)). */
  out?: string;
  /** For the build script (default 300 s). */
  timeoutMs?: number;
}

/**
 * The agent binary's path, built first when it is missing or older than the
 * shim's sources or the build script. The build runs into a fresh folder
 * beside `out` and its products are renamed into place, so that concurrent
 * callers (test workers) never see a half-written binary.
 */
export async function ensureXenAgent(opts: EnsureOptions = {}): Promise<string> {
  let tree = opts.tree;
  if (tree === undefined) {
    const found = findXenTree();
    if ('why' in found) throw new XenAgentBuildError(`no Xen tree to build ${AGENT_NAME} from: ${found.why}`, '');
    tree = found.tree;
  }
  const out = opts.out ?? xenBuildDir(xenVersion(tree));
  const binary = join(out, AGENT_NAME);
  if (existsSync(binary) && statSync(binary).mtimeMs >= sourcesMtime()) return binary;

  mkdirSync(out, { recursive: true });
  const tmp = mkdtempSync(`${out}.building-`);
  try {
    const timeoutMs = opts.timeoutMs ?? 300_000;
    const r = await new Promise<{ code: number | null; signal: string | null; output: string }>((resolve, reject) => {
      const p = spawn('bash', [BUILD_SCRIPT, tree, tmp], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      track(p);
      let output = '';
      const keep = (b: Buffer): void => {
        output = (output + b.toString('utf8')).slice(-STDERR_TAIL);
      };
      p.stdout!.on('data', keep);
      p.stderr!.on('data', keep);
      const timer = setTimeout(() => killGroup(p), timeoutMs);
      p.once('error', (e) => {
        clearTimeout(timer);
        reject(new XenAgentBuildError(`could not run ${BUILD_SCRIPT}: ${e.message}`, output));
      });
      p.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, output });
      });
    });
    if (r.signal !== null) throw new XenAgentBuildError(`${BUILD_SCRIPT} did not finish within ${timeoutMs} ms (${r.signal})`, r.output);
    if (r.code !== 0) throw new XenAgentBuildError(`${BUILD_SCRIPT} ${tree} ${tmp} failed with status ${r.code} (2: the build; 1: the shim's self-test)`, r.output);
    if (!existsSync(join(tmp, AGENT_NAME))) throw new XenAgentBuildError(`${BUILD_SCRIPT} succeeded but wrote no ${AGENT_NAME}`, r.output);
    for (const f of ['xen-vpci-selftest', 'manifest.json', AGENT_NAME]) if (existsSync(join(tmp, f))) renameSync(join(tmp, f), join(out, f));
    return binary;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- Commands and their replies -----------------------------------------------

/** A command line and the strict parser of its OK reply (throws a ReplyMismatch otherwise). */
export interface Cmd<T> {
  readonly text: string;
  parse(line: string): T;
}

/** A reply that is not what its command gives: raised by parsers, reported as a protocol error. */
class ReplyMismatch extends Error {}

export type Sbdf = string;
export type DomainKind = 'hwdom' | 'guest';
/** Where a memory or port access went (agent.c: `<where>`); bar 6 is the expansion ROM. */
export type Where =
  | { kind: 'bar'; sbdf: Sbdf; bar: number; offset: number }
  | { kind: 'vpci-mmio' }
  | { kind: 'mmcfg' }
  | { kind: 'cf8'; over?: number }
  | { kind: 'ioreq'; server: number }
  | { kind: 'unclaimed' }
  | { kind: 'ram' }
  | { kind: 'no-decode'; mfn?: number }
  | { kind: 'unmapped' };
/** An MSI or MSI-X message a device sent during a write, as Xen's vPCI state gives it (agent.c `irq=`). */
export interface AgentIrq {
  kind: 'msi' | 'msix';
  sbdf: Sbdf;
  vector: number;
  addr: number;
  data: number;
}
export interface P2mRun {
  gfn: number;
  mfn: number;
  nr: number;
}
export interface P2mRequest extends P2mRun {
  op: 'map' | 'unmap' | 'remove-identity';
  done: number;
  rc: number;
}
export interface EndpointSpec {
  /** BAR0 size in bytes: a power of two, 16 to 2 GiB (32-bit memory). */
  bar0: number;
  /** MSI vectors (1..32, a power of two); none: no MSI capability. */
  msi?: number;
  /** Vendor and device ID (default 1b36:1100, the model's endpoint). */
  id?: [number, number];
}
/** A device the agent added: its uid, where firmware put each BAR, and its MSI-X table (offset 0 of a BAR) and PBA. */
export interface Added {
  uid: number;
  bars: Record<number, number>;
  msix?: { bar: number; pba: number };
}
export type Knob = 'p2m_partial' | 'p2m_error' | 'preempt_every' | 'bar_outside_hole' | 'trace';

const hx = (n: number | bigint): string => (n < 0 ? '-0x' + (-BigInt(n)).toString(16) : '0x' + n.toString(16));
const HEX = '0x[0-9a-f]+';
const WHERE = `(\\S+) bar(\\d) \\+(${HEX})|vpci-mmio|mmcfg|cf8 over ioreq:(\\d+)|cf8|ioreq:(\\d+)|unclaimed|ram|(?:mfn:(${HEX}) )?no-decode|unmapped`;
/** The groups WHERE captures, its own included: what follows it in a reply is group 1 + WHERE_GROUPS. */
const WHERE_GROUPS = 7;
const IRQS = `((?: irq=msix?:[0-9a-f:.]+:\\d+:${HEX}:${HEX})*)`;

function irqsOf(text: string): AgentIrq[] {
  return text
    .trim()
    .split(' ')
    .filter((x) => x !== '')
    .map((x) => {
      const [kind, seg, bus, devfn, vector, addr, data] = x.slice(4).split(':');
      return { kind: kind as AgentIrq['kind'], sbdf: `${seg}:${bus}:${devfn}`, vector: Number(vector), addr: Number(addr), data: Number(data) };
    });
}

function match(re: RegExp, line: string, want: string): RegExpExecArray {
  const m = re.exec(line);
  if (m === null) throw new ReplyMismatch(`expected "${want}"`);
  return m;
}

function where(m: RegExpExecArray, at: number): Where {
  const [all, sbdf, bar, off, over, server, mfn] = m.slice(at, at + WHERE_GROUPS);
  if (sbdf !== undefined) return { kind: 'bar', sbdf, bar: Number(bar), offset: Number(off) };
  if (mfn !== undefined) return { kind: 'no-decode', mfn: Number(mfn) };
  if (over !== undefined) return { kind: 'cf8', over: Number(over) };
  if (server !== undefined) return { kind: 'ioreq', server: Number(server) };
  if (all === 'vpci-mmio' || all === 'mmcfg' || all === 'cf8' || all === 'unclaimed' || all === 'ram' || all === 'no-decode') return { kind: all };
  return { kind: 'unmapped' };
}

const rcReply = (text: string): Cmd<number> => ({
  text,
  parse: (l) => Number(match(/^OK (-?\d+)$/, l, 'OK <rc>')[1]),
});

const ok = (text: string): Cmd<void> => ({
  text,
  parse: (l) => void match(/^OK$/, l, 'OK'),
});

/** Command builders (agent.c's header is the reference). */
/** Xen's rc, and where a guest sees the device (its virtual SBDF). */
export interface Placed {
  rc: number;
  vsbdf?: Sbdf;
}

/** "OK <rc> [vsbdf=<sbdf>]"; `withRc0`: a guest's assignment names the virtual SBDF whenever rc is 0. */
const placedReply = (text: string, withRc0: boolean): Cmd<Placed> => ({
  text,
  parse: (l) => {
    const m = match(/^OK (-?\d+)(?: vsbdf=([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]))?$/, l, 'OK <rc> [vsbdf=<sbdf>]');
    const rc = Number(m[1]);
    if (withRc0 && rc === 0 && m[2] === undefined) throw new ReplyMismatch('expected "vsbdf=<sbdf>" with rc 0');
    return m[2] === undefined ? { rc } : { rc, vsbdf: m[2] };
  },
});

export const X = {
  /** ram: bytes of RAM from address 0 (whole pages; the hardware domain's is the host's e820 RAM). */
  domainNew: (kind: DomainKind, ram?: number): Cmd<number> => ({
    text: `domain new ${kind}${ram === undefined ? '' : ` ram=${hx(ram)}`}`,
    parse: (l) => Number(match(/^OK (\d+)$/, l, 'OK <domid>')[1]),
  }),
  /** A guest's reboot (agent.c `domain reset`): its devices leave and are reset, its ioreq servers, p2m and RAM go; the domain is then empty. */
  domainReset: (domid: number): Cmd<void> => ok(`domain reset ${domid}`),
  /** The ioreq servers of `count` emulators on `domid`, created and enabled in order (ids 0 to count - 1 on a domain that has none). */
  ioreqServers: (domid: number, count: number): Cmd<unknown>[] =>
    Array.from({ length: count }, (_, i) => [X.ioreqCreate(domid), X.ioreqState(domid, i, true)]).flat(),
  devAdd: (domid: number, sbdf: Sbdf, e: EndpointSpec): Cmd<Added & { bar0: number }> => {
    const c = X.devAddRaw(domid, sbdf, [`bar0=${hx(e.bar0)}`, e.msi !== undefined ? `msi=${e.msi}` : '', e.id ? `id=${hx(e.id[0])}:${hx(e.id[1])}` : ''].filter((s) => s !== '').join(' '));
    return {
      text: c.text,
      parse: (l) => {
        const a = c.parse(l);
        if (a.bars[0] === undefined) throw new ReplyMismatch('expected "bar0=<address>"');
        return { ...a, bar0: a.bars[0] };
      },
    };
  },
  /** An endpoint described in the agent's own words (`bar<N>=<size>[,mem32|mem64|io][,pref] msi=<n> msix=<n>[@bar<N>] id=<v>:<d>`). */
  devAddRaw: (domid: number, sbdf: Sbdf, description: string): Cmd<Added> => ({
    text: `dev add ${domid} ${sbdf} endpoint ${description}`,
    parse: (l) => {
      const m = match(new RegExp(`^OK uid=(\\d+)((?: bar\\d=${HEX})*)(?: msix=bar(\\d)\\+0x0,pba\\+(${HEX}))?$`), l, 'OK uid=<n> bar<N>=<address>... [msix=bar<N>+0x0,pba+<offset>]');
      const bars: Record<number, number> = {};
      for (const b of m[2].trim().split(' ').filter((x) => x !== '')) bars[Number(b[3])] = Number(b.slice(5));
      return { uid: Number(m[1]), bars, ...(m[3] !== undefined ? { msix: { bar: Number(m[3]), pba: Number(m[4]) } } : {}) };
    },
  }),
  /** Xen's rc (0: vPCI set up); a guest's virtual SBDF is in the reply too (see devAssignGuest). */
  devAssign: (domid: number, sbdf: Sbdf): Cmd<number> => ({
    text: `dev assign ${domid} ${sbdf}`,
    parse: (l) => Number(match(/^OK (-?\d+)(?: vsbdf=\S+)?$/, l, 'OK <rc> [vsbdf=<sbdf>]')[1]),
  }),
  /** Passes a host device through to a guest (Xen 4.21 and later): Xen's rc and, when it is 0, the virtual SBDF the guest sees the device at (its config accesses use it). */
  devAssignGuest: (domid: number, sbdf: Sbdf): Cmd<Placed> => placedReply(`dev assign ${domid} ${sbdf}`, true),
  devDeassign: (domid: number, sbdf: Sbdf): Cmd<void> => ok(`dev deassign ${domid} ${sbdf}`),
  /**
   * The hardware domain resets a device of `domid` as xen-pciback does (a function-level reset, then
   * PHYSDEVOP_pci_device_reset): rc is the hypercall's (-38 on 4.17, which has none); vsbdf where a guest sees the device after.
   */
  devReset: (domid: number, sbdf: Sbdf): Cmd<Placed> => placedReply(`dev reset ${domid} ${sbdf}`, false),
  /** rejected: Xen refused the access (the value is then all ones). */
  cfgRead: (domid: number, sbdf: Sbdf, reg: number, size: number): Cmd<{ value: bigint; rejected: boolean }> => ({
    text: `cfg read ${domid} ${sbdf} ${hx(reg)} ${size}`,
    parse: (l) => {
      const m = match(new RegExp(`^OK (${HEX})( rejected)?$`), l, 'OK <value> [rejected]');
      return { value: BigInt(m[1]), rejected: m[2] !== undefined };
    },
  }),
  /** rounds: vpci_process_pending calls until it was done. */
  cfgWrite: (domid: number, sbdf: Sbdf, reg: number, size: number, value: number | bigint): Cmd<{ rounds: number; rejected: boolean; irqs: AgentIrq[] }> => ({
    text: `cfg write ${domid} ${sbdf} ${hx(reg)} ${size} ${hx(value)}`,
    parse: (l) => {
      const m = match(new RegExp(`^OK (\\d+)( rejected)?${IRQS}$`), l, 'OK <rounds> [rejected] [irq=...]');
      return { rounds: Number(m[1]), rejected: m[2] !== undefined, irqs: irqsOf(m[3]) };
    },
  }),
  /** One MCFG entry of the hardware domain: config accesses of segment `seg`, buses start..end, at `base` (register_vpci_mmcfg_handler). */
  mmcfg: (domid: number, seg: number, base: number, start: number, end: number): Cmd<void> => ok(`mmcfg ${domid} ${hx(seg)} ${hx(base)} ${hx(start)} ${hx(end)}`),
  memRead: (domid: number, gpa: number | bigint, size: number): Cmd<{ value: bigint; where: Where }> => ({
    text: `mem read ${domid} ${hx(gpa)} ${size}`,
    parse: (l) => {
      const m = match(new RegExp(`^OK (${HEX}) (${WHERE})$`), l, 'OK <value> <where>');
      return { value: BigInt(m[1]), where: where(m, 2) };
    },
  }),
  memWrite: (domid: number, gpa: number | bigint, size: number, value: number | bigint): Cmd<{ where: Where; irqs: AgentIrq[] }> => ({
    text: `mem write ${domid} ${hx(gpa)} ${size} ${hx(value)}`,
    parse: (l) => {
      const m = match(new RegExp(`^OK (${WHERE})${IRQS}$`), l, 'OK <where> [irq=...]');
      return { where: where(m, 1), irqs: irqsOf(m[1 + WHERE_GROUPS]) };
    },
  }),
  ioRead: (domid: number, port: number, size: number): Cmd<{ value: bigint; where: Where }> => ({
    text: `io read ${domid} ${hx(port)} ${size}`,
    parse: (l) => {
      const m = match(new RegExp(`^OK (${HEX}) (${WHERE})$`), l, 'OK <value> <where>');
      return { value: BigInt(m[1]), where: where(m, 2) };
    },
  }),
  ioWrite: (domid: number, port: number, size: number, value: number | bigint): Cmd<{ where: Where; irqs: AgentIrq[] }> => ({
    text: `io write ${domid} ${hx(port)} ${size} ${hx(value)}`,
    parse: (l) => {
      const m = match(new RegExp(`^OK (${WHERE})${IRQS}$`), l, 'OK <where> [irq=...]');
      return { where: where(m, 1), irqs: irqsOf(m[1 + WHERE_GROUPS]) };
    },
  }),
  /** An emulator's XEN_DMOP_create_ioreq_server on `domid` (xen/common/ioreq.c): Xen's rc and the server's id. */
  ioreqCreate: (domid: number): Cmd<{ rc: number; id?: number }> => ({
    text: `ioreq create ${domid}`,
    parse: (l) => {
      const m = match(/^OK (-?\d+)(?: id=(\d+))?$/, l, 'OK <rc> [id=<n>]');
      return { rc: Number(m[1]), ...(m[2] !== undefined ? { id: Number(m[2]) } : {}) };
    },
  }),
  /** XEN_DMOP_set_ioreq_server_state: Xen's rc. */
  ioreqState: (domid: number, id: number, enabled: boolean): Cmd<number> => rcReply(`ioreq state ${domid} ${id} ${enabled ? 1 : 0}`),
  /** XEN_DMOP_map_io_range_to_ioreq_server or _unmap_io_range_from_ioreq_server: Xen's rc. A pci range is of SBDFs. */
  ioreqRange: (change: 'map' | 'unmap', domid: number, id: number, type: 'port' | 'mem' | 'pci', start: number, end: number): Cmd<number> =>
    rcReply(`ioreq ${change} ${domid} ${id} ${type} ${hx(start)} ${hx(end)}`),
  /** The domain's current p2m mappings (MMIO), sorted by gfn. */
  p2m: (domid: number): Cmd<P2mRun[]> => ({
    text: `p2m ${domid}`,
    parse: (l) => {
      const m = match(new RegExp(`^OK(?: ((?:${HEX}:${HEX}:${HEX})(?:,${HEX}:${HEX}:${HEX})*))?$`), l, 'OK [gfn:mfn:nr,...]');
      return m[1] === undefined ? [] : m[1].split(',').map((r) => {
        const [gfn, mfn, nr] = r.split(':').map(Number);
        return { gfn, mfn, nr };
      });
    },
  }),
  /** Every p2m request vPCI made, in order. */
  p2mLog: (domid: number): Cmd<P2mRequest[]> => ({
    text: `p2m log ${domid}`,
    parse: (l) => {
      const one = `(?:map|unmap|remove-identity):${HEX}:${HEX}:${HEX}:${HEX}:-?\\d+`;
      const m = match(new RegExp(`^OK(?: (${one}(?:,${one})*))?$`), l, 'OK [op:gfn:mfn:nr:done:rc,...]');
      return m[1] === undefined ? [] : m[1].split(',').map((r) => {
        const [op, gfn, mfn, nr, done, rc] = r.split(':');
        return { op: op as P2mRequest['op'], gfn: Number(gfn), mfn: Number(mfn), nr: Number(nr), done: Number(done), rc: Number(rc) };
      });
    },
  }),
  knob: (name: Knob, value: number | boolean): Cmd<void> => ok(`knob ${name} ${typeof value === 'boolean' ? Number(value) : value}`),
};

// ---- The process -----------------------------------------------------------------

/**
 * hang: no reply in time; gone: the agent exited without a CRASH line;
 * crash: a CRASH line (a Xen assertion or a fatal signal: a finding);
 * protocol: a reply that is not what the command gives; refused: an ERR reply.
 */
export type AgentTrouble = 'hang' | 'gone' | 'crash' | 'protocol' | 'refused';

export class XenAgentError extends Error {
  override name = 'XenAgentError';
  constructor(
    message: string,
    readonly trouble: AgentTrouble,
    /** The command it is about, and its reply line when there was one. */
    readonly command?: string,
    readonly line?: string,
    /** How the agent ended ("exited with status 3", "killed by SIGKILL"), if it did. */
    readonly exit?: string,
    /** The end of the agent's stderr (Xen's printk). */
    readonly stderr?: string,
  ) {
    super(message);
  }
  /** The reply lines of a batch that came in before it failed. */
  replies: string[] = [];
  /** Those replies parsed, up to the first that is not its command's OK. */
  parsed: unknown[] = [];
}

export type Results<T extends readonly Cmd<unknown>[]> = { -readonly [K in keyof T]: T[K] extends Cmd<infer R> ? R : never };

export interface StartOptions {
  /** Per reply (default 10 s). */
  timeoutMs?: number;
}

export class XenAgent {
  private readonly lines = new LineQueue();
  /** "exited with status N" or "killed by SIG…", once the process is gone. */
  exit: string | null = null;
  exitCode: number | null = null;
  /** The CRASH message, if the agent crashed. */
  crash: string | null = null;
  stderr = '';
  /** Set when the reply stream can no longer be trusted (a hang or a bad line): every later call fails. */
  private broken: XenAgentError | null = null;
  private readonly closed: Promise<void>;
  readonly timeoutMs: number;

  private constructor(
    private readonly proc: ChildProcess,
    readonly binary: string,
    opts: StartOptions,
  ) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (s: string) => this.lines.feed(s));
    proc.stderr!.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString('utf8')).slice(-STDERR_TAIL);
    });
    proc.stdin!.on('error', () => {}); // a dead agent: the close event reports it
    this.closed = new Promise((resolve) => {
      proc.once('error', (e) => {
        this.exit ??= `could not start ${binary}: ${e.message}`;
        this.lines.end(this.exit);
        resolve();
      });
      proc.once('close', (code, signal) => {
        this.exitCode = code;
        this.exit ??= signal !== null ? `killed by ${signal}` : `exited with status ${code}`;
        this.lines.end(`${AGENT_NAME} ${this.exit}`);
        resolve();
      });
    });
  }

  /** Starts the agent (see ensureXenAgent for the binary). */
  static start(binary: string, opts: StartOptions = {}): XenAgent {
    const p = spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    track(p);
    return new XenAgent(p, binary, opts);
  }

  get alive(): boolean {
    return this.exit === null && this.broken === null;
  }

  private fail(e: XenAgentError): never {
    if (e.trouble === 'hang' || e.trouble === 'protocol') {
      this.broken ??= e;
      killGroup(this.proc);
    }
    throw e;
  }

  /** Waits a little for the process to end (after a CRASH line), so that its status is known. */
  private async settle(ms = 2000): Promise<void> {
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, ms).unref())]);
  }

  /**
   * Sends the command lines at once and returns their reply lines in order,
   * OK or ERR alike. Throws XenAgentError on a hang, a crash, the agent's
   * end or a line that is neither OK nor ERR (the stream is then out of
   * step: the agent is killed and every later call fails).
   */
  async exchange(cmds: readonly string[]): Promise<string[]> {
    if (this.broken !== null) throw this.broken;
    for (const c of cmds) if (/[\r\n]/.test(c)) throw new XenAgentError(`a command must be one line: ${JSON.stringify(c)}`, 'protocol', c);
    if (cmds.length === 0) return [];
    if (this.exit === null) this.proc.stdin!.write(cmds.join('\n') + '\n');
    const out: string[] = [];
    try {
      await this.collect(cmds, out);
    } catch (e) {
      if (e instanceof XenAgentError) e.replies = out;
      throw e;
    }
    return out;
  }

  private async collect(cmds: readonly string[], out: string[]): Promise<void> {
    for (const c of cmds) {
      const n = await this.lines.next(this.timeoutMs);
      if ('timeout' in n) this.fail(new XenAgentError(`${AGENT_NAME} hangs: no reply to "${c}" within ${this.timeoutMs} ms (${out.length} of ${cmds.length} replies in)`, 'hang', c, undefined, undefined, this.stderr));
      if ('eof' in n) {
        await this.settle();
        throw new XenAgentError(`${AGENT_NAME} ended before replying to "${c}": ${this.exit ?? n.eof}`, 'gone', c, undefined, this.exit ?? undefined, this.stderr);
      }
      const line = n.line;
      if (line.startsWith('CRASH ')) {
        this.crash = line.slice(6);
        await this.settle();
        throw new XenAgentError(`${AGENT_NAME} crashed on "${c}": ${this.crash} (${this.exit ?? 'still running'})`, 'crash', c, line, this.exit ?? undefined, this.stderr);
      }
      if (!/^(OK( .*)?|ERR .+)$/.test(line)) this.fail(new XenAgentError(`protocol error: the reply to "${c}" is neither "OK ..." nor "ERR <reason>": "${line.slice(0, 200)}"`, 'protocol', c, line));
      out.push(line);
    }
  }

  /** Pipelines typed commands; each reply must be its command's OK (an ERR throws 'refused' once every reply is in). */
  async run<const T extends readonly Cmd<unknown>[]>(cmds: T): Promise<Results<T>> {
    let lines: string[];
    try {
      lines = await this.exchange(cmds.map((c) => c.text));
    } catch (e) {
      if (e instanceof XenAgentError) {
        for (let i = 0; i < e.replies.length && e.replies[i].startsWith('OK'); i++) {
          try {
            e.parsed.push(cmds[i].parse(e.replies[i]));
          } catch {
            break;
          }
        }
      }
      throw e;
    }
    const out: unknown[] = [];
    for (let i = 0; i < cmds.length; i++) {
      const c = cmds[i];
      const line = lines[i];
      if (line.startsWith('ERR ')) throw new XenAgentError(`"${c.text}" refused: ${line.slice(4)}`, 'refused', c.text, line);
      try {
        out.push(c.parse(line));
      } catch (e) {
        if (!(e instanceof ReplyMismatch)) throw e;
        // The line is framed correctly, so the stream is still in step: no need to kill.
        throw new XenAgentError(`protocol error: the reply to "${c.text}" is "${line.slice(0, 200)}", ${e.message}`, 'protocol', c.text, line);
      }
    }
    return out as Results<T>;
  }

  /** One typed command. */
  async one<T>(cmd: Cmd<T>): Promise<T> {
    return (await this.run([cmd] as const))[0] as T;
  }

  /** Ends the agent (SIGKILL to its process group) and waits for it. */
  async dispose(): Promise<void> {
    if (this.exit === null) {
      this.proc.stdin!.end();
      killGroup(this.proc);
    }
    await this.closed;
  }
}
