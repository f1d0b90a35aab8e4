/**
 * Where QEMU has put each device: QMP `query-pci`, read into bus, slot,
 * function and mapped BAR addresses per qdev id. Checked as it is read:
 * it is the target's word, at the edge of the harness.
 */
import { JsonReader } from '../../util/json-read.ts';
import type { QmpChannel } from './qmp.ts';

export interface PciPlace {
  bus: number;
  slot: number;
  fn: number;
  /** Mapped address per BAR index; absent or -1 when QEMU does not map it. */
  bars: Map<number, number>;
}

const r = new JsonReader((p) => `QEMU's query-pci: ${p}`);

function devices(path: string, v: unknown, out: Map<string, PciPlace>): void {
  r.array(path, v).forEach((d, i) => {
    const p = `${path}[${i}]`;
    const o = r.object(p, d);
    const bars = new Map<number, number>();
    r.array(`${p}.regions`, o.regions).forEach((x, j) => {
      const reg = r.object(`${p}.regions[${j}]`, x);
      // QEMU reports an unmapped BAR at address -1.
      const address = reg.address === -1 ? -1 : r.int(`${p}.regions[${j}].address`, reg.address, 0, Number.MAX_SAFE_INTEGER);
      bars.set(r.int(`${p}.regions[${j}].bar`, reg.bar, 0, 6), address);
    });
    const id = typeof o.qdev_id === 'string' ? o.qdev_id : '';
    if (id !== '') out.set(id, { bus: r.int(`${p}.bus`, o.bus, 0, 255), slot: r.int(`${p}.slot`, o.slot, 0, 31), fn: r.int(`${p}.function`, o.function, 0, 7), bars });
    if (o.pci_bridge !== undefined) {
      const b = r.object(`${p}.pci_bridge`, o.pci_bridge);
      if (b.devices !== undefined) devices(`${p}.pci_bridge.devices`, b.devices, out);
    }
  });
}

/** Every device with a qdev id, by id. */
export async function queryPci(qmp: QmpChannel, timeoutMs: number): Promise<Map<string, PciPlace>> {
  const v = await qmp.execute('query-pci', undefined, timeoutMs);
  const out = new Map<string, PciPlace>();
  r.array('result', v).forEach((bus, i) => devices(`result[${i}].devices`, r.object(`result[${i}]`, bus).devices, out));
  return out;
}
