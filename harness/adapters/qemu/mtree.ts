/**
 * QEMU's own flat views (`info mtree -f`, asked through QMP's
 * human-monitor-command) of the CPU's memory and IO address spaces,
 * read into ranges for the maps oracle. The text is QEMU's word, at the
 * edge of the harness: a line that does not parse is an error, not a
 * silent gap. Ranges inside the topology's reserved ranges, and the IO
 * space's unclaimed background ("io"), are left out.
 */
import type { FlatMaps, MapSegment } from '../../ops/observation.ts';
import type { ReservedRange } from '../../topology/types.ts';
import { QmpError, type QmpChannel } from './qmp.ts';

const VIEW = /^FlatView #\d+$/;
const AS = /^ AS "([^"]+)", root: /;
const RANGE = /^ {2}([0-9a-f]{16})-([0-9a-f]{16}) \(prio -?\d+, [a-z/ ]+\): (\S+)/;
/** `-o` adds the owner; devices created with an id show it. */
const OWNER = / owner:\{dev id=([^}]+)\}/;
const MAX = 2 ** 53 - 1;

/** The segments of the flat views that serve the named address spaces. */
export function parseFlatViews(text: string, wanted: readonly string[]): Map<string, MapSegment[]> {
  const out = new Map<string, MapSegment[]>();
  let spaces: string[] = [];
  let segs: MapSegment[] | null = null;
  text.split(/\r?\n/).forEach((line, i) => {
    if (VIEW.test(line)) {
      spaces = [];
      segs = null;
      return;
    }
    const as = AS.exec(line);
    if (as !== null) {
      spaces.push(as[1]);
      return;
    }
    const m = RANGE.exec(line);
    if (m === null) {
      if (line.startsWith('  0') || line.startsWith('  f')) throw new QmpError('info mtree -f', 'Protocol', `line ${i + 1}: a range "start-end (prio P, type): name", got ${JSON.stringify(line.slice(0, 100))}`);
      return;
    }
    if (segs === null) {
      segs = [];
      for (const s of spaces) if (wanted.includes(s)) out.set(s, segs);
    }
    const start = parseInt(m[1], 16);
    if (start > MAX) return;
    const seg: MapSegment = { start, end: Math.min(parseInt(m[2], 16), MAX), name: m[3] };
    const owner = OWNER.exec(line);
    if (owner !== null) seg.owner = owner[1];
    segs.push(seg);
  });
  return out;
}

const outside = (reserved: readonly ReservedRange[], space: 'memory' | 'io') => (s: MapSegment): boolean =>
  !reserved.some((x) => x.space === space && s.start >= x.base && s.end < x.base + x.size);

/** Which device's region answers at `addr` in a flat view, and its name; null for nothing. */
export function ownerAt(segs: readonly MapSegment[], addr: number): MapSegment | null {
  return segs.find((s) => s.start <= addr && addr <= s.end) ?? null;
}

/** QEMU's flat views of the CPU's memory ("memory") and IO ("I/O") spaces, as evidence. */
export async function flatViews(qmp: QmpChannel, reserved: readonly ReservedRange[], timeoutMs: number): Promise<FlatMaps> {
  const views = parseFlatViews(await qmp.hmp('info mtree -f -o', timeoutMs), ['memory', 'I/O']);
  const memory = views.get('memory');
  const io = views.get('I/O');
  if (memory === undefined || io === undefined) throw new QmpError('info mtree -f', 'Protocol', 'no flat view of AS "memory" or AS "I/O"');
  return {
    memory: memory.filter(outside(reserved, 'memory')),
    // The IO root region answers where nothing else does: it is the background, not a mapping.
    io: io.filter((s) => s.name !== 'io').filter(outside(reserved, 'io')),
  };
}
