/**
 * One function's configuration space: 4 KiB of registers, each bit
 * read-only, read-write or write-1-to-clear (PCI 3.0 §6.1; RW1C per §6.2.3).
 * Writes go through the masks; the personality is told which bytes changed.
 */
/**
 * What never changes once a function is built: its masks and reset values.
 * Functions built from the same description share one layout.
 */
export interface ConfigLayout {
  size: number;
  wmask: Uint8Array;
  w1cmask: Uint8Array;
  reset: Uint8Array;
  keep: readonly [number, number][];
}

/**
 * Per byte of a mask pair, whether the register holding it has no bit
 * software may write: 1 yes, 0 no, -1 not asked yet. Keyed by the write
 * mask, so that functions built from one layout share it; dropped when a
 * mask changes.
 */
const readOnlyRegs = new WeakMap<Uint8Array, Int8Array>();

export class ConfigSpace {
  /** Register bytes; shared with the layout's reset image until the first write (copy on write). */
  private bytes: Uint8Array;
  private owned: boolean;
  /** Bits software may write. */
  readonly wmask: Uint8Array;
  /** Bits software clears by writing 1. */
  readonly w1cmask: Uint8Array;
  /** Register values at reset, captured by seal(). */
  private resetValue: Uint8Array;
  /** Bytes a reset leaves alone (QEMU keeps device-specific config storage, for example). */
  private keep: [number, number][] = [];

  constructor(
    readonly size: number,
    layout?: ConfigLayout,
  ) {
    if (layout !== undefined) {
      this.bytes = layout.reset;
      this.owned = false;
      this.wmask = layout.wmask;
      this.w1cmask = layout.w1cmask;
      this.resetValue = layout.reset;
      this.keep = layout.keep as [number, number][];
      return;
    }
    this.bytes = new Uint8Array(size);
    this.owned = true;
    this.wmask = new Uint8Array(size);
    this.w1cmask = new Uint8Array(size);
    this.resetValue = this.bytes;
  }

  private own(): Uint8Array {
    if (!this.owned) {
      this.bytes = this.bytes.slice();
      this.owned = true;
    }
    return this.bytes;
  }

  /** The immutable part, for sharing with later functions of the same description. */
  layout(): ConfigLayout {
    return { size: this.size, wmask: this.wmask, w1cmask: this.w1cmask, reset: this.resetValue, keep: this.keep };
  }

  /** Little-endian read of 1, 2 or 4 bytes (PCI is little-endian, PCI 3.0 §3.2.2.3). */
  read(off: number, size: number): number {
    const b = this.bytes;
    if (size === 1) return b[off];
    if (size === 2) return b[off] | (b[off + 1] << 8);
    return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
  }

  /** A software write: read-only bits keep their value, RW1C bits clear where 1 is written. */
  write(off: number, size: number, value: number): void {
    const b = this.own();
    for (let i = 0; i < size; i++) {
      const v = (value >>> (8 * i)) & 0xff;
      const o = off + i;
      const w = this.wmask[o];
      const c = this.w1cmask[o];
      b[o] = ((b[o] & ~w) | (v & w)) & ~(v & c);
    }
  }

  /** Sets register bits directly (device side or construction): masks do not apply. */
  set(off: number, size: number, value: number): void {
    // Setting what is already there must not cost a copy of a shared image.
    if (!this.owned && this.read(off, size) === (size === 4 ? value >>> 0 : value & ((1 << (8 * size)) - 1))) return;
    const b = this.own();
    for (let i = 0; i < size; i++) b[off + i] = (value >>> (8 * i)) & 0xff;
  }

  /** Whether the register [start, start + len) holding byte `off` has no writable or RW1C bit (PCI 3.0 §6.1). */
  registerReadOnly(off: number, start: number, len: number): boolean {
    let c = readOnlyRegs.get(this.wmask);
    if (c === undefined) readOnlyRegs.set(this.wmask, (c = new Int8Array(this.size).fill(-1)));
    if (c[off] < 0) {
      let writable = false;
      for (let k = start; k < Math.min(start + len, this.size); k++) writable ||= (this.wmask[k] | this.w1cmask[k]) !== 0;
      c[off] = writable ? 0 : 1;
    }
    return c[off] === 1;
  }

  setMask(off: number, size: number, writable: number, w1c = 0): void {
    readOnlyRegs.delete(this.wmask);
    for (let i = 0; i < size; i++) {
      this.wmask[off + i] = (writable >>> (8 * i)) & 0xff;
      this.w1cmask[off + i] = (w1c >>> (8 * i)) & 0xff;
    }
  }

  /** Records the current registers as the reset state (called once after construction). */
  seal(): void {
    this.resetValue = this.bytes.slice();
  }

  /** Marks [off, off+len) as surviving reset. */
  keepOnReset(off: number, len: number): void {
    this.keep.push([off, len]);
  }

  /** Clears the masks of a range (capability headers and read-only fields). */
  clearMasks(off: number, len: number): void {
    readOnlyRegs.delete(this.wmask);
    this.wmask.fill(0, off, off + len);
    this.w1cmask.fill(0, off, off + len);
  }

  /** The ranges a reset leaves alone, with their power-on values: what a harness restores to make a used machine fresh. */
  keptOnReset(): { off: number; bytes: Uint8Array }[] {
    return this.keep.map(([off, len]) => ({ off, bytes: this.resetValue.slice(off, Math.min(off + len, this.size)) }));
  }

  /** Returns every register to its reset value (function-level reset, PCIe Base §6.6.2). */
  reset(): void {
    if (this.keep.length === 0) {
      this.bytes = this.resetValue;
      this.owned = false;
      return;
    }
    const kept = this.keep.map(([o, l]) => this.bytes.slice(o, o + l));
    const b = this.resetValue.slice();
    this.keep.forEach(([o], i) => b.set(kept[i], o));
    this.bytes = b;
    this.owned = true;
  }

  snapshot(): Uint8Array {
    return this.bytes.slice();
  }

  restore(s: Uint8Array): void {
    this.bytes = s.slice();
    this.owned = true;
  }
}
