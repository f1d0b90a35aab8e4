/** The interval map behind IOMMU domains and emulator ranges, against a plain array. */
import { test, expect } from '@playwright/test';
import fc from 'fast-check';
import { IntervalMap } from '../../harness/util/interval-map.ts';

type Cmd = { k: 'ins'; s: number; n: number } | { k: 'del'; s: number } | { k: 'find'; a: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ k: fc.constant('ins' as const), s: fc.nat(500), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ k: fc.constant('del' as const), s: fc.nat(500) }),
  fc.record({ k: fc.constant('find' as const), a: fc.nat(540) }),
);

test('insert, remove and find agree with an array of intervals; overlaps are refused', () => {
  fc.assert(
    fc.property(fc.array(cmd, { maxLength: 200 }), (cmds) => {
      const m = new IntervalMap<number>();
      let ref: { s: number; e: number }[] = [];
      for (const c of cmds) {
        if (c.k === 'ins') {
          const e = c.s + c.n - 1;
          const clash = ref.some((r) => r.s <= e && c.s <= r.e);
          expect(m.insert(c.s, e, c.s)).toBe(!clash);
          if (!clash) ref.push({ s: c.s, e });
        } else if (c.k === 'del') {
          const had = ref.some((r) => r.s === c.s);
          expect(m.remove(c.s) !== null).toBe(had);
          ref = ref.filter((r) => r.s !== c.s);
        } else {
          const r = ref.find((x) => x.s <= c.a && c.a <= x.e);
          expect(m.find(c.a)?.start ?? null).toBe(r?.s ?? null);
        }
        expect(m.size).toBe(ref.length);
      }
      expect(m.entries().map((e) => e.start)).toEqual(ref.map((r) => r.s).sort((a, b) => a - b));
    }),
    { numRuns: 300, seed: 21 },
  );
});

test('the tree stays balanced: height within 1.45 log2(n + 2)', () => {
  const m = new IntervalMap<number>();
  for (let i = 0; i < 100_000; i++) m.insert(i * 2, i * 2, i);
  expect(m.height).toBeLessThanOrEqual(Math.ceil(1.45 * Math.log2(100_002)));
  for (let i = 0; i < 100_000; i += 2) m.remove(i * 2);
  expect(m.size).toBe(50_000);
  expect(m.height).toBeLessThanOrEqual(Math.ceil(1.45 * Math.log2(50_002)));
  expect(m.intersecting(10, 20).map((e) => e.start)).toEqual([10, 14, 18]);
});
