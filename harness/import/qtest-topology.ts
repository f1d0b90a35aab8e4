/**
 * The topology a QEMU command line builds, as isoroot describes it: the
 * machine (-machine, -M), RAM (-m) and the PCI devices (-device) on root
 * 0, each at its addr= or at the slot QEMU itself would give it. Only a
 * few options matter; the rest (drives, displays, accelerators) are
 * passed over. The result is not yet completed for QEMU (see
 * prepareForChoice): that adds the machine's own functions.
 */
import { MACHINES, PLATFORMS, type Machine } from '../adapters/qemu/platform.ts';
import type { DeviceSpec, RootSpec, Topology } from '../topology/types.ts';
import { InputError } from '../util/errors.ts';
import type { CommandLine } from './qtest-script.ts';

export interface QemuSetup {
  topology: Topology;
  /** -device arguments that are not PCI functions on the main bus, with why. */
  leftOut: string[];
}

const MAIN_BUSES = ['pcie.0', 'pci.0'];
/** Drivers of devices that sit on other buses (SCSI, IDE, USB, ISA, SD, virtio-mmio…), not on PCI. */
const NOT_PCI = /^(scsi-|ide-|usb-|isa-|hda-|i2c-|sd-card$|nvme-ns$|floppy$)|-device$/;
const ID = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
/** RAM of a QEMU command line without -m (QEMU's own default). */
const QEMU_DEFAULT_RAM = 128 * 2 ** 20;

/** The options that matter, each with its value and the command line's line. */
interface Options {
  machine?: string;
  ram?: string;
  devices: string[];
  nodefaults: boolean;
  vga?: string;
  nic?: string;
  netdev: boolean;
}

function options(cl: CommandLine, file: string): Options {
  const o: Options = { devices: [], nodefaults: false, netdev: false };
  const where = `${file}:${cl.line}`;
  for (let i = 0; i < cl.args.length; i++) {
    const opt = cl.args[i].replace(/^--/, '-');
    if (opt === '-nodefaults') o.nodefaults = true;
    if (opt === '-netdev') o.netdev = true;
    if (!['-machine', '-M', '-m', '-device', '-vga', '-net', '-nic'].includes(opt)) continue;
    const v = cl.args[++i];
    if (v === undefined) throw new InputError(where, `a value after ${opt}, got the end of the QEMU command line`);
    if (v.includes('%') && opt !== '-vga') throw new InputError(where, `a literal ${opt} value, got the format "${v}" (qtest_initf arguments are not evaluated: give --topology)`);
    if (opt === '-machine' || opt === '-M') {
      const fields = v.split(',');
      const type = fields.find((f) => !f.includes('=')) ?? fields.find((f) => f.startsWith('type='))?.slice(5);
      if (type !== undefined) o.machine = type;
    } else if (opt === '-m') o.ram = v;
    else if (opt === '-device') o.devices.push(v);
    else if (opt === '-vga') o.vga = v;
    else o.nic = v;
  }
  return o;
}

/**
 * The machine: `override` (--machine), else what the command line names,
 * else QEMU's own default for a command line that names none (pc), and
 * q35 for input without a command line.
 */
export function machineFor(cl: CommandLine | null, file: string, override?: Machine): Machine {
  if (override !== undefined) return override;
  if (cl === null) return 'q35';
  const type = options(cl, file).machine;
  if (type === undefined || type === 'pc' || type.startsWith('pc-i440fx-')) return 'pc';
  if (type === 'q35' || type.startsWith('pc-q35-')) return 'q35';
  throw new InputError(`${file}:${cl.line}`, `-machine ${MACHINES.join(' or ')} (the machines isoroot drives), got "${type}"; --machine picks one`);
}

/** -m: MiB by default, or with a K, M, G or T suffix. */
function ramBytes(v: string, where: string): number {
  const m = /^(?:size=)?([0-9]+(?:\.[0-9]+)?)([kKmMgGtT]?)[bB]?(,.*)?$/.exec(v);
  if (m === null) throw new InputError(where, `-m SIZE such as 512M or 2G, got "${v}"`);
  const unit = { '': 2 ** 20, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase()]!;
  return Math.round(Number(m[1]) * unit);
}

/**
 * The topology of root 0 the command line builds; without one, a machine
 * with no devices. No firmware runs under qtest, so ECAM stays off (null)
 * until the input turns it on itself.
 */
export function qemuSetup(cl: CommandLine | null, file: string, machine: Machine): QemuSetup {
  const root: RootSpec = { bus: 0, busLimit: 255, cf8: true, ecam: null, devices: [] };
  const topology: Topology = { roots: [root] };
  if (cl === null) return { topology, leftOut: [] };
  const where = `${file}:${cl.line}`;
  const o = options(cl, file);
  root.ram = o.ram === undefined ? QEMU_DEFAULT_RAM : ramBytes(o.ram, where);
  const builtins = PLATFORMS[machine].builtins;
  const taken = new Set(builtins.map((b) => b.slot));
  const ids = new Set(builtins.map((b) => b.id));
  const leftOut: string[] = [];
  const pci: { driver: string; id?: string; slot?: number; fn: number }[] = [];
  for (const arg of o.devices) {
    const [first, ...rest] = arg.split(',');
    const props = new Map(rest.map((p) => [p.split('=')[0], p.slice(p.indexOf('=') + 1)]));
    const driver = first.startsWith('driver=') ? first.slice(7) : first;
    if (driver === '' || driver.includes('=') || driver.startsWith('{')) throw new InputError(where, `-device DRIVER[,PROP=VALUE…], got "-device ${arg}"`);
    const bus = props.get('bus');
    if (bus !== undefined && !MAIN_BUSES.includes(bus)) {
      leftOut.push(`${driver} (on bus ${bus})`);
      continue;
    }
    if (NOT_PCI.test(driver)) {
      leftOut.push(`${driver} (not a PCI device)`);
      continue;
    }
    const addr = props.get('addr');
    const m = addr === undefined ? null : /^(?:0x)?([0-9a-fA-F]{1,2})(?:\.([0-7]))?$/.exec(addr);
    if (addr !== undefined && (m === null || parseInt(m[1], 16) > 31)) throw new InputError(where, `-device ${driver},addr=SLOT[.FN] with a hex slot 0..1f, got "addr=${addr}"`);
    const d: (typeof pci)[number] = { driver, fn: m?.[2] === undefined ? 0 : Number(m[2]) };
    if (m !== null) taken.add((d.slot = parseInt(m[1], 16)));
    const id = props.get('id');
    if (id !== undefined) d.id = id;
    pci.push(d);
  }
  const nextFree = (): number => {
    for (let s = 0; s < 32; s++) if (!taken.has(s)) return (taken.add(s), s);
    throw new InputError(where, `at most 32 slots on the ${machine} root bus`);
  };
  // QEMU places its VGA (unless -nodefaults or -vga none) and its NIC (unless -nodefaults, -netdev
  // or -net/-nic none) first. The trace's QEMU runs without them, but the devices keep the slots
  // the input's accesses address.
  if (o.vga === undefined ? !o.nodefaults : o.vga !== 'none') nextFree();
  if (o.nic === undefined ? !o.nodefaults && !o.netdev : o.nic !== 'none') nextFree();
  for (const d of pci) {
    let id = d.id !== undefined && ID.test(d.id) && !ids.has(d.id) ? d.id : d.driver.replace(/[^A-Za-z0-9_-]/g, '-').replace(/^[^A-Za-z]/, 'd').slice(0, 28);
    for (let n = 2; ids.has(id); n++) id = `${id.replace(/-[0-9]+$/, '')}-${n}`;
    ids.add(id);
    const spec: DeviceSpec = d.driver === 'edu' || d.driver === 'pci-testdev' ? { id, kind: d.driver, slot: 0, fn: d.fn } : { id, kind: 'opaque', qdev: d.driver, slot: 0, fn: d.fn };
    spec.slot = d.slot ?? nextFree();
    root.devices.push(spec);
  }
  return { topology, leftOut };
}
