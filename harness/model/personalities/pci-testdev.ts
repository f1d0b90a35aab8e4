/**
 * QEMU's pci-testdev (hw/misc/pci-testdev.c), as QEMU 7.2 implements it.
 * BAR0 (4 KiB memory) and BAR1 (256 bytes IO) both show the header of the
 * selected test; writing a byte to offset 0 selects one (via BAR0: tests
 * 0..2, via BAR1: tests 3..5). A write whose byte lands on the test's
 * offset counts (for data-match tests only if the byte is 0xFA), except
 * that a 1-byte write exactly at the offset of an eventfd test is
 * swallowed by the ioeventfd and counts nothing.
 */
import { PciFunction } from '../function.ts';
import { installBar, layoutBars } from '../bar.ts';
import { initQemuType0 } from '../header-init.ts';
import type { DeviceSpec } from '../../topology/types.ts';

interface TestDef {
  name: string;
  io: boolean;
  offset: number;
  data: number;
  eventfd: boolean;
  /** Counts any byte (wildcard), or only `data`. */
  wildcard: boolean;
}

export const TESTDEV_TESTS: readonly TestDef[] = [
  { name: 'mmio-no-eventfd', io: false, offset: 0x800, data: 0xfa, eventfd: false, wildcard: false },
  { name: 'mmio-wildcard-eventfd', io: false, offset: 0x801, data: 0xce, eventfd: true, wildcard: true },
  { name: 'mmio-datamatch-eventfd', io: false, offset: 0x802, data: 0xfa, eventfd: true, wildcard: false },
  { name: 'portio-no-eventfd', io: true, offset: 0x83, data: 0xfa, eventfd: false, wildcard: false },
  { name: 'portio-wildcard-eventfd', io: true, offset: 0x84, data: 0xce, eventfd: true, wildcard: true },
  { name: 'portio-datamatch-eventfd', io: true, offset: 0x85, data: 0xfa, eventfd: true, wildcard: false },
];

/** The header a test shows: test, width, pad, offset, data, pad, count, name, NUL. */
function headerByte(i: number, count: number, at: number): number {
  const t = TESTDEV_TESTS[i];
  if (at >= 16 + t.name.length) return 0;
  if (at >= 16) return t.name.charCodeAt(at - 16);
  switch (at) {
    case 0: return i;
    case 1: return 1;
    case 4: case 5: case 6: case 7: return (t.offset >>> (8 * (at - 4))) & 0xff;
    case 8: return t.data;
    case 12: case 13: case 14: case 15: return (count >>> (8 * (at - 12))) & 0xff;
    default: return 0;
  }
}

export class PciTestdev extends PciFunction {
  private current = -1;
  private counts = [0, 0, 0, 0, 0, 0];
  /** Writes swallowed by an ioeventfd, for coverage. */
  swallowed = 0;

  /** The selected test, or -1. */
  get selected(): number {
    return this.current;
  }

  /** All counts together, for coverage to see a count move. */
  get countTotal(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }

  constructor(spec: DeviceSpec, root: number, uid: number, multifunction: boolean) {
    super(spec, root, false, multifunction);
    this.uid = uid;
    if (!this.templated) {
      initQemuType0(this.cfg, { vendor: 0x1b36, device: 0x0005, classCode: 0x00ff00, revision: 0, pin: 0, multifunction });
      for (const b of layoutBars([{ kind: 'mem32', size: 0x1000 }, { kind: 'io', size: 0x100 }])) {
        installBar(this.cfg, b);
        this.bars[b.region] = b;
      }
      this.cfg.keepOnReset(0x40, 0xc0);
    }
    this.seal();
  }

  protected read(_region: number, off: number, size: number): bigint {
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.current < 0 ? 0 : headerByte(this.current, this.counts[this.current], off + i));
    return v;
  }

  protected write(region: number, off: number, size: number, value: bigint): void {
    const io = region === 1;
    if (this.current >= 0) {
      const t = TESTDEV_TESTS[this.current];
      if (t.eventfd && t.io === io && off === t.offset && size === 1 && (t.wildcard || Number(value) === t.data)) {
        this.swallowed++;
        return;
      }
    }
    // The region implements 1-byte accesses: wider writes arrive byte by byte.
    for (let i = 0; i < size; i++) {
      const at = off + i;
      const b = Number((value >> BigInt(8 * i)) & 0xffn);
      if (at === 0) {
        this.current = b < 3 ? b + (io ? 3 : 0) : -1;
        if (this.current >= 0) this.counts[this.current] = 0;
        continue;
      }
      if (this.current < 0) continue;
      const t = TESTDEV_TESTS[this.current];
      if (at === t.offset && (t.wildcard || b === t.data)) this.counts[this.current] = (this.counts[this.current] + 1) >>> 0;
    }
  }

  protected override resetState(): void {
    this.current = -1;
  }
  protected override snapshotState(): unknown {
    return { current: this.current, counts: [...this.counts] };
  }
  protected override restoreState(s: unknown): void {
    const x = s as { current: number; counts: number[] };
    this.current = x.current;
    this.counts = [...x.counts];
  }
}
