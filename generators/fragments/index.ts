/**
 * Fragments: short operation sequences with a purpose (program a bridge's
 * bus numbers, place a BAR, enable decode, touch a BAR, map and use DMA,
 * bind a PASID, program MSI). Each is a fast-check arbitrary of ops built
 * with the operation catalog's types, so shrinking works on them.
 */
import { accessFragments } from './access.ts';
import { chainFragments } from './chains.ts';
import { configFragments } from './config.ts';
import { dmaFragments } from './dma.ts';
import { platformFragments } from './platform.ts';
import type { FragmentContext, Weighted } from './context.ts';

export { cfg, fragmentContext, placeOps, type FragmentContext } from './context.ts';
export { windowOps } from './config.ts';

export function fragments(x: FragmentContext): Weighted[] {
  return [...configFragments(x), ...accessFragments(x), ...dmaFragments(x), ...platformFragments(x), ...chainFragments(x)];
}
