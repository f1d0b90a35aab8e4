/** A PCI bus segment: up to 256 functions indexed by devfn. */
import type { PciFunction } from './function.ts';

export class Bus {
  readonly fns: (PciFunction | undefined)[] = [];
  constructor(
    /** The bridge above, or null for a root bus. */
    readonly upstream: PciFunction | null,
    readonly root: number,
    /**
     * A PCIe link below a root port carries device 0 only: other device
     * numbers get Unsupported Request (PCIe Base §7.3.1).
     */
    readonly link: boolean,
  ) {}

  *functions(): Generator<PciFunction> {
    for (const f of this.fns) if (f !== undefined) yield f;
  }
}
