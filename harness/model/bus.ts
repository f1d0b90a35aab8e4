/** A PCI bus segment: up to 256 functions indexed by devfn. */
import type { PciFunction } from './function.ts';

export class Bus {
  private readonly byDevfn = new Map<number, PciFunction>();
  /** The present functions in devfn order, for walks that should not visit 256 slots. */
  private present: PciFunction[] = [];

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

  at(devfn: number): PciFunction | undefined {
    return this.byDevfn.get(devfn);
  }

  add(fn: PciFunction): void {
    this.byDevfn.set(fn.devfn, fn);
    this.present = this.present.filter((f) => f.devfn !== fn.devfn);
    this.present.push(fn);
    this.present.sort((a, b) => a.devfn - b.devfn);
  }

  remove(fn: PciFunction): void {
    if (this.byDevfn.get(fn.devfn) === fn) this.byDevfn.delete(fn.devfn);
    this.present = this.present.filter((f) => f !== fn);
  }

  get empty(): boolean {
    return this.present.length === 0;
  }

  functions(): readonly PciFunction[] {
    return this.present;
  }
}
