/**
 * isoroot import qtest FILE: turns a QEMU qtest log, script or C
 * reproducer into a trace that replays on QEMU and on the model
 * (docs/import.md). The topology comes from --topology or from the QEMU
 * command line in FILE, completed for the QEMU machine.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { MACHINES, PLATFORMS, type Machine } from '../../adapters/qemu/platform.ts';
import { qemuCapabilities } from '../../adapters/qemu/target.ts';
import { prepareForChoice, type TargetChoice } from '../../adapters/select.ts';
import { importEntries } from '../../import/qtest-ops.ts';
import { readQtest, type QtestFormat } from '../../import/qtest-script.ts';
import { machineFor, qemuSetup } from '../../import/qtest-topology.ts';
import { deviceBuses, probeQemu } from '../../adapters/qemu/binary.ts';
import { qemuBuild } from '../../adapters/qemu/build.ts';
import { addedArgs } from '../../adapters/qemu/machine.ts';
import { profileFor, type Profile } from '../../profiles/profile.ts';
import { formatBdf, bdf } from '../../topology/bdf.ts';
import { walkDevices, type Topology } from '../../topology/types.ts';
import { TRACE_FORMAT, TRACE_VERSION, type TraceHeader } from '../../trace/format.ts';
import { writeTrace } from '../../trace/writer.ts';
import { InputError } from '../../util/errors.ts';
import { ISOROOT_VERSION } from '../../version.ts';
import { UsageError, one, type CommandSpec, type Parsed } from '../args.ts';
import { readTopologyFile } from '../topology-file.ts';
import { importCapture } from '../../import/pcap-trace.ts';

export const IMPORT: CommandSpec = {
  name: 'import',
  summary: 'turn a QEMU qtest log, script or C reproducer, or a vfio-user capture, into a trace',
  usage: 'isoroot import qtest FILE [--out TRACE] [--topology TOPOLOGY.json] [--machine q35|pc] [--function NAME] | isoroot import pcap FILE [--out TRACE]',
  positional: { name: 'qtest|pcap FILE', required: true, many: true },
  options: [
    { name: 'out', value: 'TRACE', doc: 'where the trace goes (default: FILE with the extension .jsonl, next to it)' },
    { name: 'topology', value: 'FILE', doc: 'the topology (JSON) instead of the one the QEMU command line in FILE builds' },
    { name: 'machine', value: 'M', doc: `${MACHINES.join(' | ')}: the QEMU machine, over the -machine in FILE` },
    { name: 'function', value: 'NAME', doc: 'a C reproducer with several test functions: the one to import' },
  ],
};

const FORMATS: Record<QtestFormat, string> = { log: 'qtest log', script: 'qtest script', c: 'C reproducer' };

/** A word for a shell command line, quoted when it needs to be. */
const shellArg = (s: string): string => (/^[A-Za-z0-9_./:@=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

const counts = (m: Map<string, number>): string => [...m].map(([k, n]) => `${n} ${k}`).join(', ');

/** isoroot import pcap: a vfio-user capture (docs/wireshark.md) as a trace of the client's operations. */
async function importPcap(file: string, out: string, log: (s: string) => void): Promise<number> {
  if (resolve(out) === resolve(file)) throw new UsageError('import', `the trace would overwrite the input ${file}: give --out TRACE`);
  const c = await importCapture(file);
  const header: TraceHeader = {
    format: TRACE_FORMAT,
    version: TRACE_VERSION,
    topology: c.topology,
    target: { name: 'vfio-user capture', version: basename(file), observes: { delivery: false, irqs: false, aborts: true, faults: [] } },
    seed: null,
    isoroot: ISOROOT_VERSION,
    time: new Date().toISOString(),
  };
  writeTrace(out, header, c.steps);
  log(`${file}: ${c.sessions.length} sessions (${c.sessions.join('; ')}), ${c.steps.length} operations${c.skipped.size > 0 ? `; not operations: ${counts(c.skipped)}` : ''}`);
  log(`trace: ${out}`);
  log(`check: isoroot check ${out}`);
  return 0;
}

/** The profile of the QEMU version a log was recorded on, where isoroot has one. */
function profileOf(version: string | null): { profile?: Profile } {
  const p = version === null ? null : profileFor('qemu', version);
  return p === null ? {} : { profile: p };
}

/** A command line's arguments as options with their values, for a summary. */
function pairs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) if (a.startsWith('-') || out.length === 0) out.push(a);
  else out[out.length - 1] += ` ${a}`;
  return out;
}

function defaultOut(file: string): string {
  return join(dirname(file), basename(file, extname(file)) + '.jsonl');
}

/**
 * The topology the command line builds, completed for QEMU, with notes on
 * what did not carry over. RAM the QEMU target cannot hold is left to its
 * default; any other refusal names the command line.
 */
function completed(file: string, line: number | null, t: Topology, choice: TargetChoice): { topology: Topology; notes: string[] } {
  try {
    return { topology: prepareForChoice(choice, t), notes: [] };
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    const { ram, ...root } = t.roots[0];
    if (e.where.endsWith('.ram') && ram !== undefined) {
      const rest = completed(file, line, { ...t, roots: [root, ...t.roots.slice(1)] }, choice);
      return { topology: rest.topology, notes: [`RAM of ${ram / 2 ** 20} MiB (the QEMU target holds ${e.expected}; replays use its default)`, ...rest.notes] };
    }
    throw new InputError(`${file}${line === null ? '' : `:${line}`}: ${e.where}`, e.expected);
  }
}

export async function runImport(p: Parsed, log: (s: string) => void): Promise<number> {
  const [format, file, ...extra] = p.positional;
  if (format === 'pcap') {
    if (file === undefined) throw new UsageError('import', 'missing FILE: isoroot import pcap FILE');
    if (extra.length > 0) throw new UsageError('import', `one FILE only, got ${extra.length + 1}`);
    return importPcap(file, one(p, 'out') ?? defaultOut(file), log);
  }
  if (format !== 'qtest') throw new UsageError('import', `the format to import first: isoroot import qtest FILE or isoroot import pcap FILE, got "${format}"`);
  if (file === undefined) throw new UsageError('import', 'missing FILE: isoroot import qtest FILE');
  if (extra.length > 0) throw new UsageError('import', `one FILE only, got ${extra.length + 1}`);
  const machineOpt = one(p, 'machine');
  if (machineOpt !== undefined && !(MACHINES as readonly string[]).includes(machineOpt)) throw new UsageError('import', `--machine must be ${MACHINES.join(' or ')}, got "${machineOpt}"`);
  const out = one(p, 'out') ?? defaultOut(file);
  if (resolve(out) === resolve(file)) throw new UsageError('import', `the trace would overwrite the input ${file}: give --out TRACE`);

  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new InputError(file, 'a readable qtest log, qtest script or C reproducer');
  }
  const input = readQtest(text, file, one(p, 'function'));
  if (input.entries.length === 0) throw new InputError(file, `qtest commands (none in this ${FORMATS[input.format]})`);
  const imported = importEntries(input.entries, file, input.format === 'log');

  const cl = input.commandLine;
  const machine = machineFor(cl, file, machineOpt as Machine | undefined);
  const choice: TargetChoice = { spec: `qemu:${machine}` };
  const topologyFile = one(p, 'topology');
  const bin = probeQemu();
  const setup = topologyFile === undefined ? qemuSetup(cl, file, machine, deviceBuses(bin)) : null;
  const built = setup === null ? { topology: await readTopologyFile(topologyFile!, choice), notes: [] } : completed(file, cl?.line ?? null, setup.topology, choice);
  const topology = built.topology;
  // The trace says what isoroot itself adds to the command line.
  if (topology.qemu !== undefined) {
    const platform = PLATFORMS[machine];
    const build = qemuBuild(bin, platform);
    topology.qemu.added = addedArgs(topology, platform, build.machineType, build.accel);
  }

  const header: TraceHeader = {
    format: TRACE_FORMAT,
    version: TRACE_VERSION,
    topology,
    target: { name: 'qemu', version: input.version ?? 'unknown', observes: qemuCapabilities(PLATFORMS[machine]).observes, ...profileOf(input.version) },
    seed: null,
    isoroot: ISOROOT_VERSION,
    time: new Date().toISOString(),
  };
  writeTrace(out, header, imported.steps);

  const { steps, skipped, observed, unobserved } = imported;
  const where = [FORMATS[input.format], input.function === undefined ? null : `function ${input.function}`, cl === null ? 'no QEMU command line' : `QEMU command line at line ${cl.line}`];
  log(`${file}: ${where.filter((w) => w !== null).join(', ')}`);
  log(`  ${steps.length} operations from ${input.entries.length} qtest commands; skipped: ${skipped.size === 0 ? 'none' : counts(skipped)}`);
  if (input.format === 'log') {
    log(`  observations: ${observed} of ${steps.length} operations${unobserved.size === 0 ? '' : ` (without one: ${counts(unobserved)})`}${input.otherLines > 0 ? `; ${input.otherLines} lines of other output passed over` : ''}`);
  } else log('  observations: none (only a log records replies)');
  const devices = [...walkDevices(topology)]
    .filter(({ dev }) => dev.builtin !== true)
    .map(({ root, dev, parent }) => `${dev.id} ${parent === null ? `${root === 0 ? '' : `r${root} `}${formatBdf(bdf(topology.roots[root].bus, dev.slot, dev.fn))}` : `below ${parent.id}`} (${dev.kind === 'opaque' ? `opaque ${dev.qdev}` : dev.kind})`);
  const left = built.notes.length === 0 ? '' : `; changed: ${built.notes.join(', ')}`;
  log(`  topology: QEMU ${machine}${topologyFile === undefined ? '' : ` from ${topologyFile}`}, ${devices.length === 0 ? 'no devices' : devices.join(', ')} besides the machine's own${left}`);
  const q = topology.qemu;
  if (q !== undefined) {
    log(`  passed to QEMU as given: ${[q.machine === undefined ? null : `-machine ${q.machine}`, q.defaults === true ? "QEMU's default devices (no -nodefaults)" : null, ...pairs(q.args)].filter((x) => x !== null).join(' ') || 'nothing else'}`);
    if ((setup?.notPassed ?? []).length > 0) log(`  not passed: ${setup!.notPassed.join('; ')}`);
    log(`  isoroot adds: ${(q.added ?? []).join('; ')}`);
  }
  log(`  trace: ${out}`);
  const t = shellArg(out);
  log(`  replay on QEMU:      isoroot check ${t} --target ${choice.spec}`);
  log(`  replay on the model: isoroot check ${t} --target model`);
  if (input.format === 'log' && observed === steps.length) log(`  check the log itself: isoroot check ${t}`);
  else if (input.format === 'log') log('  (isoroot check without --target needs every operation observed: replay this trace instead)');
  return 0;
}
