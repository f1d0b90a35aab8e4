/**
 * The HTML regression report: one self-contained static page (inline CSS
 * and SVG, no scripts, no server). Summary; comparison with a baseline run;
 * coverage over time; findings grouped by kind and signature, each with its
 * minimal trace as a table and a picture of every root's address maps at the
 * failing step.
 */
import { join } from 'node:path';
import { universeOfFeatures } from '../coverage/universe.ts';
import { isTargetFeature } from '../coverage/target-features.ts';
import { showDuration } from '../campaign/budget.ts';
import { addressMaps, type Mark } from './maps.ts';
import { coverageSvg, mapSvg, MARK_COLOURS, type Series } from './svg.ts';
import { traceRows } from './trace-table.ts';
import { figures, type LoadedFinding, type LoadedRun } from './load-run.ts';

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const anchor = (sig: string): string => `f-${sig.replace(/[^A-Za-z0-9]+/g, '-')}`;

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}.num{text-align:right}.muted{color:#777}
table.trace{font:12px/1.35 ui-monospace,monospace}table.trace tr.failing{background:#fee0d2;font-weight:600}
.finding{border:1px solid #ddd;border-left:6px solid #999;padding:8px 14px;margin:14px 0}
.finding.collision{border-left-color:${MARK_COLOURS.collision}}.finding.leak{border-left-color:${MARK_COLOURS.leak}}.finding.misroute{border-left-color:${MARK_COLOURS.misroute}}.finding.divergence{border-left-color:${MARK_COLOURS.divergence}}.finding.crash,.finding.hang{border-left-color:#000}
code{background:#f5f5f5;padding:1px 4px}.maps{overflow-x:auto}svg text{font:11px system-ui,sans-serif}
svg .title{font-weight:600;font-size:12px}svg .addr{font:10px ui-monospace,monospace;fill:#555}svg .tick{stroke:#ccc}svg .label{fill:#222}
svg .axis{stroke:#888}svg .goal{stroke:#31a354;stroke-dasharray:4 4}svg .goal-label,.legend{font-weight:600}svg .ytick{text-anchor:end}svg .xtick{text-anchor:middle}
.badge{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:12px}
.new{color:#de2d26;font-weight:600}.fixed{color:#31a354;font-weight:600}
`;

function summaryTable(r: LoadedRun): string {
  const f = figures(r);
  const c = r.config;
  const byKind = new Map<string, number>();
  for (const x of r.findings) byKind.set(x.record.kind, (byKind.get(x.record.kind) ?? 0) + 1);
  const rows: [string, string][] = [
    ['target', `${esc(c.target)}${c.mutant !== undefined ? ` (mutant ${esc(c.mutant)})` : ''}`],
    ['seed, workers', `${c.seed}, ${c.workers}${c.shard.count > 1 ? `, shard ${c.shard.index}/${c.shard.count}` : ''}`],
    ['budget', 'runs' in c.budget ? `${c.budget.runs} runs` : showDuration(c.budget.ms)],
    ['sequences, operations', `${f.runs.toLocaleString('en')}, ${f.ops.toLocaleString('en')}`],
    ['duration', `${f.seconds} s`],
    ['throughput', `${f.sequencesPerSecond.toLocaleString('en')} sequences/s, ${f.opsPerSecond.toLocaleString('en')} ops/s`],
    ['model coverage', `${f.covered} / ${f.total} features (${f.total === 0 ? 0 : ((100 * f.covered) / f.total).toFixed(1)}%)`],
    ['findings', r.findings.length === 0 ? 'none' : [...byKind].map(([k, n]) => `<span class="badge" style="background:${MARK_COLOURS[k as Mark] ?? '#555'}">${esc(k)}</span> ${n}`).join(' &nbsp; ')],
    ['known bugs seen again', r.known.length === 0 ? 'none' : r.known.map((k) => `<a href="#known-${esc(k.name)}">${esc(k.name)}</a> (${k.count}×)`).join(', ')],
    ['started', esc(c.started)],
    ['isoroot', esc(c.isoroot)],
  ];
  return `<table class="summary">${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table>`;
}

function baselineSection(r: LoadedRun, b: LoadedRun): string {
  const cur = new Map(r.findings.map((f) => [f.record.signature, f]));
  const base = new Map(b.findings.map((f) => [f.record.signature, f]));
  const fresh = [...cur.keys()].filter((s) => !base.has(s));
  const fixed = [...base.keys()].filter((s) => !cur.has(s));
  const still = [...cur.keys()].filter((s) => base.has(s));
  const fr = figures(r);
  const fb = figures(b);
  const change = fb.opsPerSecond === 0 ? 'n/a' : `${(((fr.opsPerSecond - fb.opsPerSecond) / fb.opsPerSecond) * 100).toFixed(1)}%`;
  const list = (sigs: string[], cls: string, link: boolean): string =>
    sigs.length === 0 ? '<p class="muted">none</p>' : `<ul>${sigs.map((s) => `<li class="${cls}">${link ? `<a href="#${anchor(s)}">${esc(s)}</a>` : esc(s)}</li>`).join('')}</ul>`;
  return `<h2 id="baseline">Against the baseline</h2>
<p>Baseline: <code>${esc(b.dir)}</code> (${esc(b.config.target)}${b.config.mutant !== undefined ? `, mutant ${esc(b.config.mutant)}` : ''}, seed ${b.config.seed}).</p>
<table><tr><th></th><th>baseline</th><th>this run</th><th>change</th></tr>
<tr><th>throughput</th><td class="num">${fb.opsPerSecond.toLocaleString('en')} ops/s</td><td class="num">${fr.opsPerSecond.toLocaleString('en')} ops/s</td><td class="num">${change}</td></tr>
<tr><th>coverage</th><td class="num">${fb.covered} / ${fb.total}</td><td class="num">${fr.covered} / ${fr.total}</td><td class="num">${fr.covered - fb.covered >= 0 ? '+' : ''}${fr.covered - fb.covered}</td></tr>
<tr><th>findings</th><td class="num">${b.findings.length}</td><td class="num">${r.findings.length}</td><td class="num">${fresh.length} new, ${fixed.length} fixed</td></tr></table>
<h3>New (${fresh.length})</h3>${list(fresh, 'new', true)}<h3>Fixed (${fixed.length})</h3>${list(fixed, 'fixed', false)}<h3>Still failing (${still.length})</h3>${list(still, '', true)}`;
}

function coverageSection(r: LoadedRun, b: LoadedRun | null): string {
  const label = (x: LoadedRun): string => `${x.config.target}${x.config.mutant !== undefined ? ` mutant ${x.config.mutant}` : ''}${x.config.feedback ? '' : ', no feedback'}${x.config.generator === 'raw' ? ', random ops' : ''}`;
  const series: Series[] = [{ name: `this run (${label(r)})`, points: r.coverage }];
  if (b !== null) series.push({ name: `baseline (${label(b)})`, points: b.coverage, dashed: true });
  const universe = universeOfFeatures(Object.keys(r.features)).list;
  const missing = universe.filter((f) => r.features[f] === undefined);
  return `<h2 id="coverage">Coverage over time</h2><p>Features of the reference model reached (registers, BAR placements, bridge windows, IOMMU and PASID states, routing outcomes and their pairings); the dashed line is the 95% goal.</p>
${coverageSvg(series, universe.length)}
<details><summary>${missing.length} of ${universe.length} features not reached</summary><p>${missing.map((f) => `<code>${esc(f)}</code>`).join(' ') || 'none'}</p></details>${targetFeatures(r)}`;
}

/** What the target reported of its own paths (QEMU's trace events), apart from the model's features. */
function targetFeatures(r: LoadedRun): string {
  const fs = Object.keys(r.features).filter(isTargetFeature).sort();
  if (fs.length === 0) return '';
  return `<details><summary>${fs.length} features the target reported of its own paths (its trace events)</summary><p>${fs.map((f) => `<code>${esc(f)}</code>`).join(' ')}</p></details>`;
}

function findingSection(f: LoadedFinding): string {
  const rec = f.record;
  const rows = traceRows(f.trace.header.topology, f.trace.steps);
  const table = `<table class="trace"><tr><th>#</th><th>op</th><th>root</th><th>BDF</th><th>address</th><th>observation</th></tr>${rows
    .map((r, i) => `<tr${i === rec.index ? ' class="failing"' : ''}><td class="num">${r.i}</td><td>${esc(r.op)}</td><td>${esc(r.root)}</td><td>${esc(r.bdf)}</td><td>${esc(r.addr)}</td><td>${esc(r.obs)}</td></tr>`)
    .join('')}</table>`;
  const maps = addressMaps(f.trace.header.topology, f.trace.steps, Math.min(rec.index, f.trace.steps.length - 1), rec.kind as Mark);
  return `<section class="finding ${esc(rec.kind)}" id="${anchor(rec.signature)}">
<h3>${esc(rec.signature)}</h3>
<p>${esc(rec.message)}</p>
<p><b>rests on</b>: <code>${esc(rec.rule?.id ?? 'unknown')}</code>: ${esc(rec.rule?.cites ?? '(a finding recorded before findings named their rule)')}</p>
<p class="muted">run ${rec.run}, stream ${rec.stream}, ${rec.origin} sequence shrunk to ${rec.ops} operations; exposed at op #${rec.index}. Replay: <code>isoroot check ${esc(f.file)}</code></p>
${Object.entries(rec.details ?? {}).map(([k, v]) => (v.includes('\n') ? `<p><b>${esc(k)}</b>:</p><pre>${esc(v)}</pre>` : `<p><b>${esc(k)}</b>: <code>${esc(v)}</code></p>`)).join('')}
${table}
<h3>Address maps at op #${rec.index}</h3>
<div class="maps">${maps.map(mapSvg).join('<br/>')}</div>
</section>`;
}

/** Known bugs of the target seen again: apart from the findings, with how often and under which signatures. */
function knownSection(r: LoadedRun): string {
  if (r.known.length === 0) return '';
  const rows = r.known
    .map(
      (k) =>
        `<tr id="known-${esc(k.name)}"><td><b>${esc(k.name)}</b><br/><span class="muted">${esc(k.status)}, recognised by its ${esc(k.by)}</span></td><td class="num">${k.count}</td><td>${k.signatures.map((s) => `<code>${esc(s)}</code>`).join('<br/>')}</td><td>${esc(k.reason)}${k.trace === undefined ? '' : `<br/><span class="muted">first seen in run ${k.firstRun}: <code>${esc(join(r.dir, 'known', k.trace))}</code></span>`}</td></tr>`,
    )
    .join('');
  return `<h2 id="known">Known bugs of the target, seen again (${r.known.length})</h2>
<p>Not findings: each is a corpus entry whose quirk (the model behaving as the faulty target does) explains what was seen.</p>
<table><tr><th>known bug</th><th>runs</th><th>signatures it showed up under</th><th>why it is known</th></tr>${rows}</table>`;
}

export function renderReport(r: LoadedRun, baseline: LoadedRun | null): string {
  const kinds = [...new Set(r.findings.map((f) => f.record.kind))];
  const byKind = kinds
    .map((k) => {
      const fs = r.findings.filter((f) => f.record.kind === k);
      return `<h2 id="kind-${k}">${esc(k)} (${fs.length})</h2>${fs.map(findingSection).join('\n')}`;
    })
    .join('\n');
  const toc = r.findings.length === 0 ? '<p>No findings.</p>' : `<ul>${r.findings.map((f) => `<li><a href="#${anchor(f.record.signature)}">${esc(f.record.signature)}</a></li>`).join('')}</ul>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>isoroot report: ${esc(r.dir)}</title><style>${CSS}</style></head>
<body>
<h1>isoroot report</h1>
<p class="muted">${esc(r.dir)}${r.warnings.length > 0 ? ` — ${r.warnings.map(esc).join('; ')}` : ''}</p>
<h2 id="summary">Summary</h2>
${summaryTable(r)}
${baseline !== null ? baselineSection(r, baseline) : ''}
${coverageSection(r, baseline)}
<h2 id="findings">Findings (${r.findings.length})</h2>
${toc}
${byKind}
${knownSection(r)}
</body></html>
`;
}
