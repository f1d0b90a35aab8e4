/**
 * Config bytes that a machine reset leaves as software wrote them. QEMU
 * makes every byte after a function's header and capabilities writable
 * (hw/pci/pci.c, pci_init_wmask) and its reset restores only what the
 * device's reset handler restores (pci_do_device_reset): a byte that one
 * sequence wrote at 0x44 of a pci-testdev is still there for the next
 * sequence on a reused QEMU, where a fresh QEMU reads 0. The model names
 * these ranges (keepOnReset); this module writes their power-on values
 * back, and reads them again to check. Through ECAM where the machine has
 * it (a root port's kept AER registers lie past 0x100, which CONFIG_ADDRESS
 * cannot name: it would reach 0x0c instead), else through CF8/CFC, which
 * then reaches only the first 256 bytes (and so does every sequence).
 */
import { createFunction } from '../../model/personalities/index.ts';
import { slotsOf } from '../../model/slots.ts';
import * as H from '../../model/header.ts';
import { bdf } from '../../topology/bdf.ts';
import { ecamAccess } from '../../bus/config-access.ts';
import type { Topology } from '../../topology/types.ts';
import { busCommand, cf8Access } from './access.ts';
import type { QemuProcess } from './process.ts';
import { parseValue } from './qtest.ts';

interface Kept {
  /** The function's BDF while the restore runs (below a root port: on a bus number given for it). */
  at: number;
  /** Dword-aligned registers: the power-on value, and which of its bits are kept (only those are compared and restored). */
  dwords: [number, { value: number; mask: number }][];
}

/** One config dword as qtest commands: through ECAM (one command) or CF8/CFC (the latch, then the data port; the value in the last reply). */
interface ConfigDword {
  /** The highest register it reaches, plus one. */
  limit: number;
  access(at: number, reg: number, value?: number): string[];
}

export const configDword = (ecam: number | null): ConfigDword =>
  ecam === null
    ? { limit: 0x100, access: (at, reg, value) => cf8Access(at, reg, 4, value) }
    : { limit: 0x1000, access: (at, reg, value) => ecamAccess(ecam, at, reg, 4, value === undefined ? null : BigInt(value)).map(busCommand) };

/** Power-on dwords of the kept ranges of every present device, and the config writes that make ports forward to those below them; null where a device sits deeper than this reaches. */
function plan(t: Topology, only: ReadonlySet<number> | null, cfg: ConfigDword): { kept: Kept[]; busSetup: string[] } | null {
  const kept: Kept[] = [];
  const busSetup: string[] = [];
  const next = t.roots.map((r) => r.bus + 1);
  const secondary = new Map<string, number>();
  for (const s of slotsOf(t)) {
    if (s.spec.present === false || s.spec.builtin === true) continue;
    const rootBus = t.roots[s.root].bus;
    let bus = rootBus;
    if (s.parent !== null) {
      // One level below a root port, as the QEMU target builds topologies; deeper: not restored here (null: start afresh).
      if (s.parent.kind !== 'root-port' || slotsOf(t).find((p) => p.spec === s.parent)?.parent !== null) return null;
      let sec = secondary.get(s.parent.id);
      if (sec === undefined) {
        sec = next[s.root]++;
        secondary.set(s.parent.id, sec);
        busSetup.push(...cfg.access(bdf(rootBus, s.parent.slot, s.parent.fn), H.PRIMARY_BUS, rootBus | (sec << 8) | (sec << 16)));
      }
      bus = sec;
    }
    const fn = createFunction(s.spec, s.root, s.uid, s.multifunction, s.port);
    const dwords = new Map<number, { value: number; mask: number }>();
    for (const { off, bytes } of fn.cfg.keptOnReset()) {
      for (let i = 0; i < bytes.length; i++) {
        const reg = (off + i) & ~3;
        const d = dwords.get(reg) ?? { value: 0, mask: 0 };
        const shift = 8 * ((off + i) & 3);
        d.value = (d.value | (bytes[i] << shift)) >>> 0;
        d.mask = (d.mask | (0xff << shift)) >>> 0;
        dwords.set(reg, d);
      }
    }
    const wanted = [...dwords].filter(([reg]) => reg < cfg.limit && (only === null || only.has(reg)));
    if (wanted.length > 0) kept.push({ at: bdf(bus, s.spec.slot, s.spec.fn), dwords: wanted });
  }
  return { kept, busSetup };
}

/**
 * Writes back the kept bytes that differ from their power-on values, in
 * the dwords `only` names (null: all of them).
 * Returns whether every kept dword then reads its power-on value, and
 * whether bus numbers were given (the caller resets the machine again).
 */
export async function restoreKeptConfig(q: QemuProcess, t: Topology, cfg: ConfigDword, timeoutMs: number, only: ReadonlySet<number> | null = null): Promise<{ ok: boolean; busesSet: boolean }> {
  const p = plan(t, only, cfg);
  if (p === null) return { ok: false, busesSet: false };
  const { kept, busSetup } = p;
  if (kept.length === 0) return { ok: true, busesSet: false };
  if (busSetup.length > 0) await q.qtest.call(busSetup, timeoutMs);
  const wanted = kept.flatMap((k) => k.dwords.map(([reg, d]) => ({ at: k.at, reg, ...d })));
  const read = async (): Promise<number[]> => {
    const groups = wanted.map((w) => cfg.access(w.at, w.reg));
    const replies = await q.qtest.call(groups.flat(), timeoutMs);
    let end = 0;
    return groups.map((g) => Number(parseValue(replies[(end += g.length) - 1])) >>> 0);
  };
  const differs = (got: number[]): number[] => wanted.flatMap((w, j) => (((got[j] ^ w.value) & w.mask) !== 0 ? [j] : []));
  const got = await read();
  const wrong = differs(got);
  // Bytes around the kept ones stay as QEMU's reset left them.
  if (wrong.length > 0) await q.qtest.call(wrong.flatMap((j) => cfg.access(wanted[j].at, wanted[j].reg, ((got[j] & ~wanted[j].mask) | wanted[j].value) >>> 0)), timeoutMs);
  const ok = wrong.length === 0 || differs(await read()).length === 0;
  return { ok, busesSet: busSetup.length > 0 };
}
