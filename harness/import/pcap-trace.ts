/**
 * A vfio-user capture as an isoroot trace, seen from the client: each
 * session is a root with its device; region accesses become region
 * operations, DMA maps and unmaps and resets become theirs, and each
 * reply is the observation. The device is described from the config
 * space the session read. Messages that are not operations (VERSION, the INFO
 * queries, SET_IRQS, the server's DMA) are counted. The trace then
 * replays against the model: `isoroot check`.
 */
import { readCapture } from '../capture/pcap-read.ts';
import { decodeMessage } from '../protocol/vfio-user/codec.ts';
import { ProtocolViolation, REGION, type Message, type Request } from '../protocol/vfio-user/messages.ts';
import { reasonOf } from '../adapters/vfio-user/refusals.ts';
import { readLe } from '../util/access-split.ts';
import { deviceFromConfig } from '../adapters/vfio-user/discover.ts';
import { servedTopology } from '../adapters/vfio-user/served-topology.ts';
import { REGION_XFER_MAX, type Op } from '../ops/catalog.ts';
import type { Observation } from '../ops/observation.ts';
import type { Step } from '../trace/format.ts';
import type { Topology } from '../topology/types.ts';
import { InputError } from '../util/errors.ts';

interface SessionState {
  label: string;
  requests: Map<number, Request>;
  config: Uint8Array;
  regionSizes: number[];
  steps: { at: number; step: Step }[];
}

export interface ImportedCapture {
  topology: Topology;
  steps: Step[];
  /** Messages that are not operations, by command. */
  skipped: Map<string, number>;
  sessions: string[];
}

export async function importCapture(file: string): Promise<ImportedCapture> {
  const records = await readCapture(file);
  const sessions = new Map<number, SessionState>();
  const skipped = new Map<string, number>();
  const state = (n: number): SessionState => {
    let s = sessions.get(n);
    if (s === undefined) sessions.set(n, (s = { label: `session ${n}`, requests: new Map(), config: new Uint8Array(0x1000), regionSizes: [], steps: [] }));
    return s;
  };
  const all: { at: number; root: number; step: Step }[] = [];
  for (const r of records) {
    const s = state(r.session);
    if (r.kind === 'label') {
      s.label = r.text ?? s.label;
      continue;
    }
    let m: Message;
    try {
      m = decodeMessage(r.payload, Array.from({ length: r.fds }, () => -1));
    } catch (e) {
      if (e instanceof ProtocolViolation) throw new InputError(`${file}: packet ${r.index} (byte ${r.fileOffset})`, `a valid vfio-user message: ${e.message}`);
      throw e;
    }
    if (!m.reply) {
      s.requests.set(m.id, m);
      continue;
    }
    const req = s.requests.get(m.id);
    if (req === undefined || req.command !== m.command) continue;
    s.requests.delete(m.id);
    const steps = toSteps(s, req, m);
    if (steps === null) skipped.set(m.command, (skipped.get(m.command) ?? 0) + 1);
    else for (const step of steps) all.push({ at: r.index, root: r.session, step });
  }
  const order = [...sessions.keys()].sort((a, b) => a - b);
  const rootOf = new Map(order.map((n, i) => [n, i]));
  const devices = order.map((n, i) => {
    const s = sessions.get(n)!;
    return deviceFromConfig(`vfu${i}`, (off, size) => Number(readLe(s.config, off, size)), (k) => s.regionSizes[k] ?? 0);
  });
  if (devices.length === 0) throw new InputError(file, 'a capture with at least one vfio-user session');
  const steps = all.map(({ root, step }) => retarget(step, rootOf.get(root)!, devices[rootOf.get(root)!].id));
  return { topology: servedTopology(devices), steps, skipped, sessions: order.map((n) => sessions.get(n)!.label) };
}

/** Steps carry the session number as their root until roots are numbered. */
function retarget(step: Step, root: number, dev: string): Step {
  const op = { ...step.op } as Op & { root?: number; dev?: string };
  if ('root' in op) op.root = root;
  if ('dev' in op) op.dev = dev;
  return step.obs === undefined ? { op } : { op, obs: step.obs };
}

const failed = (what: 'dma' | 'region', errno: number): Observation => {
  const reason = reasonOf(what, errno);
  return reason === undefined ? { status: 'error' } : { status: 'error', reason };
};

function toSteps(s: SessionState, req: Request, rep: Message & { reply: true }): Step[] | null {
  switch (req.command) {
    case 'DEVICE_GET_REGION_INFO': {
      if (rep.errno === 0 && rep.body !== null && 'size' in rep.body) s.regionSizes[req.body.index] = Number(rep.body.size);
      return null;
    }
    case 'REGION_READ':
    case 'REGION_WRITE': {
      const { region, count } = req.body;
      const offset = Number(req.body.offset);
      const write = req.command === 'REGION_WRITE' ? req.body.data! : null;
      const data = write ?? (rep.errno === 0 && rep.body !== null && 'data' in rep.body ? rep.body.data : undefined);
      if (region === REGION.CONFIG && data !== undefined && rep.errno === 0) s.config.set(data.subarray(0, Math.max(0, Math.min(count, 0x1000 - offset))), offset);
      // One region operation per message (in REGION_XFER_MAX pieces): what the client asked, where it asked.
      const out: Step[] = [];
      for (let at = 0; at < count; at += REGION_XFER_MAX) {
        const n = Math.min(REGION_XFER_MAX, count - at);
        const base = { dev: '', region, offset: offset + at };
        const op: Op = write === null ? { op: 'region.read', ...base, count: n } : { op: 'region.write', ...base, data: write.subarray(at, at + n) };
        const obs: Observation = rep.errno !== 0 ? failed('region', rep.errno) : write === null ? { status: 'ok', data: data!.slice(at, at + n) } : { status: 'ok' };
        out.push({ op, obs });
      }
      return out;
    }
    case 'DMA_MAP': {
      const f = req.body.flags;
      const perm = (f & 3) === 3 ? 'rw' : (f & 1) !== 0 ? 'r' : 'w';
      // Without a file descriptor the guest-physical address is not on the wire: the IOVA stands for it.
      const gpa = req.fds.length > 0 ? Number(req.body.offset) : Number(req.body.address);
      return [{ op: { op: 'dma.map', root: 0, domain: 0, iova: Number(req.body.address), size: Number(req.body.size), gpa, perm }, obs: rep.errno === 0 ? { status: 'ok' } : failed('dma', rep.errno) }];
    }
    case 'DMA_UNMAP':
      return [{ op: { op: 'dma.unmap', root: 0, domain: 0, iova: Number(req.body.address), size: Number(req.body.size) }, obs: rep.errno === 0 ? { status: 'ok' } : failed('dma', rep.errno) }];
    case 'DEVICE_RESET':
      return [{ op: { op: 'dev.reset', dev: '' }, obs: rep.errno === 0 ? { status: 'ok' } : failed('dma', rep.errno) }];
    default:
      return null;
  }
}
