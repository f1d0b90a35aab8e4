/** The trace format (docs/trace-format.md): round trips, streaming, and malformed input rejected with file and line. */
import { OBSERVES_ALL } from '../harness/ops/observation.ts';
import { test, expect } from '@playwright/test';
import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../harness/model/model.ts';
import { scenarioArb } from '../generators/sequence.ts';
import { topologyArb } from '../generators/topology.ts';
import { openTrace, parseTraceText, readTrace } from '../harness/trace/reader.ts';
import { traceToText, writeTrace, TraceWriter } from '../harness/trace/writer.ts';
import type { Step, TraceHeader } from '../harness/trace/format.ts';
import type { Topology } from '../harness/topology/types.ts';
import { ep, outcome, root } from './helpers.ts';

const header = (topology: Topology): TraceHeader => ({
  format: 'isoroot-trace',
  version: 1,
  topology,
  target: { name: 'model', version: '0.1.0', observes: OBSERVES_ALL },
  seed: 7,
  isoroot: '0.1.0',
  time: '2026-11-21T00:00:00.000Z',
});

test('a generated trace survives text and back, ops and observations alike', () => {
  fc.assert(
    fc.property(scenarioArb(topologyArb()), fc.boolean(), (sc, run) => {
      const m = new Model(sc.topology);
      const steps: Step[] = sc.ops.map((op) => (run ? { op, obs: outcome(m.apply(op)) } : { op }));
      const text = traceToText(header(sc.topology), steps);
      const back = parseTraceText(text, 'x.jsonl');
      expect(back.header).toEqual(header(sc.topology));
      expect(back.steps).toEqual(steps);
      expect(traceToText(back.header, back.steps)).toBe(text);
    }),
    { numRuns: 300, seed: 31 },
  );
});

test("a target's evidence (flat views and trace events) survives text and back", () => {
  const t = { header: header({ roots: [root([ep('a', 3)])] }), steps: [{ op: { op: 'root.reset' as const, root: 0 }, obs: { status: 'ok' as const, evidence: { maps: { memory: [{ start: 0, end: 0xfff, name: 'pc.ram' }], io: [] }, events: ['pci_update_mappings_del edu 00:03.0 0,0xc0000000+0x100000'] } } }] };
  expect(parseTraceText(traceToText(t.header, t.steps), 'e.jsonl').steps).toEqual(t.steps);
});

test('the writer writes through a temporary file; the streaming reader gives line numbers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'isoroot-trace-'));
  const file = join(dir, 't.jsonl');
  const t: Topology = { roots: [root([ep('a', 3)])] };
  const w = new TraceWriter(file, header(t));
  for (let i = 0; i < 20_000; i++) w.write({ op: { op: 'mmio.read', root: 0, addr: 0x1000 + 4 * (i % 100), size: 4 } });
  w.close();
  const s = await openTrace(file);
  let n = 0;
  let last = 0;
  for await (const st of s.steps) {
    n++;
    last = st.line;
  }
  expect(n).toBe(20_000);
  expect(last).toBe(20_001);
  writeTrace(join(dir, 'u.jsonl'), header(t), [{ op: { op: 'root.reset', root: 0 } }]);
  expect((await readTrace(join(dir, 'u.jsonl'))).steps).toEqual([{ op: { op: 'root.reset', root: 0 } }]);
});

const H = JSON.stringify({ format: 'isoroot-trace', version: 1, topology: { roots: [root([ep('a', 3)])] }, target: { name: 'm', version: '1', observes: { delivery: true, irqs: true } }, seed: null, isoroot: '0.1.0', time: 't' });

test.describe('malformed traces are rejected with the file, the line and what was expected', () => {
  for (const [what, text, message] of [
    ['an empty file', '', /bad\.jsonl:1: a header line, got an empty file/],
    ['a header that is not JSON', '{nope\n', /bad\.jsonl:1: valid JSON/],
    ['another format', JSON.stringify({ format: 'pcap' }) + '\n', /bad\.jsonl:1: header\.format: expected "isoroot-trace"/],
    ['a future version', H.replace('"version":1', '"version":2') + '\n', /bad\.jsonl:1: header\.version/],
    ['a bad topology', H.replace('"slot":3', '"slot":40') + '\n', /bad\.jsonl:1: topology\.roots\[0\]\.devices\[0\]\.slot: expected an integer in \[0, 31\], got 40/],
    ['an unknown operation', `${H}\n{"op":"cfg.poke","root":0}\n`, /bad\.jsonl:2: step\.op: expected one of cfg\.read, cfg\.write/],
    ['a missing field', `${H}\n{"op":"mmio.read","root":0,"size":4}\n`, /bad\.jsonl:2: step\.addr: field "addr"/],
    ['a value out of range', `${H}\n{"op":"mmio.read","root":0,"addr":"0x10","size":16}\n`, /bad\.jsonl:2: step\.size: expected an integer in \[1, 8\], got 16/],
    ['a misaligned access', `${H}\n{"op":"mmio.read","root":0,"addr":"0x11","size":4}\n`, /bad\.jsonl:2: step: a valid mmio\.read: address not aligned to size 4/],
    ['an unknown field', `${H}\n{"op":"root.reset","root":0,"force":true}\n`, /bad\.jsonl:2: step\.force: no field "force"/],
    ['a bad BDF', `${H}\n{"op":"cfg.read","root":0,"via":"ecam","bdf":"00:40.0","reg":0,"size":4}\n`, /bad\.jsonl:2: step\.bdf: expected a BDF/],
    ['a bad observation', `${H}\n{"op":"root.reset","root":0,"obs":{"status":"fine"}}\n`, /bad\.jsonl:2: step\.obs\.status: expected one of ok, ur, ma, fault, error/],
    ['an empty line in the middle', `${H}\n\n{"op":"root.reset","root":0}\n`, /bad\.jsonl:2: a JSON object, got an empty line/],
    ['odd hex data', `${H}\n{"op":"dma.write","dev":"a","iova":"0x0","data":"abc"}\n`, /bad\.jsonl:2: step\.data: expected an even number of hex digits/],
    ['a target event that is not text', `${H}\n{"op":"root.reset","root":0,"obs":{"status":"ok","evidence":{"events":["pci_cfg_write", 7]}}}\n`, /bad\.jsonl:2: step\.obs\.evidence\.events\[1\]: expected a string/],
  ] as const) {
    test(what, async () => {
      expect(() => parseTraceText(text, 'bad.jsonl')).toThrow(message);
      const dir = mkdtempSync(join(tmpdir(), 'isoroot-bad-'));
      const file = join(dir, 'bad.jsonl');
      writeFileSync(file, text);
      await expect(readTrace(file)).rejects.toThrow(message);
    });
  }
});
