/**
 * What a CPU-side target can see of the interrupts the model predicts
 * (Observes.irqs as an IrqView): platform lines instead of functions'
 * pins, and messages only as the dwords they change in the memory the
 * target watches. A message is a posted memory write (PCI 3.0 §6.8.1):
 * one that repeats what the memory already holds changes nothing to see,
 * and of two to the same address in one op only the last shows. The
 * watched memory's content carries from op to op, so this is a fold too.
 */
import type { Irq, IrqView } from '../ops/observation.ts';
import { ownerOf, walkDevices, type Topology } from '../topology/types.ts';

export class IrqProjection {
  /** Dwords of the watched range that no longer hold the fill pattern. */
  private readonly held = new Map<number, number>();
  /** Functions whose DMA an IOMMU translates: their messages are translated too, which the model does not decode. */
  private readonly translated = new Set<string>();
  private readonly fill: number;

  constructor(
    private readonly view: IrqView,
    t: Topology,
  ) {
    for (const w of walkDevices(t)) if (t.roots[ownerOf(t, w.root, 'dma')].iommu === true) this.translated.add(w.dev.id);
    const f = view.messages?.fill ?? 0;
    this.fill = (f | (f << 8) | (f << 16) | (f << 24)) >>> 0;
  }

  /** The predicted interrupts of one op as the target sees them. */
  seen(irqs: readonly Irq[] | undefined): Irq[] {
    const out: Irq[] = [];
    const wrote = new Map<number, Irq>();
    for (const i of irqs ?? []) {
      if (i.kind === 'line' && this.view.lines) out.push(i);
      if (this.view.eventfds === true && i.dev !== undefined) {
        if (i.kind === 'msi' || i.kind === 'msix') out.push({ space: i.space, dev: i.dev, kind: i.kind, vector: i.vector });
        if (i.kind === 'intx' && i.level === 1) out.push({ space: i.space, dev: i.dev, kind: 'intx', level: 1 });
      }
      if (this.view.messagesByFunction === true && i.dev !== undefined && (i.kind === 'msi' || i.kind === 'msix')) out.push({ space: i.space, dev: i.dev, kind: i.kind, vector: i.vector, addr: i.addr, data: i.data });
      if ((i.kind === 'msi' || i.kind === 'msix') && this.watched(i)) wrote.set(i.addr!, i);
    }
    for (const [addr, i] of wrote) {
      const data = i.data! >>> 0;
      if ((this.held.get(addr) ?? this.fill) === data) continue;
      this.held.set(addr, data);
      out.push({ space: i.space, kind: 'message', addr, data });
    }
    return out;
  }

  private watched(i: Irq): boolean {
    const m = this.view.messages;
    if (m === null || i.addr === undefined || i.data === undefined || (i.dev !== undefined && this.translated.has(i.dev))) return false;
    return i.addr % 4 === 0 && i.addr >= m.base && i.addr + 4 <= m.base + m.size;
  }
}
