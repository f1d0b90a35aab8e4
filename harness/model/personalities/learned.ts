/**
 * A function isoroot does not know, learned from the target when the
 * session opened (learned-layout.ts): the model predicts what the
 * specifications define for it (its header, BAR sizing and decode,
 * command and status, PM, MSI and MSI-X) and nothing of its own
 * registers: reads of those and of its BARs are unknown, writes to them
 * change nothing the model follows. Its accesses are still judged for
 * isolation: where they land, and what outlives what.
 */
import { PciFunction } from '../function.ts';
import { learnedLayout, type LearnedLayout } from '../learned-layout.ts';
import type { DeviceSpec } from '../../topology/types.ts';

export class Learned extends PciFunction {
  private readonly layout: LearnedLayout;

  constructor(spec: DeviceSpec, root: number, uid: number, multifunction: boolean) {
    const layout = learnedLayout(spec.learned!);
    super(spec, root, layout.size > 0x100, multifunction, 'learned');
    this.layout = layout;
    this.uid = uid;
    if (!this.templated) {
      for (let i = 0; i < layout.size; i++) {
        this.cfg.set(i, 1, layout.config[i]);
        this.cfg.setMask(i, 1, layout.wmask[i], layout.w1c[i]);
      }
      this.bars = [...layout.bars];
      this.caps = layout.caps;
    }
    this.seal();
  }

  override get isBridge(): boolean {
    return false;
  }

  override configKnown(off: number, size: number): bigint {
    let m = 0n;
    for (let i = 0; i < size; i++) m |= BigInt(off + i < this.layout.size ? this.layout.known[off + i] : 0xff) << BigInt(8 * i);
    return m;
  }

  override declaredRegionSize(region: number): number | null {
    return this.spec.learned!.regions?.[region] ?? null;
  }

  /** A BAR's contents are the device's own, except an MSI-X table and PBA the model keeps. */
  override unknownRegionRead(region: number, off: number, _size?: number): boolean {
    const x = this.caps.msix;
    return !(x !== undefined && region === x.bar && off >= x.table && off < x.pba + 0x800);
  }

  protected read(): bigint {
    return 0n;
  }
  protected write(): void {}
}
