/** Which devices of the topology are plugged in now: the topology's start, then hot-plug and unplug. */
import type { Reason } from '../../ops/observation.ts';
import { walkDevices, type Topology } from '../../topology/types.ts';

export class Presence {
  private readonly present = new Map<string, boolean>();

  constructor(t: Topology) {
    for (const { dev } of walkDevices(t)) this.present.set(dev.id, dev.present !== false);
  }

  /** Why an op cannot address the device (unknown, or not plugged in), or null. */
  problem(id: string): Reason | null {
    const p = this.present.get(id);
    return p === undefined ? 'no-device' : p ? null : 'not-present';
  }

  set(id: string, present: boolean): void {
    this.present.set(id, present);
  }
}
