/**
 * The isoroot command line. Exit codes: 0 clean, 1 findings, 2 usage or
 * input error, 3 internal error (a bug in isoroot: please report it).
 */
import { InputError } from '../util/errors.ts';
import { ISOROOT_VERSION } from '../version.ts';
import { helpText, parseArgs, type CommandSpec, type Parsed } from './args.ts';
import { CHECK, runCheck } from './commands/check.ts';
import { CORPUS, runCorpus } from './commands/corpus.ts';
import { GATE, runGate } from './commands/gate.ts';
import { REPORT, runReport } from './commands/report.ts';
import { MERGE, runMerge } from './commands/merge.ts';
import { EXPLAIN, runExplain } from './commands/explain.ts';
import { FUZZ, runFuzz } from './commands/fuzz.ts';
import { IMPORT, runImport } from './commands/import.ts';
import { SERVE, runServe } from './commands/serve.ts';
import { PROXY, runProxy } from './commands/proxy.ts';
import { RULES_COMMAND, runRules } from './commands/rules.ts';

type Runner = (p: Parsed, log: (s: string) => void) => Promise<number>;

const COMMANDS: [CommandSpec, Runner][] = [
  [FUZZ, runFuzz],
  [CHECK, runCheck],
  [EXPLAIN, runExplain],
  [CORPUS, runCorpus],
  [GATE, runGate],
  [REPORT, runReport],
  [MERGE, runMerge],
  [IMPORT, runImport],
  [SERVE, runServe],
  [PROXY, runProxy],
  [RULES_COMMAND, runRules],
];

function usage(): string {
  const w = Math.max(...COMMANDS.map(([c]) => c.name.length)) + 2;
  return [
    `isoroot ${ISOROOT_VERSION}: conformance tests and fuzzing for PCI isolation across roots`,
    '',
    'usage: isoroot <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map(([c]) => `  ${c.name.padEnd(w)}${c.summary}`),
    '',
    'isoroot <command> --help for its options. Exit codes: 0 clean, 1 findings, 2 usage or input error, 3 internal error.',
  ].join('\n');
}

export async function main(argv: string[], log: (s: string) => void = (s) => process.stdout.write(s + '\n'), err: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    log(ISOROOT_VERSION);
    return 0;
  }
  const entry = COMMANDS.find(([c]) => c.name === name);
  if (entry === undefined) {
    err(`isoroot: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const [spec, run] = entry;
  try {
    const p = parseArgs(spec, rest);
    if (p.flags.has('help')) {
      log(helpText(spec));
      return 0;
    }
    return await run(p, log);
  } catch (e) {
    if (e instanceof InputError) {
      // Usage errors already name the command.
      err(e.message.startsWith('isoroot ') ? e.message : `isoroot ${name}: ${e.message}`);
      return 2;
    }
    err(`isoroot ${name}: internal error: ${(e as Error).stack ?? String(e)}`);
    return 3;
  }
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await main(process.argv.slice(2));
}
