/** Which devices of the topology are plugged in now: the topology's start, then hot-plug and unplug. */
import type { Reason } from '../../ops/observation.ts';
import { walkDevices, type Topology } from '../../topology/types.ts';

export class Presence {
  private readonly present = new Map<string, boolean>();

  /** Devices QEMU creates with their topology id (not the chipset's built-in functions). */
  private readonly pluggable = new Set<string>();

  constructor(t: Topology) {
    for (const { dev } of walkDevices(t)) {
      this.present.set(dev.id, dev.present !== false);
      if (dev.builtin !== true) this.pluggable.add(dev.id);
    }
  }

  /** Why an op cannot address the device (unknown, or not plugged in), or null. */
  problem(id: string): Reason | null {
    const p = this.present.get(id);
    return p === undefined ? 'no-device' : p ? null : 'not-present';
  }

  /** Devices plugged in by this account that QEMU no longer holds (`held`: the ids QEMU has). */
  gone(held: ReadonlySet<string>): string[] {
    return [...this.present].flatMap(([id, p]) => (p && this.pluggable.has(id) && !held.has(id) ? [id] : []));
  }

  set(id: string, present: boolean): void {
    this.present.set(id, present);
  }
}
