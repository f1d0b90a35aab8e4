/**
 * An Intel VT-d driver for QEMU's intel-iommu in scalable mode (VT-d §3.4.3
 * and §9.4-9.6), written into the harness's reserved RAM and programmed
 * through qtest:
 * - a scalable-mode root table (RTADDR.TTM = 01) whose entries point to
 *   lower and upper context tables of 32-byte entries;
 * - PASID tables: a directory (20-bit PASIDs) and 64-entry leaf tables of
 *   64-byte entries. Devices of one PASID context share one table, so a
 *   PASID bound in it is bound for each of them; a device outside any
 *   context has a table of its own;
 * - per IOMMU domain, the same mappings in second-stage and first-stage
 *   tables (4-level), so that a PASID entry can use either;
 * - invalidation by queued descriptors only (vtd-queue.ts): once the queue
 *   is on, the register-based way is refused.
 *
 * Requests without a PASID, the only ones an emulated device issues, are
 * translated through PASID 0 (RID_PASID; ECAP.RPS = 0, so the context
 * entry's RID_PASID field is not used, §9.4).
 */
import { MappingTable, type Mapping } from '../../ops/dma-mappings.ts';
import type { Reason } from '../../ops/observation.ts';
import { Q, QtestError, type QtestChannel } from './qtest.ts';
import { FECTL_IM, QIE, REG, SRTP, TE, takeFaultCode, untilBit, vtdWrite } from './vtd-regs.ts';
import { InvalidationQueue, type Descriptor, type QueueResult } from './vtd-queue.ts';
import { FIRST_STAGE, PAGE, PageTables, TableArea, secondStage } from './vtd-tables.ts';
import { IOVA_REACH, type VtdFault, type VtdLayout } from './vtd.ts';

/** RTADDR.TTM = 01: scalable mode (§10.4.6). */
const TTM_SCALABLE = 1n << 10n;

/** PGTT (§9.6): first-stage only, second-stage only. */
const PGTT = { first: 1n, second: 2n } as const;
/** AW = 2: 48-bit, 4-level second-stage tables. */
const AW_48 = 2n;
/** PDTS = 7: a directory of 2^14 entries, every 20-bit PASID. */
const PDTS = 7;
const DIR_PAGES = (8 * 2 ** (PDTS + 7)) / PAGE;

export type Stage = 'first' | 'second';

/** What a PASID entry holds, as the driver wrote it. */
export interface PasidBinding {
  domain: number;
  stage: Stage;
}

/** How a PASID entry is cleared: its Present bit alone, or all of it. */
export type ClearHow = 'present' | 'zero';

interface Domain {
  did: number;
  map: MappingTable;
  ss: PageTables;
  fs: PageTables;
}

interface PasidTable {
  dir: number;
  /** Leaf tables by directory index. */
  leaves: Map<number, number>;
  entries: Map<number, PasidBinding>;
}

/**
 * Fault reasons (VT-d Appendix "Non-recoverable fault reasons", as QEMU
 * raises them) that name a model reason. A missing page and a missing
 * permission both come as a paging-entry fault (0x06 second-stage, 0x71
 * first-stage): the model tells them apart, as for the legacy driver.
 */
const FAULT_REASON: ReadonlyMap<number, Reason> = new Map<number, Reason>([
  [0x51, 'pasid-unbound'], // PASID directory entry not present
  [0x59, 'pasid-unbound'], // PASID table entry not present
  [0x5b, 'pasid-invalid'], // PASID table entry with an invalid field
]);

const ctxCacheGlobal: Descriptor = [0x1n | (1n << 4n), 0n];
const iotlbGlobal: Descriptor = [0x2n | (1n << 4n) | (3n << 6n), 0n];
const pasidCacheGlobal: Descriptor = [0x7n | (3n << 4n), 0n];

export class VtdScalable {
  private readonly area: TableArea;
  private readonly queue: InvalidationQueue;
  private root = 0;
  private zero = 0;
  /** Context-table pages by bus: lower (devfn 0-127) and upper. */
  private readonly contexts = new Map<number, [number, number]>();
  /** Which table each requester ID's context entry points at, as written. */
  private readonly entries = new Map<number, string>();
  private readonly tables = new Map<string, PasidTable>();
  private readonly domains: Domain[] = [];
  private harness: Domain | null = null;

  constructor(
    private readonly q: QtestChannel,
    private readonly layout: VtdLayout,
    private readonly count: number,
    private readonly timeoutMs: number,
    /** The stage the harness's own table translates through: one the IOMMU offers. */
    private readonly harnessStage: Stage,
  ) {
    this.area = new TableArea(layout.tablesBase, layout.tablesSize);
    this.queue = new InvalidationQueue(q, timeoutMs);
  }

  private domain(cmds: string[], did: number): Domain {
    return { did, map: new MappingTable(), ss: new PageTables(this.area, secondStage(4), cmds), fs: new PageTables(this.area, FIRST_STAGE, cmds) };
  }

  private until(bit: bigint, what: string): Promise<void> {
    return untilBit(this.q, REG.GSTS, 4, bit, true, what, this.timeoutMs);
  }

  /** Root table, the zero page, the domains and the harness's own table; then the queue, then translation. */
  async init(scratch: { base: number; size: number }): Promise<void> {
    const cmds: string[] = [];
    this.root = this.area.page(cmds);
    this.zero = this.area.page(cmds);
    for (let i = 0; i < this.count; i++) this.domains.push(this.domain(cmds, i + 1));
    // The harness's domain maps its scratch RAM one to one (edu's buffer moves through it), through a table of its own.
    const h = this.domain(cmds, 0xffff);
    this.harness = h;
    const m: Mapping = { iova: scratch.base, size: scratch.size, gpa: scratch.base, perm: 'rw' };
    h.map.map(m);
    cmds.push(...this.ptes(h, m, true));
    cmds.push(...this.writeEntry(this.table('harness', cmds), 0, { domain: -1, stage: this.harnessStage }, 'zero'));
    cmds.push(vtdWrite(REG.FECTL, 4, FECTL_IM), vtdWrite(REG.RTADDR, 8, BigInt(this.root) | TTM_SCALABLE), vtdWrite(REG.GCMD, 4, SRTP));
    await this.q.call(cmds, this.timeoutMs);
    await this.until(SRTP, 'setting the root table pointer');
    await this.queue.enable(this.area, 0n);
    await this.must([ctxCacheGlobal, pasidCacheGlobal, iotlbGlobal], 'the first global invalidation');
    await this.q.call([vtdWrite(REG.GCMD, 4, TE | QIE)], this.timeoutMs);
    await this.until(TE, 'enabling translation');
  }

  /** A batch the driver built: the descriptors are valid, so a halt is the target's doing (recovered, then thrown). */
  private async must(descs: readonly Descriptor[], what: string): Promise<void> {
    const r = await this.queue.submit(descs);
    if (!r.done) throw new QueueHalt(`intel-iommu refused a valid invalidation (${what}): ${r.message}`);
  }

  /** Submits descriptors as they are, reporting a halt (a test of the queue's recovery). */
  submitRaw(descs: readonly Descriptor[]): Promise<QueueResult> {
    return this.queue.submit(descs);
  }

  private ptes(d: Domain, m: Mapping, present: boolean): string[] {
    // The harness's own domain maps its scratch as it is; model domains see only the topology's RAM.
    const target = (gpa: number): number => (d === this.harness || gpa + PAGE <= this.layout.ram ? gpa : this.zero);
    return [...d.ss.entries(m, present, IOVA_REACH, target), ...d.fs.entries(m, present, IOVA_REACH, target)];
  }

  /** The PASID table of `key` (a context, a device, "harness"), its directory written on first use. */
  private table(key: string, cmds: string[]): PasidTable {
    let t = this.tables.get(key);
    if (t === undefined) {
      const dir = this.area.page(cmds);
      for (let i = 1; i < DIR_PAGES; i++) this.area.page(cmds);
      t = { dir, leaves: new Map(), entries: new Map() };
      this.tables.set(key, t);
      // RID_PASID's leaf (PASIDs 0-63) at once: PASID 0's entry exists, zero until written, whatever else the table holds.
      this.slot(t, 0, cmds);
    }
    return t;
  }

  /** The 64-byte entry of PASID `p` (its leaf table created on first use). */
  private slot(t: PasidTable, p: number, cmds: string[]): number {
    const di = p >> 6;
    let leaf = t.leaves.get(di);
    if (leaf === undefined) {
      leaf = this.area.page(cmds);
      t.leaves.set(di, leaf);
      cmds.push(Q.write(t.dir + 8 * di, 8, BigInt(leaf) | 1n));
    }
    return leaf + 64 * (p & 63);
  }

  /**
   * Writes PASID `p`'s entry: a binding (domain -1: the harness's), or
   * cleared `how`; `was`: the binding a clear of an entry not written yet
   * leaves its fields from.
   */
  private writeEntry(t: PasidTable, p: number, b: PasidBinding | null, how: ClearHow, was?: PasidBinding): string[] {
    const cmds: string[] = [];
    const at = this.slot(t, p, cmds);
    const d = b === null ? null : b.domain < 0 ? this.harness! : this.domains[b.domain];
    if (b === null || d === undefined || d === null) {
      const old = t.entries.get(p) ?? was;
      t.entries.delete(p);
      if (how === 'zero' || old === undefined) cmds.push(Q.memset(at, 64, 0));
      // Present only: every other field stays as the binding wrote it.
      else cmds.push(Q.writeBytes(at, this.entryBytes(old, false)));
      return cmds;
    }
    t.entries.set(p, b);
    cmds.push(Q.writeBytes(at, this.entryBytes(b, true)));
    return cmds;
  }

  private entryBytes(b: PasidBinding, present: boolean): Uint8Array {
    const d = b.domain < 0 ? this.harness! : this.domains[b.domain];
    const bytes = new Uint8Array(64);
    const v = new DataView(bytes.buffer);
    v.setBigUint64(0, (present ? 1n : 0n) | (AW_48 << 2n) | (PGTT[b.stage] << 6n) | BigInt(d.ss.top), true);
    v.setBigUint64(8, BigInt(d.did), true);
    // FLPM = 0: 4-level first-stage paging.
    v.setBigUint64(16, BigInt(d.fs.top), true);
    return bytes;
  }

  /** The binding PASID `p` of table `key` holds, as written. */
  binding(key: string, p: number): PasidBinding | undefined {
    return this.tables.get(key)?.entries.get(p);
  }

  /**
   * Binds or clears PASID `p` of table `key`, then invalidates the PASID
   * cache for it (PASID-selective, §6.5.2.3). A bind also invalidates the
   * IOTLB for it; a clear leaves that to pasid.invalidate.
   */
  async setPasid(key: string, p: number, b: PasidBinding | null, how: ClearHow = 'present', was?: PasidBinding): Promise<void> {
    const cmds: string[] = [];
    const t = this.table(key, cmds);
    const old = t.entries.get(p) ?? was;
    cmds.push(...this.writeEntry(t, p, b, how, was));
    await this.q.call(cmds, this.timeoutMs);
    const did = b !== null ? this.domains[b.domain].did : old !== undefined ? this.domains[old.domain].did : 0;
    const descs: Descriptor[] = [pasidCache(did, p)];
    if (b !== null) descs.push(...this.iotlb(b, p, null));
    await this.must(descs, `PASID ${p} of ${key}`);
  }

  /**
   * The IOTLB invalidation a binding's translations need (§6.5.2.4,
   * §6.5.2.6): PASID-based for first-stage, the IOTLB's own (by domain, or
   * one page) for second-stage.
   */
  private iotlb(b: PasidBinding, p: number, page: number | null): Descriptor[] {
    const did = BigInt(this.domains[b.domain].did);
    if (b.stage === 'first') return [piotlb(did, p, page)];
    // DR and DW: drain reads and writes (§6.5.2.4).
    return [[0x2n | ((page === null ? 2n : 3n) << 4n) | (3n << 6n) | (did << 16n), page === null ? 0n : BigInt(page)]];
  }

  /** pasid.invalidate: for the binding p had (or has), PASID-selective or one page. */
  async invalidate(b: PasidBinding, p: number, page: number | null): Promise<void> {
    await this.must(this.iotlb(b, p, page), `invalidating PASID ${p}`);
  }

  map(domain: number, m: Mapping): string[] | Reason {
    const d = this.domains[domain];
    if (d === undefined) return 'no-domain';
    const r = d.map.map(m);
    return r !== null ? r : this.ptes(d, m, true);
  }

  async apply(cmds: string[]): Promise<void> {
    await this.q.call(cmds, this.timeoutMs);
  }

  /**
   * Clears the entries, then invalidates what may cache them: the domain's
   * second-stage translations, and the first-stage ones of every PASID in
   * `firstStage` (P_IOTLB has no domain-wide form).
   */
  async unmap(domain: number, iova: number, size: number, firstStage: readonly number[]): Promise<Reason | null> {
    const d = this.domains[domain];
    if (d === undefined) return 'no-domain';
    const gone = d.map.unmap(iova, size);
    if (typeof gone === 'string') return gone;
    await this.q.call(gone.flatMap((m) => this.ptes(d, m, false)), this.timeoutMs);
    const did = BigInt(d.did);
    await this.must([[0x2n | (2n << 4n) | (3n << 6n) | (did << 16n), 0n], ...firstStage.map((p) => piotlb(did, p, null))], `unmapping from domain ${domain}`);
    return null;
  }

  /**
   * Points requester ID `rid`'s context entry at a PASID table (null:
   * none), and invalidates everything cached for it; nothing to do when it
   * already does.
   */
  async setContext(rid: number, key: string | null): Promise<void> {
    if ((this.entries.get(rid) ?? null) === key) return;
    const cmds: string[] = [];
    const bus = rid >> 8;
    let ct = this.contexts.get(bus);
    if (ct === undefined) {
      ct = [this.area.page(cmds), this.area.page(cmds)];
      this.contexts.set(bus, ct);
      cmds.push(Q.write(this.root + 16 * bus, 8, BigInt(ct[0]) | 1n), Q.write(this.root + 16 * bus + 8, 8, BigInt(ct[1]) | 1n));
    }
    const devfn = rid & 0xff;
    const entry = ct[devfn >> 7] + 32 * (devfn & 0x7f);
    const t = key === null ? null : this.table(key, cmds);
    cmds.push(Q.write(entry + 8, 8, 0n), Q.write(entry, 8, t === null ? 0n : BigInt(t.dir) | (BigInt(PDTS) << 9n) | 1n));
    await this.q.call(cmds, this.timeoutMs);
    if (key === null) this.entries.delete(rid);
    else this.entries.set(rid, key);
    await this.must([ctxCacheGlobal, pasidCacheGlobal, iotlbGlobal], `the context entry of ${rid.toString(16)}`);
  }

  /** Takes the fault record of the last DMA, if any, and wipes the zero page. */
  async takeFault(): Promise<VtdFault> {
    const code = await takeFaultCode(this.q, this.zero, PAGE, this.timeoutMs);
    return code === null ? null : { reason: FAULT_REASON.get(code) ?? null, code };
  }
}

/** The IOMMU halted its queue on descriptors isoroot built valid: QEMU's doing, reported with the op. */
export class QueueHalt extends QtestError {
  constructor(message: string) {
    super(message, 'protocol');
  }
}

/** PASID-cache invalidation, PASID-selective (§6.5.2.3: granularity 01). */
function pasidCache(did: number, p: number): Descriptor {
  return [0x7n | (1n << 4n) | (BigInt(did) << 16n) | (BigInt(p) << 32n), 0n];
}

/** PASID-based IOTLB invalidation (§6.5.2.6): granularity 2, all of the PASID; 3, one page (AM = 0). */
function piotlb(did: bigint, p: number, page: number | null): Descriptor {
  return [0x6n | ((page === null ? 2n : 3n) << 4n) | (did << 16n) | (BigInt(p) << 32n), page === null ? 0n : BigInt(page)];
}
