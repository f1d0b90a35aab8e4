/**
 * isoroot proxy: records a vfio-user session between a real client and a
 * real server as a capture (docs/wireshark.md), passing file descriptors
 * through. `isoroot import pcap` turns the capture into a trace.
 */
import { PcapWriter } from '../../capture/pcap-writer.ts';
import { startProxy } from '../../capture/proxy.ts';
import { UsageError, one, type CommandSpec, type Parsed } from '../args.ts';

export const PROXY: CommandSpec = {
  name: 'proxy',
  summary: 'sit between a vfio-user client and server and record their messages as a capture',
  usage: 'isoroot proxy --listen SOCK --connect SOCK --pcap FILE',
  options: [
    { name: 'listen', value: 'SOCK', doc: 'the socket the client connects to (created)' },
    { name: 'connect', value: 'SOCK', doc: "the server's socket" },
    { name: 'pcap', value: 'FILE', doc: 'the capture (classic pcap, link type USER0, docs/wireshark.md)' },
  ],
};

export async function runProxy(p: Parsed, log: (s: string) => void): Promise<number> {
  const need = (k: string): string => {
    const v = one(p, k);
    if (v === undefined) throw new UsageError('proxy', `missing --${k}`);
    return v;
  };
  const listen = need('listen');
  const connect = need('connect');
  const file = need('pcap');
  const proxy = startProxy({ listen, connect, pcap: PcapWriter.open(file), log });
  log(`proxy: ${listen} -> ${connect}, recording ${file}; until interrupted`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  proxy.close();
  log(`closed after ${proxy.sessions} sessions`);
  return 0;
}
