/**
 * An Intel VT-d driver for QEMU's intel-iommu, in legacy mode (VT-d spec
 * §3.4 and §9): a root table, one context table per bus, and per domain a
 * 3-level second-level page table (39-bit addresses), all written into
 * guest RAM the model does not have (the harness's reserved range), and
 * the registers programmed through qtest: set the root table pointer,
 * enable translation, invalidate the context cache and the IOTLB
 * (register-based, global), read and clear fault records.
 *
 * The driver keeps each domain's mappings with the dma.map rules
 * (ops/dma-mappings.ts): refusals come from there, translation from QEMU.
 * Guest-physical pages outside the topology's RAM map to a zero page the
 * driver wipes after every DMA, so that QEMU, like the model, moves no
 * data there.
 */
import { MappingTable, type Mapping } from '../../ops/dma-mappings.ts';
import type { Reason } from '../../ops/observation.ts';
import { Q, type QtestChannel } from './qtest.ts';
import { FECTL_IM, REG, SRTP, TE, takeFaultCode, untilBit, vtdWrite } from './vtd-regs.ts';
import { PAGE, PageTables, TableArea, secondStage } from './vtd-tables.ts';


/** Register-based invalidation (CCMD, IOTLB registers): the invalidate bit, and global granularity. */
const INVALIDATE = 1n << 63n;
const GLOBAL_CC = 1n << 61n;
const GLOBAL_TLB = 1n << 60n;

/** Fault reasons (VT-d §7.2.1): present bits of root and context entries. */
const FR_ROOT_ENTRY_P = 1;
const FR_CONTEXT_ENTRY_P = 2;

/** AW = 1: 39-bit, 3-level tables (VT-d §9.3). */
const AW_39 = 1n;
/** The IOVA reach of the target's DMA masters: edu drives 28 address bits. */
export const IOVA_REACH = 2 ** 28;

export interface VtdLayout {
  /** Guest-physical pages for tables: [base, base + size). */
  tablesBase: number;
  tablesSize: number;
  /** The topology's RAM: pages outside [0, ram) map to the zero page. */
  ram: number;
}

interface Domain {
  did: number;
  map: MappingTable;
  tables: PageTables;
}

const SS_39 = secondStage(3);

/** What a DMA's fault record said: the model's reason, where it names one, and VT-d's fault reason code. */
export type VtdFault = { reason: Reason | null; code: number } | null;

export class Vtd {
  private readonly area: TableArea;
  private root = 0;
  private readonly contexts = new Map<number, number>();
  /** What each requester ID's context entry holds (a domain id), as written. */
  private readonly entries = new Map<number, number>();
  private domains: Domain[] = [];
  private harness: Domain | null = null;
  private readonly count: number;
  private zero = 0;

  constructor(
    private readonly q: QtestChannel,
    private readonly layout: VtdLayout,
    domains: number,
    private readonly timeoutMs: number,
  ) {
    this.area = new TableArea(layout.tablesBase, layout.tablesSize);
    this.count = domains;
  }

  private page(cmds: string[]): number {
    return this.area.page(cmds);
  }

  private until(off: number, size: 4 | 8, bit: bigint, want: boolean, what: string): Promise<void> {
    return untilBit(this.q, off, size, bit, want, what, this.timeoutMs);
  }

  /** Root table, the zero page, the harness's own domain; then translation on. */
  async init(scratch: { base: number; size: number }): Promise<void> {
    const cmds: string[] = [];
    this.root = this.page(cmds);
    this.zero = this.page(cmds);
    for (let i = 0; i < this.count; i++) this.domains.push({ did: i + 1, map: new MappingTable(), tables: new PageTables(this.area, SS_39, cmds) });
    // The harness's domain maps its scratch RAM one to one (edu's buffer moves through it).
    const h: Domain = { did: 0xffff, map: new MappingTable(), tables: new PageTables(this.area, SS_39, cmds) };
    this.harness = h;
    h.map.map({ iova: scratch.base, size: scratch.size, gpa: scratch.base, perm: 'rw' });
    cmds.push(...this.ptes(h, { iova: scratch.base, size: scratch.size, gpa: scratch.base, perm: 'rw' }, true));
    cmds.push(vtdWrite(REG.FECTL, 4, FECTL_IM), vtdWrite(REG.RTADDR, 8, BigInt(this.root)), vtdWrite(REG.GCMD, 4, SRTP));
    await this.q.call(cmds, this.timeoutMs);
    await this.until(REG.GSTS, 4, SRTP, true, 'setting the root table pointer');
    await this.q.call([vtdWrite(REG.GCMD, 4, TE)], this.timeoutMs);
    await this.until(REG.GSTS, 4, TE, true, 'enabling translation');
  }

  /** Entry writes for [m.iova, m.iova + m.size) within reach; `present` false clears them. */
  private ptes(d: Domain, m: Mapping, present: boolean): string[] {
    // The harness's own domain maps its scratch as it is; model domains see only the topology's RAM.
    return d.tables.entries(m, present, IOVA_REACH, (gpa) => (d === this.harness || gpa + PAGE <= this.layout.ram ? gpa : this.zero));
  }

  /** Sends entry writes (from map). */
  async apply(cmds: string[]): Promise<void> {
    await this.q.call(cmds, this.timeoutMs);
  }

  map(domain: number, m: Mapping): string[] | Reason {
    const d = this.domains[domain];
    if (d === undefined) return 'no-domain';
    const r = d.map.map(m);
    return r !== null ? r : this.ptes(d, m, true);
  }

  /** Clears the entries, then invalidates the IOTLB: a stale translation is the bug this catches. */
  async unmap(domain: number, iova: number, size: number): Promise<Reason | null> {
    const d = this.domains[domain];
    if (d === undefined) return 'no-domain';
    const gone = d.map.unmap(iova, size);
    if (typeof gone === 'string') return gone;
    await this.q.call(gone.flatMap((m) => this.ptes(d, m, false)), this.timeoutMs);
    await this.invalidate();
    return null;
  }

  private async invalidate(): Promise<void> {
    await this.q.call([vtdWrite(REG.CCMD, 8, INVALIDATE | GLOBAL_CC)], this.timeoutMs);
    await this.until(REG.CCMD, 8, INVALIDATE, false, 'context-cache invalidation');
    await this.q.call([vtdWrite(REG.IOTLB, 8, INVALIDATE | GLOBAL_TLB)], this.timeoutMs);
    await this.until(REG.IOTLB, 8, INVALIDATE, false, 'IOTLB invalidation');
  }

  /**
   * Points requester ID `rid` at a domain (index, or "harness"), or at
   * nothing (null), and invalidates; nothing to do when it already does.
   */
  async setContext(rid: number, domain: number | 'harness' | null): Promise<void> {
    const d = domain === null ? null : domain === 'harness' ? this.harness! : this.domains[domain];
    const did = d?.did ?? 0;
    if ((this.entries.get(rid) ?? 0) === did) return;
    const cmds: string[] = [];
    const bus = rid >> 8;
    let ct = this.contexts.get(bus);
    if (ct === undefined) {
      ct = this.page(cmds);
      this.contexts.set(bus, ct);
      cmds.push(Q.write(this.root + 16 * bus, 8, BigInt(ct) | 1n));
    }
    const entry = ct + 16 * (rid & 0xff);
    // Low: present, translation type 0 (second level only), table pointer. High: AW, domain id.
    cmds.push(Q.write(entry + 8, 8, d === null ? 0n : AW_39 | (BigInt(did) << 8n)), Q.write(entry, 8, d === null ? 0n : BigInt(d.tables.top) | 1n));
    await this.q.call(cmds, this.timeoutMs);
    if (did === 0) this.entries.delete(rid);
    else this.entries.set(rid, did);
    await this.invalidate();
  }

  /** Requester IDs whose context entry points at a domain. */
  get programmed(): number[] {
    return [...this.entries.keys()];
  }

  /** Takes the fault record of the last DMA, if any, and wipes the zero page. */
  async takeFault(): Promise<VtdFault> {
    const fr = await takeFaultCode(this.q, this.zero, PAGE, this.timeoutMs);
    if (fr === null) return null;
    return { reason: fr === FR_ROOT_ENTRY_P || fr === FR_CONTEXT_ENTRY_P ? 'no-domain' : null, code: fr };
  }
}
