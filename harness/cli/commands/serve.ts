/**
 * isoroot serve vfio-user: the reference vfio-user server. Each device of
 * the topology gets a socket in --socket-dir and a root of its own; the
 * clients' operations are recorded as a trace (and, with --pcap, every
 * message as a capture). It runs until interrupted.
 */
import { join } from 'node:path';
import { MUTANT_NAMES, mutantRules } from '../../adapters/model/mutants.ts';
import { PcapWriter } from '../../capture/pcap-writer.ts';
import { serveVfioUser } from '../../serve/vfio-user/server.ts';
import { UsageError, one, type CommandSpec, type Parsed } from '../args.ts';
import { InputError } from '../../util/errors.ts';
import { readTopologyFile } from '../topology-file.ts';

export const SERVE: CommandSpec = {
  name: 'serve',
  summary: 'serve the devices of a topology as vfio-user servers, backed by the reference model',
  usage: 'isoroot serve vfio-user --topology FILE --socket-dir DIR [--trace FILE] [--pcap FILE] [--mutant M]',
  positional: { name: 'vfio-user', required: true, many: false },
  options: [
    { name: 'topology', value: 'FILE', doc: 'the devices to serve (JSON); each gets its own socket and its own isolated root' },
    { name: 'socket-dir', value: 'DIR', doc: 'where the sockets go: DIR/<device id>.sock, with a description DIR/<device id>.sock.json' },
    { name: 'trace', value: 'FILE', doc: "where the record of the clients' operations goes (default DIR/server.jsonl)" },
    { name: 'pcap', value: 'FILE', doc: 'record every message as a capture (docs/wireshark.md)' },
    { name: 'mutant', value: 'M', doc: `serve from a faulty model, to check that a campaign finds it (${MUTANT_NAMES.join(', ')})` },
  ],
};

export async function runServe(p: Parsed, log: (s: string) => void): Promise<number> {
  if (p.positional[0] !== 'vfio-user') throw new UsageError('serve', `the protocol first: isoroot serve vfio-user (the only one), got "${p.positional[0]}"`);
  const topologyFile = one(p, 'topology');
  const socketDir = one(p, 'socket-dir');
  if (topologyFile === undefined) throw new UsageError('serve', 'missing --topology FILE');
  if (socketDir === undefined) throw new UsageError('serve', 'missing --socket-dir DIR');
  const mutant = one(p, 'mutant');
  const rules = mutant === undefined ? undefined : mutantRules(mutant);
  if (rules === null) throw new UsageError('serve', `--mutant must be one of ${MUTANT_NAMES.join(', ')}, got "${mutant}"`);
  const topology = await readTopologyFile(topologyFile);
  const pcapFile = one(p, 'pcap');
  const trace = one(p, 'trace') ?? join(socketDir, 'server.jsonl');
  let served: ReturnType<typeof serveVfioUser>;
  try {
    served = serveVfioUser({
      topology,
      socketDir,
      trace,
      ...(rules !== undefined ? { rules, mutant } : {}),
      ...(pcapFile !== undefined ? { pcap: PcapWriter.open(pcapFile) } : {}),
      log,
    });
  } catch (e) {
    // Sockets that cannot be made (a missing or read-only directory, a live server already there).
    if (e instanceof Error && 'code' in e) throw new InputError(`--socket-dir ${socketDir}`, `a directory where the sockets can be made (${e.message})`);
    throw e;
  }
  for (let i = 0; i < served.sockets.length; i++) log(`root ${i}: ${served.devices[i].device.id} (${served.devices[i].device.kind}) on ${served.sockets[i]}`);
  log(`record: ${trace}${pcapFile !== undefined ? `; capture: ${pcapFile}` : ''}`);
  log(`client: isoroot fuzz --target vfio-user:${served.sockets.join(',')}`);
  log('serving until interrupted');
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  served.close();
  log(served.violations.length === 0 ? 'closed; no client broke the protocol' : `closed; ${served.violations.length} protocol violations by clients:\n  ${served.violations.join('\n  ')}`);
  return served.violations.length === 0 ? 0 : 1;
}
