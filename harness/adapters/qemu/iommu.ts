/**
 * The IOMMU operations on QEMU: dma.map, dma.unmap, dma.attach and
 * dma.detach through the VT-d driver (vtd.ts), with the API's own checks
 * (the device exists and is present, the domain exists, one domain per
 * device), and the translation a DMA runs under. Context entries follow
 * the device: they are written at DMA time for its current requester ID
 * (its bus number can change under it), as a driver re-attaching would.
 */
import type { OpOf } from '../../ops/catalog.ts';
import type { Observation, Reason } from '../../ops/observation.ts';
import { walkDevices, type DeviceSpec, type Topology } from '../../topology/types.ts';
import type { Vtd, VtdFault } from './vtd.ts';
import type { Presence } from './presence.ts';

// The driver's mapping tables decide these, by the same rules the model uses: the harness's, not QEMU's.
const refused = (reason: Reason): Observation => ({ status: 'error', reason, source: 'harness' });
const ok = (): Observation => ({ status: 'ok', source: 'harness' });

/** What a DMA of one device needs from the IOMMU. */
export interface DmaTranslation {
  /** Points the device's requester ID at its domain (or at nothing). */
  real(rid: number): Promise<void>;
  /** Points it at the harness's scratch mapping for the duration of `body`. */
  harness<T>(rid: number, body: () => Promise<T>): Promise<T>;
  fault(): Promise<VtdFault>;
}

/** What the session asks of an IOMMU driver's session, legacy or scalable (iommu-scalable.ts). */
export interface Iommu {
  /** After a reset of the machine: a new driver instance (QEMU's IOMMU came back empty and disabled). */
  restart(): Promise<void>;
  plugged(dev: DeviceSpec): void;
  forget(id: string): void;
  apply(op: OpOf<'dma.map' | 'dma.unmap' | 'dma.attach' | 'dma.detach'>): Promise<Observation>;
  /** PASID operations; null: this IOMMU drives none (legacy mode). */
  pasid(op: OpOf<PasidOp>): Promise<Observation> | null;
  translation(dev: string): DmaTranslation;
}

export type PasidOp = 'pasid.alloc' | 'pasid.free' | 'pasid.bind' | 'pasid.unbind' | 'pasid.invalidate';

export class IommuSession implements Iommu {
  private readonly attached = new Map<string, number>();
  /** The requester ID each device's context entry was last written at. */
  private readonly ridOf = new Map<string, number>();

  constructor(
    private vtd: Vtd,
    private readonly driver: () => Promise<Vtd>,
    private readonly t: Topology,
    private readonly domains: number,
    private readonly presence: Presence,
  ) {
    for (const { dev } of walkDevices(t)) if (dev.domain !== undefined) this.attached.set(dev.id, dev.domain);
  }

  private device(id: string): Reason | null {
    return this.presence.problem(id);
  }

  /**
   * After a reset of the machine: a new driver instance (QEMU's IOMMU came
   * back empty and disabled). Mappings are gone, as the model's domains
   * are cleared; attachments stay, and are written again at the next DMA.
   */
  async restart(): Promise<void> {
    this.vtd = await this.driver();
    this.ridOf.clear();
  }

  pasid(): null {
    return null;
  }

  /** A device was hot-plugged: it is attached to its topology domain again, as the model's plug attaches it. */
  plugged(dev: DeviceSpec): void {
    if (dev.domain !== undefined) this.attached.set(dev.id, dev.domain);
  }

  /** A device went away: its attachment goes with it (as the model's unplug tears it down). */
  forget(id: string): void {
    this.attached.delete(id);
  }

  async apply(op: OpOf<'dma.map' | 'dma.unmap' | 'dma.attach' | 'dma.detach'>): Promise<Observation> {
    switch (op.op) {
      case 'dma.map': {
        if (op.root >= this.t.roots.length) return refused('no-device');
        const r = this.vtd.map(op.domain, { iova: op.iova, size: op.size, gpa: op.gpa, perm: op.perm });
        return typeof r === 'string' ? refused(r) : (await this.vtd.apply(r), ok());
      }
      case 'dma.unmap': {
        if (op.root >= this.t.roots.length) return refused('no-device');
        const r = await this.vtd.unmap(op.domain, op.iova, op.size);
        return r === null ? ok() : refused(r);
      }
      case 'dma.attach': {
        const bad = this.device(op.dev) ?? (op.domain >= this.domains ? 'no-domain' : null);
        if (bad !== null) return refused(bad);
        const cur = this.attached.get(op.dev);
        if (cur !== undefined && cur !== op.domain) return refused('busy');
        this.attached.set(op.dev, op.domain);
        return ok();
      }
      case 'dma.detach': {
        const bad = this.device(op.dev);
        if (bad !== null) return refused(bad);
        return this.attached.delete(op.dev) ? ok() : refused('no-domain');
      }
    }
  }

  translation(dev: string): DmaTranslation {
    return {
      real: async (rid) => {
        const old = this.ridOf.get(dev);
        if (old !== undefined && old !== rid) await this.vtd.setContext(old, null);
        this.ridOf.set(dev, rid);
        await this.vtd.setContext(rid, this.attached.get(dev) ?? null);
      },
      harness: async (rid, body) => {
        await this.vtd.setContext(rid, 'harness');
        try {
          return await body();
        } finally {
          await this.vtd.setContext(rid, this.attached.get(dev) ?? null);
        }
      },
      fault: () => this.vtd.takeFault(),
    };
  }
}
