/**
 * The IOMMU and PASID operations on QEMU's intel-iommu in scalable mode,
 * through the scalable-mode driver (vtd-scalable.ts). The API's own checks
 * (a present device, a domain that exists, a context for PASID ops, a
 * PASID allocated before it is bound) are the harness's, by the rules the
 * model's PasidContext keeps; what a binding does to DMA is QEMU's.
 *
 * Each device's context entry points to its PASID table: its PASID
 * context's, shared by the devices of the context, or one of its own.
 * RID_PASID (PASID 0) of that table is the attachment: dma.attach binds
 * it; pasid.bind and pasid.unbind of PASID 0 do so too, with a stage and
 * a way of clearing. Clearing an entry invalidates the PASID cache only:
 * the IOTLB keeps what it cached until pasid.invalidate (or dma.detach,
 * which invalidates all of it).
 */
import type { OpOf } from '../../ops/catalog.ts';
import type { Observation, Reason } from '../../ops/observation.ts';
import { PasidContext, stageOffered, type PasidBinding, type Stage } from '../../model/pasid-context.ts';
import { ownerOf, walkDevices, type DeviceSpec, type ScalableStages, type Topology } from '../../topology/types.ts';
import type { DmaTranslation, Iommu, PasidOp } from './iommu.ts';
import type { Presence } from './presence.ts';
import { QueueHalt, type VtdScalable } from './vtd-scalable.ts';

const refused = (reason: Reason): Observation => ({ status: 'error', reason, source: 'harness' });
const ok = (o: Partial<Observation> = {}): Observation => ({ status: 'ok', source: 'harness', ...o });

/**
 * An op whose invalidation QEMU refused: the op failed on the target (its
 * observation says so, with QEMU's words), and the queue runs again.
 */
async function halts(p: Promise<Observation>): Promise<Observation> {
  try {
    return await p;
  } catch (e) {
    if (!(e instanceof QueueHalt)) throw e;
    return { status: 'error', reason: 'unsupported', evidence: { events: [e.message] } };
  }
}

export class ScalableIommuSession implements Iommu {
  /** RID_PASID bindings by table key. */
  private readonly attached = new Map<string, PasidBinding>();
  /** The API's PASID contexts (allocation and bindings), by table key. */
  private readonly contexts = new Map<string, PasidContext>();
  /** What each PASID entry held when it was last cleared: what pasid.invalidate invalidates for it. */
  private readonly last = new Map<string, PasidBinding>();
  /** Per domain, the PASIDs ever bound to it through first-stage tables: an unmap invalidates each. */
  private readonly firstStage = new Map<number, Set<number>>();
  private readonly ridOf = new Map<string, number>();
  private readonly keys = new Map<string, string>();
  /** Every root's DMA goes through the one IOMMU (QEMU's expander roots share root 0's). */
  private readonly roots: number;

  constructor(
    private vtd: VtdScalable,
    private readonly driver: () => Promise<VtdScalable>,
    t: Topology,
    private readonly domains: number,
    private readonly presence: Presence,
    /** The stages the IOMMU translates through (QEMU: one). */
    private readonly offers: ScalableStages,
  ) {
    this.roots = t.roots.length;
    for (const { root, dev } of walkDevices(t)) {
      this.keys.set(dev.id, dev.pasidContext === undefined ? `dev:${dev.id}` : `ctx:${ownerOf(t, root, 'pasid')}:${dev.pasidContext}`);
      if (dev.present !== false) this.plugged(dev);
    }
  }

  private stage(asked: Stage | undefined): Stage | null {
    return stageOffered(this.offers, asked);
  }

  private key(dev: string): string {
    return this.keys.get(dev) ?? `dev:${dev}`;
  }

  /** The binding state after a reset: entries go with the tables, attachments stay and are written again. */
  async restart(): Promise<void> {
    this.vtd = await this.driver();
    this.ridOf.clear();
    this.contexts.clear();
    this.last.clear();
    this.firstStage.clear();
    const kept = [...this.attached];
    this.attached.clear();
    this.pendingRid.clear();
    this.unplugged.clear();
    for (const [key, b] of kept) await this.bindRid(key, b);
  }

  plugged(dev: DeviceSpec): void {
    const key = this.key(dev.id);
    if (dev.domain !== undefined && !this.attached.has(key)) this.attached.set(key, { domain: dev.domain, stage: this.stage(undefined)! });
    // Written when the device's context entry is (at its first DMA): the table exists by then.
    this.pendingRid.add(key);
  }

  /** RID_PASID bindings recorded but not written yet (at start, on plug). */
  private readonly pendingRid = new Set<string>();

  /** Tables of devices that went away attached: their RID_PASID entry is cleared before the table is used again. */
  private readonly unplugged = new Set<string>();

  /** A device went away: its own table's attachment goes with it (a shared table's stays, for the other devices). */
  forget(id: string): void {
    const key = this.key(id);
    if (key !== `dev:${id}` || !this.attached.delete(key)) return;
    this.pendingRid.delete(key);
    this.unplugged.add(key);
  }

  private async bindRid(key: string, b: PasidBinding): Promise<void> {
    this.attached.set(key, b);
    this.noteStage(b, 0);
    await this.vtd.setPasid(key, 0, b);
  }

  private noteStage(b: PasidBinding, p: number): void {
    if (b.stage !== 'first') return;
    let s = this.firstStage.get(b.domain);
    if (s === undefined) this.firstStage.set(b.domain, (s = new Set()));
    s.add(p);
  }

  private async clear(key: string, p: number, b: PasidBinding, how: 'present' | 'zero'): Promise<void> {
    this.last.set(`${key}/${p}`, b);
    await this.vtd.setPasid(key, p, null, how, b);
  }

  apply(op: OpOf<'dma.map' | 'dma.unmap' | 'dma.attach' | 'dma.detach'>): Promise<Observation> {
    return halts(this.iommuOp(op));
  }

  private async iommuOp(op: OpOf<'dma.map' | 'dma.unmap' | 'dma.attach' | 'dma.detach'>): Promise<Observation> {
    switch (op.op) {
      case 'dma.map': {
        if (op.root >= this.roots) return refused('no-device');
        const r = this.vtd.map(op.domain, { iova: op.iova, size: op.size, gpa: op.gpa, perm: op.perm });
        return typeof r === 'string' ? refused(r) : (await this.vtd.apply(r), ok());
      }
      case 'dma.unmap': {
        if (op.root >= this.roots) return refused('no-device');
        const r = await this.vtd.unmap(op.domain, op.iova, op.size, [...(this.firstStage.get(op.domain) ?? [])]);
        return r === null ? ok() : refused(r);
      }
      case 'dma.attach': {
        const bad = this.presence.problem(op.dev) ?? (op.domain >= this.domains ? 'no-domain' : null);
        if (bad !== null) return refused(bad);
        const key = this.key(op.dev);
        const cur = this.attached.get(key);
        if (cur !== undefined && cur.domain !== op.domain) return refused('busy');
        if (cur === undefined || this.pendingRid.has(key)) await this.writeRid(key, cur ?? { domain: op.domain, stage: this.stage(undefined)! });
        return ok();
      }
      case 'dma.detach': {
        const bad = this.presence.problem(op.dev);
        if (bad !== null) return refused(bad);
        const key = this.key(op.dev);
        const cur = this.attached.get(key);
        if (cur === undefined) return refused('no-domain');
        this.attached.delete(key);
        this.pendingRid.delete(key);
        await this.clear(key, 0, cur, 'present');
        await this.vtd.invalidate(cur, 0, null);
        return ok();
      }
    }
  }

  private async writeRid(key: string, b: PasidBinding): Promise<void> {
    this.pendingRid.delete(key);
    await this.bindRid(key, b);
  }

  /** The API's context of a device, created on first use; null: the device has none. */
  private context(dev: string): { key: string; ctx: PasidContext } | null {
    const key = this.key(dev);
    if (!key.startsWith('ctx:')) return null;
    let ctx = this.contexts.get(key);
    if (ctx === undefined) this.contexts.set(key, (ctx = new PasidContext(key, true)));
    return { key, ctx };
  }

  pasid(op: OpOf<PasidOp>): Promise<Observation> {
    return halts(this.pasidOp(op));
  }

  private async pasidOp(op: OpOf<PasidOp>): Promise<Observation> {
    const bad = this.presence.problem(op.dev);
    if (bad !== null) return refused(bad);
    const c = this.context(op.dev);
    if (c === null) return refused('no-context');
    const { key, ctx } = c;
    if (op.op !== 'pasid.alloc' && op.pasid === 0) return this.ridPasid(op, key);
    switch (op.op) {
      case 'pasid.alloc': {
        const p = ctx.alloc();
        return typeof p === 'string' ? refused(p) : ok({ value: BigInt(p) });
      }
      case 'pasid.free': {
        const gone = ctx.bindingsOf(op.pasid);
        const r = ctx.free(op.pasid, true);
        if (r !== null) return refused(r);
        for (const b of gone) await this.clear(key, op.pasid, b, op.clear ?? 'present');
        return ok();
      }
      case 'pasid.bind': {
        if (op.domain >= this.domains) return refused('no-domain');
        const stage = this.stage(op.stage);
        if (stage === null) return refused('unsupported');
        const b: PasidBinding = { domain: op.domain, stage };
        const r = ctx.bind(op.dev, op.pasid, b);
        if (r !== null) return refused(r);
        this.noteStage(b, op.pasid);
        await this.vtd.setPasid(key, op.pasid, b);
        return ok();
      }
      case 'pasid.unbind': {
        const b = ctx.unbind(op.dev, op.pasid);
        if (typeof b === 'string') return refused(b);
        await this.clear(key, op.pasid, b, op.clear ?? 'present');
        return ok();
      }
      case 'pasid.invalidate': {
        const now = ctx.lookup(op.dev, op.pasid);
        await this.invalidate(key, op.pasid, typeof now === 'string' ? undefined : now, op.iova);
        return ok();
      }
    }
  }

  /** An IOTLB invalidation for PASID p of a table: by its binding now, or the one it had; none ever: nothing cached. */
  private async invalidate(key: string, p: number, now: PasidBinding | undefined, iova: number | undefined): Promise<void> {
    const b = now ?? this.last.get(`${key}/${p}`);
    if (b !== undefined) await this.vtd.invalidate(b, p, iova === undefined ? null : iova - (iova % 4096));
  }

  /** PASID 0: RID_PASID, the attachment (the model's ridPasidOp). */
  private async ridPasid(op: OpOf<'pasid.free' | 'pasid.bind' | 'pasid.unbind' | 'pasid.invalidate'>, key: string): Promise<Observation> {
    switch (op.op) {
      case 'pasid.free':
        return refused('invalid-pasid');
      case 'pasid.bind': {
        if (op.domain >= this.domains) return refused('no-domain');
        const stage = this.stage(op.stage);
        if (stage === null) return refused('unsupported');
        if (this.attached.has(key)) return refused('bound');
        await this.writeRid(key, { domain: op.domain, stage });
        return ok();
      }
      case 'pasid.unbind': {
        const b = this.attached.get(key);
        if (b === undefined) return refused('not-bound');
        this.attached.delete(key);
        this.pendingRid.delete(key);
        await this.clear(key, 0, b, op.clear ?? 'present');
        return ok();
      }
      case 'pasid.invalidate':
        await this.invalidate(key, 0, this.attached.get(key), op.iova);
        return ok();
    }
  }

  translation(dev: string): DmaTranslation {
    const key = this.key(dev);
    const point = async (rid: number): Promise<void> => {
      const b = this.attached.get(key);
      const gone = this.vtd.binding(key, 0);
      // Unplugged while attached, and not attached again: what its entry held goes, as a detach would do it.
      if (this.unplugged.delete(key) && b === undefined && gone !== undefined) {
        await this.clear(key, 0, gone, 'present');
        await this.vtd.invalidate(gone, 0, null);
      }
      if (b !== undefined && this.pendingRid.has(key)) await this.writeRid(key, b);
      await this.vtd.setContext(rid, key);
    };
    return {
      real: async (rid) => {
        const old = this.ridOf.get(dev);
        if (old !== undefined && old !== rid) await this.vtd.setContext(old, null);
        this.ridOf.set(dev, rid);
        await point(rid);
      },
      harness: async (rid, body) => {
        await this.vtd.setContext(rid, 'harness');
        try {
          return await body();
        } finally {
          await point(rid);
        }
      },
      fault: () => this.vtd.takeFault(),
    };
  }
}
