/**
 * A function the model does not emulate: a chipset function of the
 * target's platform, or a device named by the target's own model name.
 * Its identity registers are predicted when the topology gives them;
 * every other register is unknown, so reads of it predict nothing and
 * writes to it are dropped here (generators keep writes away from it).
 */
import { PciFunction } from '../function.ts';
import * as H from '../header.ts';
import type { DeviceSpec } from '../../topology/types.ts';

export class Opaque extends PciFunction {
  /** Bytes of config space whose value is known. */
  private readonly known = new Uint8Array(0x100);

  constructor(spec: DeviceSpec, root: number, uid: number, multifunction: boolean) {
    super(spec, root, false, multifunction);
    this.uid = uid;
    const id = spec.identity;
    if (id !== undefined) {
      const set = (off: number, size: number, v: number): void => {
        if (!this.templated) this.cfg.set(off, size, v);
        this.known.fill(1, off, off + size);
      };
      set(H.VENDOR_ID, 2, id.vendor);
      set(H.DEVICE_ID, 2, id.device);
      set(H.CLASS_PROG, 3, id.classCode);
      if (id.revision !== undefined) set(H.REVISION, 1, id.revision);
      set(H.HEADER_TYPE, 1, id.headerType ?? (multifunction ? H.HEADER_MULTIFUNCTION : 0));
    }
    this.seal();
  }

  /** The identity registers are known, byte by byte; nothing else is. */
  override configKnown(off: number, size: number): bigint {
    let m = 0n;
    for (let i = 0; i < size; i++) if (off + i < this.known.length && this.known[off + i] === 1) m |= 0xffn << BigInt(8 * i);
    return m;
  }

  override unknownRegionRead(): boolean {
    return true;
  }

  override configWrite(): void {}
  protected read(): bigint {
    return 0n;
  }
  protected write(): void {}
}
