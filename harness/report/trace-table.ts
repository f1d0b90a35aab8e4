/**
 * A trace as rows: op, root, BDF, address, observation. Replays the
 * reference model alongside, so a device's BDF is the one it answers at
 * when the op runs. Used by `isoroot explain` and by the HTML report.
 */
import { Model } from '../model/model.ts';
import { showObs } from '../ops/observation-codec.ts';
import { showOp } from '../ops/codec.ts';
import { formatBdf } from '../topology/bdf.ts';
import { hex } from '../util/hex.ts';
import { needs, type Op } from '../ops/catalog.ts';
import { unhandled } from '../ops/exhaustive.ts';
import type { Step } from '../trace/format.ts';
import type { Topology } from '../topology/types.ts';

export interface TraceRow {
  i: string;
  op: string;
  root: string;
  bdf: string;
  addr: string;
  obs: string;
}

export const TRACE_HEAD: TraceRow = { i: '#', op: 'op', root: 'root', bdf: 'BDF', addr: 'address', obs: 'observation' };

/** Where an op acts, for the trace table: the BDF it names (else its device's) and the address it reaches. */
function place(op: Op): { bdf?: string; addr?: string } {
  // A VFIO op names a device (by its id), never a BDF or an address.
  if (needs(op, 'vfio')) return {};
  switch (op.op) {
    case 'cfg.read':
    case 'cfg.write':
      return { bdf: formatBdf(op.bdf), addr: `${op.via}+${hex(op.reg)}` };
    case 'emu.map-bdf':
    case 'emu.unmap-bdf':
      return { bdf: formatBdf(op.bdf) };
    case 'mmio.read':
    case 'mmio.write':
      return { addr: hex(op.addr) };
    case 'pio.read':
    case 'pio.write':
      return { addr: `port ${hex(op.port)}` };
    case 'dma.read':
    case 'dma.write':
    case 'dma.map':
    case 'dma.unmap':
      return { addr: `iova ${hex(op.iova)}` };
    case 'emu.map-range':
    case 'emu.unmap-range':
      return { addr: `${op.space} ${hex(op.start)}` };
    case 'region.read':
    case 'region.write':
      return { addr: `region ${op.region}+${hex(op.offset)}` };
    case 'pasid.alloc':
    case 'pasid.free':
    case 'pasid.bind':
    case 'pasid.unbind':
    case 'pasid.invalidate':
    case 'dma.attach':
    case 'dma.detach':
    case 'dev.plug':
    case 'dev.unplug':
    case 'dev.reset':
    case 'root.reset':
    case 'clock.step':
      return {};
  }
  return unhandled(op);
}

function columns(m: Model, op: Op): Pick<TraceRow, 'root' | 'bdf' | 'addr'> {
  const dev = 'dev' in op ? op.dev : undefined;
  const s = dev === undefined ? undefined : m.devices.get(dev);
  const root = 'root' in op ? `r${op.root}` : s !== undefined ? `r${s.root}` : '';
  const b = dev !== undefined ? m.bdfOf(dev) : null;
  const named = b === null ? '' : formatBdf(b);
  const { bdf = named, addr = '' } = place(op);
  return { root, bdf, addr };
}

export function traceRows(topology: Topology, steps: readonly Step[]): TraceRow[] {
  const m = new Model(topology);
  return steps.map((s, i) => {
    const cols = columns(m, s.op);
    m.apply(s.op);
    return { i: String(i), op: showOp(s.op), ...cols, obs: s.obs === undefined ? '(not run)' : showObs(s.obs) };
  });
}
