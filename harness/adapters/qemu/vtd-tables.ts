/**
 * What every VT-d driver of the qemu target writes into guest RAM: pages
 * from the harness's reserved range (TableArea), and multi-level page
 * tables (PageTables) in either format VT-d walks:
 * - second-stage (VT-d §9.8): Read and Write bits in every entry, checked
 *   at every level;
 * - first-stage (VT-d §9.7, the IA-32e format): Present, R/W and U/S;
 *   a present entry is readable (no read bit).
 */
import { IOMMU_PAGE, type Mapping } from '../../ops/dma-mappings.ts';
import { Q, QtestError } from './qtest.ts';

export const PAGE = IOMMU_PAGE;

/** Zeroed pages out of [base, base + size), handed out in order; full is the harness's problem, not QEMU's. */
export class TableArea {
  private next: number;
  constructor(
    private readonly base: number,
    private readonly size: number,
  ) {
    this.next = base;
  }

  page(cmds: string[]): number {
    if (this.next + PAGE > this.base + this.size) throw new QtestError('the VT-d table area is full', 'protocol');
    const p = this.next;
    this.next += PAGE;
    cmds.push(Q.memset(p, PAGE, 0));
    return p;
  }
}

export interface TableFormat {
  /** Levels walked: 3 (39-bit) or 4 (48-bit). */
  levels: 3 | 4;
  /** The bits of an entry that points to a lower table. */
  nonLeaf: bigint;
  /** The bits of a last-level entry mapping a page with `perm`. */
  leaf(perm: Mapping['perm']): bigint;
}

const SS_R = 1n;
const SS_W = 2n;
const FS_P = 1n;
const FS_RW = 2n;
const FS_US = 4n;

/** Second-stage: non-leaf entries need both permissions, as QEMU checks them at every level. */
export const secondStage = (levels: 3 | 4): TableFormat => ({
  levels,
  nonLeaf: SS_R | SS_W,
  leaf: (perm) => (perm.includes('r') ? SS_R : 0n) | (perm.includes('w') ? SS_W : 0n),
});

/**
 * First-stage, 4-level: every entry user-accessible (a request without a
 * PASID is a user request, VT-d §3.6.2), writable where the mapping is;
 * a write-only mapping is readable here, since the format has no read bit.
 */
export const FIRST_STAGE: TableFormat = {
  levels: 4,
  nonLeaf: FS_P | FS_RW | FS_US,
  leaf: (perm) => FS_P | FS_US | (perm.includes('w') ? FS_RW : 0n),
};

/**
 * One address space's page tables: writes entries for mappings, creating
 * the path to a last-level table on the way. `target` says where a
 * mapping's guest-physical page really goes (a driver may redirect pages
 * the model does not have).
 */
export class PageTables {
  readonly top: number;
  /** Lower tables by "level:index of the entry that points to them". */
  private readonly tables = new Map<string, number>();

  constructor(
    private readonly area: TableArea,
    private readonly format: TableFormat,
    cmds: string[],
  ) {
    this.top = area.page(cmds);
  }

  /** Entry writes for [m.iova, m.iova + m.size) below `reach`; `present` false clears them. */
  entries(m: Mapping, present: boolean, reach: number, target: (gpa: number) => number): string[] {
    const cmds: string[] = [];
    const end = Math.min(m.iova + m.size, reach);
    const leaf = this.format.leaf(m.perm);
    // Runs of entries in one last-level table are written as one block.
    for (let a = m.iova; a < end; ) {
      const table = this.walk(a, cmds, present);
      const first = (a / PAGE) % 512;
      const n = Math.min(512 - first, (end - a) / PAGE);
      if (table !== null) {
        const bytes = new Uint8Array(8 * n);
        const view = new DataView(bytes.buffer);
        for (let i = 0; i < n; i++) view.setBigUint64(8 * i, present ? BigInt(target(m.gpa + (a - m.iova) + i * PAGE)) | leaf : 0n, true);
        cmds.push(Q.writeBytes(table + 8 * first, bytes));
      }
      a += n * PAGE;
    }
    return cmds;
  }

  /** The last-level table for `iova`, creating the path when `create`; null when absent. */
  private walk(iova: number, cmds: string[], create: boolean): number | null {
    let table = this.top;
    for (let level = this.format.levels; level > 1; level--) {
      const shift = 12 + 9 * (level - 1);
      const idx = Math.floor(iova / 2 ** shift) % 512;
      const key = `${level}:${Math.floor(iova / 2 ** (shift + 9))}:${idx}`;
      let next = this.tables.get(key);
      if (next === undefined) {
        if (!create) return null;
        next = this.area.page(cmds);
        this.tables.set(key, next);
        cmds.push(Q.write(table + 8 * idx, 8, BigInt(next) | this.format.nonLeaf));
      }
      table = next;
    }
    return table;
  }
}
