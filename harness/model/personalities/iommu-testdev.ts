/**
 * QEMU's iommu-testdev (hw/misc/iommu-testdev.c, QEMU 11), a DMA master
 * for testing IOMMUs: conventional PCI, 1b36:0005 (pci-testdev's IDs),
 * no capabilities, no interrupt pin, one 4 KiB memory BAR of 4-byte
 * registers. A driver sets the IOVA, the length and a read-back address,
 * arms the doorbell, then reads offset 0: that read writes the pattern
 * 0x12345678 (little-endian, repeated) at the IOVA through the device's
 * IOMMU address space, reads the read-back address from system memory,
 * compares, and leaves a result code.
 *
 * What the model follows of QEMU's device:
 * - it takes the IOMMU address space directly, not the bus-master alias:
 *   its DMA ignores Bus Master Enable (docs/model.md says so too);
 * - the write runs page by page (QEMU's address-space write), so pages
 *   that translate land even when another page of the transfer faults;
 * - registers take 4-byte aligned accesses only; QEMU's memory core cuts a
 *   CPU access into pieces of at most 4 bytes, aligned to their address
 *   (physmem.c memory_access_size): an 8-byte access at a multiple of 4
 *   is two register accesses, other pieces read 0 and write nothing.
 *
 * isoroot drives and models transfers of at most ITD_MAX_LEN bytes: QEMU
 * allocates the length twice, so a guest can make it allocate 8 GiB. The
 * QEMU target refuses a longer length at the register write (harness
 * refusal), and the model predicts that refusal (Model.mmio, rule
 * harness.itd-length).
 */
import { PciFunction } from '../function.ts';
import { installBar, layoutBars } from '../bar.ts';
import { initQemuType0 } from '../header-init.ts';
import type { DeviceSpec } from '../../topology/types.ts';
import type { Observation } from '../../ops/observation.ts';

export const ITD_VENDOR = 0x1b36;
export const ITD_DEVICE = 0x0005;
/** Register offsets of BAR0 (include/hw/misc/iommu-testdev.h). */
export const ITD = { trigger: 0x00, iovaLo: 0x04, iovaHi: 0x08, len: 0x0c, result: 0x10, doorbell: 0x14, attrs: 0x18, gpaLo: 0x1c, gpaHi: 0x20 } as const;
export const ITD_PATTERN = 0x12345678;
/** RESULT values. */
export const ITD_RESULT = { idle: 0xffffffff, busy: 0xfffffffe, badLen: 0xdead0001, txFail: 0xdead0002, readFail: 0xdead0003, mismatch: 0xdead0004, notArmed: 0xdead0005, badAttrs: 0xdead0006 } as const;
/** The longest transfer isoroot drives or models (see above). */
export const ITD_MAX_LEN = 0x10000;
/** ATTRS after reset: space 1 (non-secure), not marked valid. */
const ATTRS_RESET = 1 << 1;

/** The pattern's bytes for a transfer of `len`. */
export function itdPattern(len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (ITD_PATTERN >>> (8 * (i % 4))) & 0xff;
  return out;
}

/** Whether `data` is what the device writes for a transfer of its length (the only data a dma.write of it can carry). */
export function isItdPattern(data: Uint8Array): boolean {
  return data.every((b, i) => b === ((ITD_PATTERN >>> (8 * (i % 4))) & 0xff));
}

/**
 * An access as QEMU's memory core delivers it (physmem.c memory_access_size):
 * pieces of at most 4 bytes, each no larger than its address's alignment.
 * The 4-byte pieces, the only ones that reach a register: their offsets
 * and where their bytes sit in the access's value.
 */
export function registerPieces(off: number, size: number): [number, bigint][] {
  const out: [number, bigint][] = [];
  for (let at = off, rest = size; rest > 0; ) {
    let l = Math.min(rest, 4);
    const align = at & -at;
    if (align !== 0 && align < l) l = align;
    l = l >= 4 ? 4 : l >= 2 ? 2 : 1;
    if (l === 4) out.push([at, BigInt(8 * (at - off))]);
    at += l;
    rest -= l;
  }
  return out;
}

/** The length a write of `value` at `off` would set, beyond ITD_MAX_LEN, or null (rule harness.itd-length). */
export function overreachingLength(off: number, size: number, value: bigint): number | null {
  const piece = registerPieces(off, size).find(([at]) => at === ITD.len);
  if (piece === undefined) return null;
  const len = Number((value >> piece[1]) & 0xffffffffn);
  return len > ITD_MAX_LEN ? len : null;
}

/** Whether ATTRS asks for a secure space while saying non-secure, or the reverse (an ARM space other than 0 or 1 is consistent). */
function inconsistentAttrs(a: number): boolean {
  if ((a & 8) === 0) return false;
  const space = (a >>> 1) & 3;
  return (space === 0 || space === 1) && (a & 1) !== (space === 0 ? 1 : 0);
}

interface ItdState {
  /** The 64-bit address registers as their 32-bit halves (a number holds 53 bits). */
  iovaLo: number;
  iovaHi: number;
  gpaLo: number;
  gpaHi: number;
  len: number;
  result: number;
  armed: boolean;
  attrs: number;
  /** RESULT holds what the model cannot know (a read-back the model does not predict), until written. */
  resultUnknown: boolean;
}

const fresh = (): ItdState => ({ iovaLo: 0, iovaHi: 0, gpaLo: 0, gpaHi: 0, len: 0, result: ITD_RESULT.idle, armed: false, attrs: ATTRS_RESET, resultUnknown: false });

/** What a transfer did, as the machine reports it (Model.pagedWrite). */
export interface PagedOutcome {
  /** Every page landed. */
  ok: boolean;
  /** Whether it did is not known (a stale translation may have been taken, or a page hit something other than RAM). */
  unknown: boolean;
  /** As a driver sees it: ok, or a fault with the reason VT-d records (the first translation fault), else no-memory. */
  obs: Observation;
}

/** What iommu-testdev asks of the machine beyond DeviceHost: a write of its own kind. */
export interface ItdHost {
  pagedWrite(fn: PciFunction, iova: number, data: Uint8Array, blind: boolean): PagedOutcome;
  /** System memory as the read-back reads it: the bytes, or null where the model does not know them (not RAM, or RAM a device may have written). */
  systemRead(fn: PciFunction, gpa: number, len: number): Uint8Array | null;
}

export class IommuTestdev extends PciFunction {
  private s: ItdState = fresh();
  /** Triggers run, for coverage. */
  triggers = 0;

  constructor(spec: DeviceSpec, root: number, uid: number, multifunction: boolean) {
    super(spec, root, false, multifunction);
    this.uid = uid;
    if (!this.templated) {
      initQemuType0(this.cfg, { vendor: ITD_VENDOR, device: ITD_DEVICE, classCode: 0x00ff00, revision: 0, pin: 0, multifunction });
      const [bar0] = layoutBars([{ kind: 'mem32', size: 0x1000 }]);
      installBar(this.cfg, bar0);
      this.bars[0] = bar0;
      this.cfg.keepOnReset(0x40, 0xc0);
    }
    this.seal();
  }

  private get itdHost(): ItdHost {
    return this.host as unknown as ItdHost;
  }

  /** The length register: what a transfer would move. */
  get length(): number {
    return this.s.len;
  }

  protected read(_region: number, off: number, size: number): bigint {
    return this.pieces(off, size, (at) => this.register(at, true), null);
  }

  private pieces(off: number, size: number, each: (at: number) => bigint, value: bigint | null): bigint {
    let v = 0n;
    for (const [at, shift] of registerPieces(off, size)) {
      if (value === null) v |= each(at) << shift;
      else this.store(at, Number((value >> shift) & 0xffffffffn));
    }
    return v;
  }

  /** A 4-byte register read; `trigger`: a read of offset 0 runs the transfer (not when only weighing the read). */
  private register(off: number, trigger: boolean): bigint {
    const s = this.s;
    switch (off) {
      case ITD.trigger:
        if (trigger) this.run(true);
        return 0n;
      case ITD.iovaLo: return BigInt(s.iovaLo);
      case ITD.iovaHi: return BigInt(s.iovaHi);
      case ITD.gpaLo: return BigInt(s.gpaLo);
      case ITD.gpaHi: return BigInt(s.gpaHi);
      case ITD.len: return BigInt(s.len);
      case ITD.result: return BigInt(s.result);
      case ITD.attrs: return BigInt(s.attrs);
      default: return 0n;
    }
  }

  protected write(_region: number, off: number, size: number, value: bigint): void {
    this.pieces(off, size, () => 0n, value);
  }

  private store(off: number, v: number): void {
    const s = this.s;
    switch (off) {
      case ITD.iovaLo: s.iovaLo = v; break;
      case ITD.iovaHi: s.iovaHi = v; break;
      case ITD.gpaLo: s.gpaLo = v; break;
      case ITD.gpaHi: s.gpaHi = v; break;
      case ITD.len: s.len = v; break;
      case ITD.result: [s.result, s.resultUnknown] = [v, false]; break;
      case ITD.doorbell:
        s.armed = (v & 1) !== 0;
        [s.result, s.resultUnknown] = [s.armed ? ITD_RESULT.busy : ITD_RESULT.idle, false];
        break;
      case ITD.attrs: s.attrs = v; break;
    }
  }

  /**
   * A read of the trigger register: the DMA, then the read-back. `blind`:
   * the op that triggers it observes only the register read (a driver's
   * dma.write observes the outcome).
   */
  private run(blind: boolean): PagedOutcome | null {
    const s = this.s;
    const done = (result: number, unknown = false): void => {
      [s.result, s.resultUnknown, s.armed] = [result, unknown, false];
    };
    if (!s.armed) {
      done(ITD_RESULT.notArmed);
      return null;
    }
    if (s.len === 0) {
      done(ITD_RESULT.badLen);
      return null;
    }
    if (inconsistentAttrs(s.attrs)) {
      done(ITD_RESULT.badAttrs);
      return null;
    }
    this.triggers++;
    // Above 2^53 the sum is not exact, but every such address is beyond memory and beyond the IOMMU's width alike.
    const w = this.itdHost.pagedWrite(this, s.iovaHi * 2 ** 32 + s.iovaLo, itdPattern(s.len), blind);
    if (!w.ok) {
      done(ITD_RESULT.txFail, w.unknown);
      return w;
    }
    const back = this.itdHost.systemRead(this, s.gpaHi * 2 ** 32 + s.gpaLo, s.len);
    if (back === null) done(ITD_RESULT.mismatch, true);
    else done(isItdPattern(back) ? 0 : ITD_RESULT.mismatch, w.unknown);
    return w;
  }

  /**
   * A driver's dma.write: IOVA, length, a read-back address of its own and
   * the default ATTRS written, armed, triggered, and the registers it
   * changed put back (the doorbell ends disarmed, as a trigger leaves it).
   */
  driverWrite(iova: number, len: number): PagedOutcome {
    const saved = { ...this.s };
    this.s = { ...saved, iovaLo: iova % 2 ** 32, iovaHi: Math.floor(iova / 2 ** 32), len, attrs: ATTRS_RESET, armed: true, result: ITD_RESULT.busy };
    const w = this.run(false)!;
    this.s = { ...saved, armed: false };
    return w;
  }

  /** The trigger reads 0, and only a read that is delivered runs the transfer. */
  override peekRead(_region: number, off: number, size: number): bigint {
    return this.pieces(off, size, (at) => this.register(at, false), null);
  }

  override unknownRegionRead(region: number, off: number, size: number): boolean {
    return region === 0 && this.s.resultUnknown && off <= ITD.result && ITD.result + 4 <= off + size && (off % 4 === 0 || size === 8);
  }

  // Its reset handler (a legacy reset) clears every register.
  protected override resetState(): void {
    this.s = fresh();
  }
  protected override snapshotState(): unknown {
    return { ...this.s };
  }
  protected override restoreState(st: unknown): void {
    this.s = { ...(st as ItdState) };
  }
}
