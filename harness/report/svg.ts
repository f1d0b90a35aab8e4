/**
 * SVG pictures for the report: address maps on a compressed axis (every
 * range gets room by the logarithm of its size, gaps shrink to a break),
 * and coverage over time as a line chart. Self-contained markup, no fonts
 * or scripts from outside.
 */
import { hex } from '../util/hex.ts';
import type { MapRange, Mark, SpaceMap } from './maps.ts';

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export const MARK_COLOURS: Record<Mark | 'access', string> = {
  collision: '#e6550d',
  leak: '#756bb1',
  misroute: '#de2d26',
  divergence: '#3182bd',
  protocol: '#636363',
  crash: '#000000',
  hang: '#636363',
  access: '#31a354',
};

const FILL: Record<MapRange['kind'], string> = {
  ram: '#c6dbef',
  ecam: '#c7e9c0',
  cf8: '#d9d9d9',
  reserved: '#bdbdbd',
  bar: '#fdd0a2',
  window: '#f2f0f7',
  mapping: '#dadaeb',
  ghost: '#ffffff',
};

const LANE = 26;
const GAP = 18;
const MAX_WIDTH = 1100;
/** A sparse map is stretched to this width, so that it stays readable. */
const MIN_WIDTH = 560;

/** Address-to-x on a compressed axis built from the ranges' and points' boundaries. */
function axis(ranges: readonly MapRange[], points: readonly number[]): { x: (a: number) => number; width: number; ticks: number[] } {
  const cuts = [...new Set([...ranges.flatMap((r) => [r.start, r.end + 1]), ...points, ...points.map((p) => p + 1)])].sort((a, b) => a - b);
  const widths: number[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const a = cuts[i];
    const b = cuts[i + 1];
    const covered = ranges.some((r) => r.start <= a && b - 1 <= r.end);
    widths.push(covered ? 16 + 5 * Math.log2(b - a) : GAP);
  }
  const total = widths.reduce((n, w) => n + w, 0) || 1;
  const scale = total > MAX_WIDTH ? MAX_WIDTH / total : total < MIN_WIDTH ? MIN_WIDTH / total : 1;
  const starts: number[] = [0];
  for (const w of widths) starts.push(starts[starts.length - 1] + w * scale);
  const x = (a: number): number => {
    let i = cuts.findIndex((c) => c > a) - 1;
    if (i < 0) i = a < cuts[0] ? 0 : cuts.length - 1;
    if (i >= cuts.length - 1) return starts[starts.length - 1];
    const f = (a - cuts[i]) / (cuts[i + 1] - cuts[i]);
    return starts[i] + f * (starts[i + 1] - starts[i]);
  };
  return { x, width: starts[starts.length - 1], ticks: cuts };
}

/** Assigns each range the first lane where it overlaps nothing. */
function lanes(ranges: readonly MapRange[]): number[] {
  const ends: number[] = [];
  return ranges.map((r) => {
    let l = ends.findIndex((e) => e < r.start);
    if (l < 0) {
      l = ends.length;
      ends.push(r.end);
    } else ends[l] = r.end;
    return l;
  });
}

export function mapSvg(map: SpaceMap): string {
  const ranges = [...map.ranges].sort((a, b) => a.start - b.start || b.end - a.end);
  if (ranges.length === 0 && map.points.length === 0) return `<p class="empty">${esc(map.title)}: nothing mapped</p>`;
  const ax = axis(ranges, map.points.map((p) => p.addr));
  const lane = lanes(ranges);
  const nl = Math.max(1, ...lane.map((l) => l + 1));
  const top = 22;
  const h = top + nl * LANE + 46;
  const w = Math.max(Math.ceil(ax.width) + 90, map.title.length * 7 + 20);
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" class="map" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(map.title)}">`];
  parts.push(`<text x="2" y="14" class="title">${esc(map.title)}</text>`);
  ranges.forEach((r, i) => {
    const x0 = 10 + ax.x(r.start);
    const x1 = 10 + ax.x(r.end + 1);
    const y = top + lane[i] * LANE;
    const stroke = r.mark !== undefined ? MARK_COLOURS[r.mark] : '#636363';
    const dash = r.kind === 'ghost' || r.kind === 'window' ? ' stroke-dasharray="4 3"' : '';
    const cls = r.mark !== undefined ? ` class="marked ${r.mark}"` : '';
    parts.push(
      `<g${cls}><title>${esc(`${r.label}: ${hex(r.start)}–${hex(r.end)}${r.mark !== undefined ? ` (${r.mark})` : ''}`)}</title><rect x="${x0.toFixed(1)}" y="${y}" width="${Math.max(2, x1 - x0).toFixed(1)}" height="${LANE - 6}" fill="${FILL[r.kind]}" stroke="${stroke}" stroke-width="${r.mark !== undefined ? 3 : 1}"${dash}/>` +
        (x1 - x0 > r.label.length * 5.6 + 4 ? `<text x="${(x0 + 3).toFixed(1)}" y="${y + 14}" class="label">${esc(r.label)}</text>` : '') +
        '</g>',
    );
  });
  const base = top + nl * LANE;
  let lastTick = -Infinity;
  for (const c of ax.ticks) {
    const x = 10 + ax.x(c);
    if (x - lastTick < 62) continue;
    lastTick = x;
    parts.push(`<line x1="${x.toFixed(1)}" y1="${top - 2}" x2="${x.toFixed(1)}" y2="${base + 2}" class="tick"/><text x="${x.toFixed(1)}" y="${base + 14}" class="addr">${hex(c)}</text>`);
  }
  map.points.forEach((p, i) => {
    const x = 10 + ax.x(p.addr);
    const col = MARK_COLOURS[p.mark];
    parts.push(
      `<g class="point ${p.mark}"><title>${esc(`${p.label} at ${hex(p.addr)}`)}</title><line x1="${x.toFixed(1)}" y1="${top - 4}" x2="${x.toFixed(1)}" y2="${base}" stroke="${col}" stroke-width="2"/>` +
        `<polygon points="${(x - 5).toFixed(1)},${base + 18 + 10 * (i % 2)} ${(x + 5).toFixed(1)},${base + 18 + 10 * (i % 2)} ${x.toFixed(1)},${base + 8 + 10 * (i % 2)}" fill="${col}"/>` +
        `<text x="${(x + 7).toFixed(1)}" y="${base + 26 + 10 * (i % 2)}" class="point-label" fill="${col}">${esc(p.label)}</text></g>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface Series {
  name: string;
  points: { t: number; covered: number }[];
  dashed?: boolean;
}

/** Coverage over time: covered features against seconds, with the 95% line. */
export function coverageSvg(series: readonly Series[], total: number): string {
  const W = 680;
  const H = 260;
  const L = 52;
  const B = 34;
  const tmax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.t)));
  const x = (t: number): number => L + (t / tmax) * (W - L - 16);
  const y = (c: number): number => H - B - (c / Math.max(1, total)) * (H - B - 14);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="coverage over time">`];
  parts.push(`<line x1="${L}" y1="${H - B}" x2="${W - 10}" y2="${H - B}" class="axis"/><line x1="${L}" y1="10" x2="${L}" y2="${H - B}" class="axis"/>`);
  for (const f of [0, 0.25, 0.5, 0.75, 1]) parts.push(`<text x="${L - 6}" y="${y(f * total) + 4}" class="ytick">${Math.round(f * 100)}%</text><line x1="${L - 3}" y1="${y(f * total)}" x2="${L}" y2="${y(f * total)}" class="axis"/>`);
  parts.push(`<line x1="${L}" y1="${y(0.95 * total)}" x2="${W - 10}" y2="${y(0.95 * total)}" class="goal"/><text x="${L + 4}" y="${y(0.95 * total) + 14}" class="goal-label">95% goal</text>`);
  for (let i = 0; i <= 4; i++) {
    const t = (tmax * i) / 4;
    parts.push(`<text x="${x(t)}" y="${H - B + 16}" class="xtick">${t < 120 ? `${t.toFixed(0)} s` : `${(t / 60).toFixed(1)} min`}</text>`);
  }
  const colours = ['#3182bd', '#e6550d', '#31a354', '#756bb1'];
  series.forEach((s, i) => {
    const pts = s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.covered).toFixed(1)}`).join(' ');
    parts.push(`<polyline class="series" fill="none" stroke="${colours[i % colours.length]}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''} points="${pts}"><title>${esc(s.name)}</title></polyline>`);
    parts.push(`<text x="${W - 16}" y="${H - B - 12 - 16 * (series.length - 1 - i)}" fill="${colours[i % colours.length]}" class="legend" text-anchor="end">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
