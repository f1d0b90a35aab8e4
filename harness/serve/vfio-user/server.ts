/**
 * isoroot's reference vfio-user server: every device of a topology served
 * on a socket of its own and a root of its own, all backed by one
 * reference model (one server process, several clients: seed 000). It
 * records what the clients did as an isoroot trace of the served
 * topology, and optionally every message as a capture.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Model } from '../../model/model.ts';
import { REFERENCE_RULES, type Rules } from '../../model/rules.ts';
import { OBSERVES_ALL } from '../../ops/observation.ts';
import { TraceWriter } from '../../trace/writer.ts';
import { TRACE_FORMAT, TRACE_VERSION } from '../../trace/format.ts';
import { ISOROOT_VERSION } from '../../version.ts';
import type { Topology } from '../../topology/types.ts';
import { FdServer, type FdSocket } from '../../protocol/vfio-user/fd-socket.ts';
import { Connection } from '../../protocol/vfio-user/connection.ts';
import type { PcapWriter } from '../../capture/pcap-writer.ts';
import { ClientMemory } from './client-memory.ts';
import { DeviceServer } from './device-server.ts';
import { servingTopology, type ServedDevice } from './serving-topology.ts';
import { describeDevice } from '../../adapters/vfio-user/served-topology.ts';

export interface ServeOptions {
  topology: Topology;
  socketDir: string;
  /** Where the record of the clients' operations goes (a trace). */
  trace: string;
  mutant?: string;
  rules?: Rules;
  pcap?: PcapWriter;
  /** How long a DMA_READ or DMA_WRITE to a client may take. */
  dmaTimeoutMs?: number;
  log?: (s: string) => void;
}

export interface Served {
  topology: Topology;
  devices: ServedDevice[];
  /** Socket path of each device, in root order. */
  sockets: string[];
  /** Protocol violations by clients, as "socket: message". */
  violations: string[];
  close(): void;
}

export function serveVfioUser(o: ServeOptions): Served {
  const { topology, devices } = servingTopology(o.topology);
  const log = o.log ?? (() => {});
  const memories: ClientMemory[] = [];
  const model = new Model(topology, o.rules ?? REFERENCE_RULES, (_r, size) => {
    const m = new ClientMemory(size);
    memories.push(m);
    return m;
  });
  const trace = new TraceWriter(o.trace, {
    format: TRACE_FORMAT,
    version: TRACE_VERSION,
    topology,
    target: { name: 'vfio-user-server', version: ISOROOT_VERSION, observes: OBSERVES_ALL, ...(o.mutant !== undefined ? { mutant: o.mutant } : {}) },
    seed: null,
    isoroot: ISOROOT_VERSION,
    time: new Date().toISOString(),
  }, true);
  mkdirSync(o.socketDir, { recursive: true });
  const violations: string[] = [];
  /** The device server of each device with a client, by device id (its connection: dev.conn). */
  const active = new Map<string, DeviceServer>();
  const listeners: FdServer[] = [];
  const sockets: string[] = [];
  let sessions = 0;

  const accept = (d: ServedDevice, path: string, s: FdSocket): void => {
    // One client per device: a new connection takes the device over (a client that reconnects, or
    // whose close has not been read yet); the old one is closed and its state goes first.
    const old = active.get(d.device.id);
    if (old !== undefined) {
      log(`${path}: a new client takes the device over`);
      old.conn.close('another client took the device over');
    }
    const session = sessions++;
    o.pcap?.label(session, path);
    let dev: DeviceServer | null = null;
    const conn = new Connection(s, {
      onRequest: (m) => {
        try {
          dev!.handle(m);
        } finally {
          trace.sync();
        }
      },
      onViolation: (v) => {
        violations.push(`${path}: ${v.message}`);
        log(`${path}: the client broke the protocol: ${v.message}`);
      },
      onClose: (why) => {
        log(`${path}: ${why}`);
        if (active.get(d.device.id) === dev) {
          active.delete(d.device.id);
          memories[d.root].port = null;
          dev!.disconnected();
          trace.sync();
        }
      },
    });
    if (o.pcap !== undefined) {
      const pcap = o.pcap;
      conn.tap = (dir, bytes, fds) => pcap.message(session, dir === 'in' ? 'to-server' : 'to-client', bytes, fds);
    }
    dev = new DeviceServer(model, d.root, d.device.id, conn, memories[d.root], (op, obs) => trace.write({ op, obs }));
    dev.onIrq = (from, kind, vector, level) => active.get(from)?.signal(kind, vector, level);
    memories[d.root].port = {
      read: (address, count) => {
        const r = conn.requestSync('DMA_READ', { address: BigInt(address), count: BigInt(count) }, o.dmaTimeoutMs ?? 5000);
        return r === null || r.errno !== 0 || r.body === null || r.body.data === undefined ? null : r.body.data;
      },
      write: (address, data) => {
        conn.requestSync('DMA_WRITE', { address: BigInt(address), count: BigInt(data.length), data }, o.dmaTimeoutMs ?? 5000);
      },
    };
    active.set(d.device.id, dev);
    log(`${path}: client connected (session ${session})`);
  };

  for (const d of devices) {
    const path = join(o.socketDir, d.socket);
    rmSync(path, { force: true });
    writeFileSync(`${path}.json`, describeDevice(d.device));
    listeners.push(FdServer.listen(path, (s) => accept(d, path, s)));
    sockets.push(path);
  }
  let closed = false;
  return {
    topology,
    devices,
    sockets,
    violations,
    close() {
      if (closed) return;
      closed = true;
      for (const l of listeners) l.close();
      // Each close lets its device go (onClose above): its maps, its triggers.
      for (const dev of [...active.values()]) dev.conn.close('the server is closing');
      trace.close();
      o.pcap?.close();
      for (const p of sockets) rmSync(`${p}.json`, { force: true });
    },
  };
}
