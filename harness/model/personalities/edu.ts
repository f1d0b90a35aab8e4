/**
 * QEMU's edu device (hw/misc/edu.c), as QEMU 7.2 implements it: BAR0 is
 * 1 MiB of 4- and 8-byte registers, with a factorial unit, interrupt
 * raise/acknowledge and a DMA engine with a 4 KiB buffer at 0x40000 that
 * runs 100 ms of virtual time after it is started.
 *
 * Two deliberate choices, both documented in docs/model.md:
 * - The factorial runs on a host thread in QEMU; the model completes it
 *   before the next operation (targets wait for status bit 0 to clear).
 * - A DMA outside the buffer is skipped here. QEMU 7.2 aborts on it
 *   (hw_error), with an off-by-one that also rejects the buffer's last
 *   byte; the QEMU target reports that as a crash.
 */
import { PciFunction } from '../function.ts';
import { installBar, layoutBars } from '../bar.ts';
import { installCaps } from '../capabilities.ts';
import { initQemuType0 } from '../header-init.ts';
import type { DeviceSpec } from '../../topology/types.ts';
import type { DrivenDma } from '../dma-engine.ts';

export const EDU_VENDOR = 0x1234;
export const EDU_DEVICE = 0x11e8;
export const EDU_DMA_BASE = 0x40000;
export const EDU_DMA_SIZE = 0x1000;
/** The dma_mask property's default: 28 address bits on the RAM side. */
export const EDU_DMA_MASK = 0x0fffffff;
const DMA_DELAY_NS = 100_000_000;
const M64 = 0xffffffffffffffffn;

const CMD_START = 1n;
const CMD_TO_RAM = 2n;
const CMD_IRQ = 4n;
const STATUS_COMPUTING = 1;
const STATUS_IRQFACT = 0x80;
const IRQ_FACT = 0x1;
const IRQ_DMA = 0x100;

interface EduState {
  /** When the pending DMA completes, or null. */
  deadline: number | null;
  /** Bit i: DMA register 0x80 + 8i holds a driver's value (a dma op drove the engine) until written. */
  driven: number;
  addr4: number;
  fact: number;
  status: number;
  irqStatus: number;
  src: bigint;
  dst: bigint;
  cnt: bigint;
  cmd: bigint;
  buf: Uint8Array;
}

const fresh = (): EduState => ({ deadline: null, driven: 0, addr4: 0, fact: 0, status: 0, irqStatus: 0, src: 0n, dst: 0n, cnt: 0n, cmd: 0n, buf: new Uint8Array(EDU_DMA_SIZE) });

/** n! with 32-bit wrap-around, as edu's worker thread computes it. */
export function factorial32(n: number): number {
  let r = 1;
  for (let i = n >>> 0; i > 1; i--) {
    r = Math.imul(r, i) >>> 0;
    if (r === 0) return 0;
  }
  return r >>> 0;
}

/** What the DMA engine has done, for coverage. */
export interface EduStats {
  toRam: number;
  fromRam: number;
  skipped: number;
}

export class Edu extends PciFunction implements DrivenDma {
  readonly engineRegion = 0;
  /** Identification (a driver checks it), source, destination, count, command. */
  readonly engineRegisters = [0x00, 0x80, 0x88, 0x90, 0x98];
  private s: EduState = fresh();
  readonly stats: EduStats = { toRam: 0, fromRam: 0, skipped: 0 };

  constructor(spec: DeviceSpec, root: number, uid: number, multifunction: boolean) {
    super(spec, root, false, multifunction);
    this.uid = uid;
    if (!this.templated) {
      initQemuType0(this.cfg, { vendor: EDU_VENDOR, device: EDU_DEVICE, classCode: 0x00ff00, revision: 0x10, pin: 1, multifunction });
      const [bar0] = layoutBars([{ kind: 'mem32', size: 0x100000 }]);
      installBar(this.cfg, bar0);
      this.bars[0] = bar0;
      this.caps = installCaps(this.cfg, { msi: { vectors: 1, is64: true, pvm: false } });
      this.cfg.keepOnReset(0x4e, 0xb2);
    }
    this.seal();
  }

  /** Only 4- and 8-byte aligned accesses reach the device; others read 0 (memory core rejects them). */
  protected read(_region: number, off: number, size: number): bigint {
    if ((size !== 4 && size !== 8) || off % size !== 0) return 0n;
    const ones = size === 8 ? M64 : 0xffffffffn;
    if (off < 0x80 && size !== 4) return ones;
    const s = this.s;
    let v: bigint;
    switch (off) {
      case 0x00: v = 0x010000edn; break;
      case 0x04: v = BigInt(s.addr4); break;
      case 0x08: v = BigInt(s.fact); break;
      case 0x20: v = BigInt(s.status); break;
      case 0x24: v = BigInt(s.irqStatus); break;
      case 0x80: v = s.src; break;
      case 0x88: v = s.dst; break;
      case 0x90: v = s.cnt; break;
      case 0x98: v = s.cmd; break;
      default: return ones;
    }
    return v & ones;
  }

  protected write(_region: number, off: number, size: number, value: bigint): void {
    if ((size !== 4 && size !== 8) || off % size !== 0) return;
    if (off < 0x80 && size !== 4) return;
    const s = this.s;
    const v32 = Number(value & 0xffffffffn);
    const busy = (s.cmd & CMD_START) !== 0n;
    switch (off) {
      case 0x04:
        s.addr4 = ~v32 >>> 0;
        break;
      case 0x08:
        if ((s.status & STATUS_COMPUTING) !== 0) break;
        s.fact = v32;
        s.status |= STATUS_COMPUTING;
        this.finishFactorial();
        break;
      case 0x20:
        s.status = (v32 & STATUS_IRQFACT) !== 0 ? s.status | STATUS_IRQFACT : s.status & ~STATUS_IRQFACT;
        break;
      case 0x60:
        this.raise(v32);
        break;
      case 0x64:
        this.lower(v32);
        break;
      case 0x80:
        if (!busy) [s.src, s.driven] = [value, s.driven & ~1];
        break;
      case 0x88:
        if (!busy) [s.dst, s.driven] = [value, s.driven & ~2];
        break;
      case 0x90:
        if (!busy) [s.cnt, s.driven] = [value, s.driven & ~4];
        break;
      case 0x98:
        if ((value & CMD_START) === 0n || busy) break;
        s.cmd = value;
        s.driven &= ~8;
        s.deadline = this.transferDeadline(this.host.now());
        this.host.schedule(this, s.deadline, () => this.dmaTimer());
        break;
    }
  }

  private finishFactorial(): void {
    const s = this.s;
    s.fact = factorial32(s.fact);
    s.status &= ~STATUS_COMPUTING;
    if ((s.status & STATUS_IRQFACT) !== 0) this.raise(IRQ_FACT);
  }

  /** 0x60: OR into the interrupt status, then signal (MSI if enabled, else assert INTx). */
  private raise(v: number): void {
    this.s.irqStatus = (this.s.irqStatus | v) >>> 0;
    if (this.s.irqStatus !== 0) this.signal(0);
  }

  /** 0x64: clear bits; INTx drops when nothing is left and MSI is off. */
  private lower(v: number): void {
    this.s.irqStatus = (this.s.irqStatus & ~v) >>> 0;
    if (this.s.irqStatus === 0 && !this.msiEnabled()) this.lowerIntx();
  }

  private inBuffer(addr: bigint, cnt: bigint): boolean {
    return addr >= BigInt(EDU_DMA_BASE) && cnt >= 1n && addr + cnt <= BigInt(EDU_DMA_BASE + EDU_DMA_SIZE);
  }

  private dmaTimer(): void {
    const s = this.s;
    s.deadline = null;
    if ((s.cmd & CMD_START) === 0n) return;
    const buffer = (s.cmd & CMD_TO_RAM) !== 0n ? s.src : s.dst;
    if (this.host.eduDmaAborts(buffer, s.cnt)) {
      this.host.abort(`EDU: DMA range ${buffer.toString(16)}+${s.cnt.toString(16)} out of bounds`);
      return;
    }
    if ((s.cmd & CMD_TO_RAM) !== 0n) {
      if (this.inBuffer(s.src, s.cnt)) {
        this.stats.toRam++;
        const o = Number(s.src) - EDU_DMA_BASE;
        this.host.dma(this, Number(s.dst & BigInt(EDU_DMA_MASK)), Number(s.cnt), s.buf.slice(o, o + Number(s.cnt)));
      }
    } else if (this.inBuffer(s.dst, s.cnt)) {
      this.stats.fromRam++;
      const o = Number(s.dst) - EDU_DMA_BASE;
      const r = this.host.dma(this, Number(s.src & BigInt(EDU_DMA_MASK)), Number(s.cnt), null);
      // A failed read (no Bus Master, IOMMU fault) leaves zeros, as QEMU's unassigned reads do.
      s.buf.set(r.ok && r.data !== undefined ? r.data : new Uint8Array(Number(s.cnt)), o);
    } else {
      this.stats.skipped++;
    }
    s.cmd &= ~CMD_START;
    if ((s.cmd & CMD_IRQ) !== 0n) this.raise(IRQ_DMA);
  }

  // ---- driven by dma.read / dma.write (dma-engine.ts) ----------------------

  pendingDeadline(): number | null {
    return this.s.deadline;
  }
  /** Virtual time in whole milliseconds, plus 100 ms (edu arms its timer in ms). */
  transferDeadline(now: number): number {
    return Math.floor(now / 1e6) * 1e6 + DMA_DELAY_NS;
  }
  driven(): void {
    this.s.driven = 0xf;
  }
  /** A driver moves data through the start of the buffer. */
  transferBuffer(len: number): { addr: bigint; count: bigint } {
    return { addr: BigInt(EDU_DMA_BASE), count: BigInt(len) };
  }
  override unknownRegionRead(region: number, off: number, size: number): boolean {
    // Source, destination, count and command hold the driver's transfer until each is written again.
    return region === 0 && (size === 4 || size === 8) && off >= 0x80 && off < 0xa0 && (this.s.driven & (1 << ((off - 0x80) >> 3))) !== 0;
  }

  /**
   * The dma.read / dma.write operations on edu use its engine: RAM to the
   * start of the buffer, or the start of the buffer to RAM.
   */
  override dmaAddress(iova: number): number {
    return iova & EDU_DMA_MASK;
  }
  override dmaBuffer(data: Uint8Array): void {
    this.s.buf.set(data.subarray(0, EDU_DMA_SIZE), 0);
  }

  // edu has no reset handler: its registers, buffer and timer survive a reset.

  protected override snapshotState(): unknown {
    return { ...this.s, buf: this.s.buf.slice() };
  }
  protected override restoreState(st: unknown): void {
    const x = st as EduState;
    this.s = { ...x, buf: x.buf.slice() };
  }
}
