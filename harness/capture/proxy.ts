/**
 * A recording proxy between a real vfio-user client and a real server:
 * it listens where the client connects, connects to the server for each
 * client, and passes every byte and file descriptor through unchanged,
 * while it records each whole message in a capture. A stream it cannot
 * frame is still passed through; only its recording stops, with a note.
 */
import { FdServer, FdSocket, closeFd } from '../protocol/vfio-user/fd-socket.ts';
import { FrameReader } from '../protocol/vfio-user/framing.ts';
import { ProtocolViolation } from '../protocol/vfio-user/messages.ts';
import type { PcapWriter } from './pcap-writer.ts';
import type { Direction } from './encapsulation.ts';

export interface ProxyOptions {
  listen: string;
  connect: string;
  pcap: PcapWriter;
  log?: (s: string) => void;
}

export interface Proxy {
  /** Connections seen so far. */
  readonly sessions: number;
  close(): void;
}

export function startProxy(o: ProxyOptions): Proxy {
  const log = o.log ?? (() => {});
  const open = new Set<FdSocket>();
  let sessions = 0;
  const listener = FdServer.listen(o.listen, (client) => {
    const session = sessions++;
    open.add(client);
    o.pcap.label(session, `${o.listen} -> ${o.connect}`);
    const held: { chunk: Buffer; fds: number[] }[] = [];
    client.onData = (chunk, fds) => held.push({ chunk, fds });
    client.onClose = () => open.delete(client);
    FdSocket.connect(o.connect).then(
      (server) => {
        open.add(server);
        pipe(session, client, server, 'to-server');
        pipe(session, server, client, 'to-client');
        for (const h of held) client.onData(h.chunk, h.fds);
        log(`session ${session}: ${o.listen} -> ${o.connect}`);
      },
      (e: Error) => {
        log(`session ${session}: cannot reach the server: ${e.message}`);
        client.close();
      },
    );
  });

  function pipe(session: number, from: FdSocket, to: FdSocket, dir: Direction): void {
    const frames = new FrameReader();
    let recording = true;
    from.onData = (chunk, fds) => {
      to.send(chunk, fds);
      if (recording) {
        try {
          frames.push(chunk, fds);
          for (let f = frames.next(); f !== null; f = frames.next()) o.pcap.message(session, dir, f.bytes, f.fds.length);
        } catch (e) {
          if (!(e instanceof ProtocolViolation)) throw e;
          recording = false;
          log(`session ${session} (${dir}): not recorded from here on: ${e.message}`);
        }
      }
      // send() keeps its own copies; ours go.
      for (const fd of fds) closeFd(fd);
    };
    from.onClose = () => {
      open.delete(from);
      to.close();
    };
  }

  return {
    get sessions() {
      return sessions;
    },
    close() {
      listener.close();
      for (const s of [...open]) s.close();
      o.pcap.close();
    },
  };
}
