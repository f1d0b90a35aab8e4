/** isoroot explain: a trace as a table (op, root, BDF, address, observation). */
import { readTrace } from '../../trace/reader.ts';
import { Model } from '../../model/model.ts';
import { showObs } from '../../ops/observation-codec.ts';
import { showOp } from '../../ops/codec.ts';
import { formatBdf } from '../../topology/bdf.ts';
import { hex } from '../../util/hex.ts';
import type { Op } from '../../ops/catalog.ts';
import type { CommandSpec, Parsed } from '../args.ts';

export const EXPLAIN: CommandSpec = {
  name: 'explain',
  summary: 'print a trace as a readable table',
  usage: 'isoroot explain TRACE',
  positional: { name: 'TRACE', required: true, many: false },
  options: [],
};

interface Row {
  i: string;
  op: string;
  root: string;
  bdf: string;
  addr: string;
  obs: string;
}

function columns(m: Model, op: Op): Pick<Row, 'root' | 'bdf' | 'addr'> {
  const dev = 'dev' in op ? op.dev : undefined;
  const s = dev === undefined ? undefined : m.devices.get(dev);
  const root = 'root' in op ? `r${op.root}` : s !== undefined ? `r${s.root}` : '';
  const b = dev !== undefined ? m.bdfOf(dev) : null;
  let bdf = b === null ? '' : formatBdf(b);
  let addr = '';
  switch (op.op) {
    case 'cfg.read':
    case 'cfg.write':
      bdf = formatBdf(op.bdf);
      addr = `${op.via}+${hex(op.reg)}`;
      break;
    case 'emu.map-bdf':
    case 'emu.unmap-bdf':
      bdf = formatBdf(op.bdf);
      break;
    case 'mmio.read':
    case 'mmio.write':
      addr = hex(op.addr);
      break;
    case 'pio.read':
    case 'pio.write':
      addr = `port ${hex(op.port)}`;
      break;
    case 'dma.read':
    case 'dma.write':
    case 'dma.map':
    case 'dma.unmap':
      addr = `iova ${hex(op.iova)}`;
      break;
    case 'emu.map-range':
    case 'emu.unmap-range':
      addr = `${op.space} ${hex(op.start)}`;
      break;
  }
  return { root, bdf, addr };
}

export async function runExplain(p: Parsed, log: (s: string) => void): Promise<number> {
  const t = await readTrace(p.positional[0]);
  const m = new Model(t.header.topology);
  const rows: Row[] = [{ i: '#', op: 'op', root: 'root', bdf: 'BDF', addr: 'address', obs: 'observation' }];
  t.steps.forEach((s, i) => {
    const cols = columns(m, s.op);
    m.apply(s.op);
    rows.push({ i: String(i), op: showOp(s.op), ...cols, obs: s.obs === undefined ? '(not run)' : showObs(s.obs) });
  });
  const h = t.header;
  log(`trace of ${h.target.name}${h.target.mutant !== undefined ? ` (mutant ${h.target.mutant})` : ''} ${h.target.version}, seed ${h.seed ?? 'none'}, ${h.topology.roots.length} roots, written ${h.time} by isoroot ${h.isoroot}`);
  const keys: (keyof Row)[] = ['i', 'op', 'root', 'bdf', 'addr', 'obs'];
  const w = keys.map((k) => Math.min(60, Math.max(...rows.map((r) => r[k].length))));
  for (const r of rows) log(keys.map((k, j) => (j === keys.length - 1 ? r[k] : r[k].padEnd(w[j]))).join('  ').trimEnd());
  return 0;
}

