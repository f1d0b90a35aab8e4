/**
 * QEMU's own trace events as evidence (--qemu-events): the PCI core's
 * config accesses and BAR (re)mappings (pci_cfg_read, pci_cfg_write,
 * pci_update_mappings_add/del) and the guest errors devices report
 * (LOG_GUEST_ERROR, edu's "DMA range ... out of bounds" for one), written
 * by QEMU's log backend to a file in the process's private directory and
 * read as it grows. Each batch belongs to the op after which it was read.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';

export const EVENTS_LOG = 'events.log';

/** QEMU arguments that write the events to {dir}/events.log. */
export const EVENT_ARGS: readonly string[] = ['-trace', 'enable=pci_cfg_*', '-trace', 'enable=pci_update_mappings_*', '-d', 'guest_errors', '-D', `{dir}/${EVENTS_LOG}`];

/** Lines kept per batch: a long sequence of config reads is summarised by its tail. */
const MAX_LINES = 200;

export class EventLog {
  private offset = 0;
  private partial = '';

  constructor(private readonly path: string) {}

  /** The complete lines QEMU has written since the last call (at most MAX_LINES, the latest, after a count of those left out). */
  take(): string[] {
    if (!existsSync(this.path)) return [];
    const fd = openSync(this.path, 'r');
    const chunks: Buffer[] = [];
    try {
      for (;;) {
        const b = Buffer.alloc(1 << 16);
        const n = readSync(fd, b, 0, b.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        chunks.push(b.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
    const text = this.partial + Buffer.concat(chunks).toString('utf8');
    const lines = text.split('\n');
    this.partial = lines.pop()!;
    const kept = lines.filter((l) => l !== '');
    return kept.length <= MAX_LINES ? kept : [`(${kept.length - MAX_LINES} earlier events left out)`, ...kept.slice(-MAX_LINES)];
  }
}
