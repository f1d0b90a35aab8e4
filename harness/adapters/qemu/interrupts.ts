/**
 * What the QEMU target sees of interrupts, with no guest to take them:
 * - INTx as the IOAPIC's inputs (qtest's irq_intercept_in): on q35 the PCI
 *   lines are GSIs 16..23, one per PIRQ (hw/isa/lpc_ich9.c); the ISA
 *   lines below are the legacy devices', not PCI's. QEMU prints a notice
 *   on every change; an op's effect is each line's net change.
 * - MSI and MSI-X as what they are, memory writes (PCI 3.0 §6.8.1): a
 *   message addressed into a small watched window of RAM lands there, and
 *   the window is read after every op that may send one. The window holds
 *   a fill pattern when a session opens, so a message shows as the dwords
 *   it changed.
 * Both are declared to the oracles as an IrqView.
 */
import type { Irq, IrqView } from '../../ops/observation.ts';
import type { Platform } from './platform.ts';
import { Q, parseBytes, type IrqEvent } from './qtest.ts';

/** The first IOAPIC input that PCI's INTx reaches on q35 (PIRQ A). */
export const FIRST_PCI_LINE = 16;

/** In low RAM, below the legacy video window: no generated access or DMA goes there (a reserved range). */
export const MESSAGE_WINDOW = { base: 0x9fc00, size: 0x40, fill: 0xa5 } as const;

/** The interrupt view of a QEMU machine: lines where the platform routes INTx to the IOAPIC without firmware (q35). */
export const qemuIrqView = (p: Platform): IrqView => ({ lines: p.intxLines(0, 0) !== null, messages: { ...MESSAGE_WINDOW } });


const filledWindow = (): DataView => new DataView(new Uint8Array(MESSAGE_WINDOW.size).fill(MESSAGE_WINDOW.fill).buffer);

/** The interrupt state of one QEMU process: line levels as last reported, and the window as last read. */
export class InterruptWatch {
  private readonly levels = new Map<number, 0 | 1>();
  private held: DataView = filledWindow();

  constructor(private readonly lines: boolean) {}

  /** The command that intercepts the IOAPIC's inputs; once per process. */
  static readonly intercept = 'irq_intercept_in ioapic';

  /** Commands that put the fill pattern into the window, as a session starts. */
  arm(): string[] {
    this.held = filledWindow();
    return [Q.memset(MESSAGE_WINDOW.base, MESSAGE_WINDOW.size, MESSAGE_WINDOW.fill)];
  }

  /** The command that reads the window. */
  readonly read = Q.readBytes(MESSAGE_WINDOW.base, MESSAGE_WINDOW.size);

  /** Notices that belong to no op (a reset between sequences): levels follow them, nothing is reported. */
  absorb(events: readonly IrqEvent[]): void {
    for (const e of events) this.levels.set(e.line, e.level);
  }

  /** One op's interrupts: each PCI line's net change over its notices, then the dwords of the window that changed. */
  observe(events: readonly IrqEvent[], window: string | null): Irq[] {
    const out: Irq[] = [];
    if (this.lines) {
      const before = new Map<number, 0 | 1>();
      for (const e of events) {
        if (e.line < FIRST_PCI_LINE) continue;
        if (!before.has(e.line)) before.set(e.line, this.levels.get(e.line) ?? 0);
        this.levels.set(e.line, e.level);
      }
      for (const [line, was] of before) {
        const now = this.levels.get(line) ?? 0;
        if (now !== was) out.push({ space: 0, kind: 'line', line, level: now });
      }
    } else this.absorb(events);
    if (window !== null) {
      const bytes = parseBytes(window, MESSAGE_WINDOW.size);
      const now = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let off = 0; off < MESSAGE_WINDOW.size; off += 4) {
        const data = now.getUint32(off, true);
        if (data !== this.held.getUint32(off, true)) out.push({ space: 0, kind: 'message', addr: MESSAGE_WINDOW.base + off, data });
      }
      this.held = now;
    }
    return out;
  }
}
