/**
 * The topology a QEMU command line builds, as isoroot describes it: the
 * machine (-machine, -M), RAM (-m) and the PCI devices (-device) on root
 * 0, each at its addr= or at the slot QEMU itself would give it. What the
 * topology does not describe goes to QEMU as it is (Topology.qemu): the
 * versioned machine type, drives, block devices, netdevs, audio, devices
 * on other buses (ISA, SCSI, USB…), and, without -nodefaults, QEMU's own
 * default devices. Only what isoroot runs QEMU with itself (its qtest and
 * QMP channels, the accelerator, the display) is not carried over, and
 * the summary says so. The result is not yet completed for QEMU (see
 * prepareForChoice): that adds the machine's own functions.
 */
import { MACHINES, PLATFORMS, type Machine } from '../adapters/qemu/platform.ts';
import type { DeviceSpec, QemuLine, RootSpec, Topology } from '../topology/types.ts';
import { InputError } from '../util/errors.ts';
import type { CommandLine } from './qtest-script.ts';

export interface QemuSetup {
  topology: Topology;
  /** Options of the input that isoroot does not pass on, with why. */
  notPassed: string[];
}

const MAIN_BUSES = ['pcie.0', 'pci.0'];
/** Drivers of devices that sit on other buses (SCSI, IDE, USB, ISA, SD, virtio-mmio…), when QEMU does not say. */
const NOT_PCI = /^(scsi-|ide-|usb-|isa-|hda-|i2c-|sd-card$|nvme-ns$|floppy$|sb16$|adlib$|gus$|cs4231a$|pcspk$)|-device$/;
const ID = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
/** RAM of a QEMU command line without -m (QEMU's own default). */
const QEMU_DEFAULT_RAM = 128 * 2 ** 20;

/** Options without a value (the rest take one). */
const FLAGS = new Set(['-nodefaults', '-S', '-nographic', '-enable-kvm', '-no-user-config', '-no-reboot', '-no-shutdown', '-snapshot', '-no-hpet', '-no-acpi', '-daemonize', '-s', '-full-screen', '-usb', '-no-fd-bootchk', '-old-param', '-only-migratable', '-preconfig']);
/** What isoroot runs QEMU with itself: the input's own are not passed on. */
const OWN: Record<string, string> = {
  '-qtest': 'isoroot drives QEMU through its own qtest channel',
  '-qtest-log': 'isoroot drives QEMU through its own qtest channel',
  '-accel': "isoroot chooses the accelerator (qtest where the binary has it, else TCG stopped)",
  '-enable-kvm': 'isoroot chooses the accelerator',
  '-display': 'isoroot runs QEMU with -display none',
  '-nographic': 'isoroot runs QEMU with -display none',
  '-vnc': 'isoroot runs QEMU with -display none',
  '-S': 'isoroot holds the CPUs itself',
  '-monitor': 'isoroot talks to QEMU over its own QMP channel',
  '-qmp': 'isoroot talks to QEMU over its own QMP channel',
  '-no-user-config': 'isoroot passes it already',
  '-bios': "isoroot's firmware runs no guest code (a BIOS would assign BARs the model does not know)",
  '-daemonize': 'isoroot keeps QEMU in the foreground',
  '-pidfile': 'isoroot keeps track of QEMU itself',
  '-serial': "the guest's serial port is not isoroot's concern; it would take the terminal",
};

/** The options that matter to the topology, and the rest to pass on. */
interface Options {
  machine?: string;
  ram?: string;
  /** PCI devices for the topology (-device values), with the rest of the command line kept in order. */
  devices: string[];
  nodefaults: boolean;
  vga?: string;
  nic?: string;
  netdev: boolean;
  pass: string[];
  notPassed: string[];
}

/** Driver name → the bus QEMU puts it on ("PCI", "ISA", …), from the binary's -device help; empty when unknown. */
export type DeviceBuses = ReadonlyMap<string, string>;

function isPci(driver: string, props: Map<string, string>, buses: DeviceBuses): boolean {
  const bus = props.get('bus');
  if (bus !== undefined && !MAIN_BUSES.includes(bus)) return false;
  const told = buses.get(driver);
  if (told !== undefined) return /^PCI/.test(told);
  return !NOT_PCI.test(driver);
}

const driverOf = (arg: string): { driver: string; props: Map<string, string> } => {
  const [first, ...rest] = arg.split(',');
  return { driver: first.startsWith('driver=') ? first.slice(7) : first, props: new Map(rest.map((p) => [p.split('=')[0], p.slice(p.indexOf('=') + 1)])) };
};

function options(cl: CommandLine, file: string, buses: DeviceBuses): Options {
  const o: Options = { devices: [], nodefaults: false, netdev: false, pass: [], notPassed: [] };
  const where = `${file}:${cl.line}`;
  for (let i = 0; i < cl.args.length; i++) {
    const opt = cl.args[i].replace(/^--/, '-');
    if (!opt.startsWith('-')) {
      o.notPassed.push(`${opt} (not an option)`);
      continue;
    }
    const takes = !FLAGS.has(opt);
    const v = takes ? cl.args[++i] : undefined;
    if (takes && v === undefined) throw new InputError(where, `a value after ${opt}, got the end of the QEMU command line`);
    if (v !== undefined && v.includes('%') && ['-machine', '-M', '-m', '-device'].includes(opt)) throw new InputError(where, `a literal ${opt} value, got the format "${v}" (qtest_initf arguments are not evaluated: give --topology)`);
    const shown = v === undefined ? opt : `${opt} ${v}`;
    if (opt === '-nodefaults') o.nodefaults = true;
    else if (opt === '-machine' || opt === '-M') {
      // The accelerator is isoroot's; the type and the other properties go to QEMU.
      const kept = v!.split(',').filter((f) => !f.startsWith('accel='));
      if (kept.length > 0) o.machine = kept.join(',');
    } else if (opt === '-m') o.ram = v;
    else if (opt === '-device' && isPci(driverOf(v!).driver, driverOf(v!).props, buses)) o.devices.push(v!);
    else if (OWN[opt] !== undefined) o.notPassed.push(`${shown} (${OWN[opt]})`);
    else {
      if (opt === '-vga') o.vga = v;
      if (opt === '-net' || opt === '-nic') o.nic = v;
      if (opt === '-netdev') o.netdev = true;
      o.pass.push(opt, ...(v === undefined ? [] : [v]));
    }
  }
  return o;
}

/** The machine type of a -machine value (its first field without "="), or undefined. */
const machineType = (m: string | undefined): string | undefined => {
  if (m === undefined) return undefined;
  const fields = m.split(',');
  return fields.find((f) => !f.includes('=')) ?? fields.find((f) => f.startsWith('type='))?.slice(5);
};

/**
 * The machine: `override` (--machine), else what the command line names,
 * else QEMU's own default for a command line that names none (pc), and
 * q35 for input without a command line.
 */
export function machineFor(cl: CommandLine | null, file: string, override?: Machine): Machine {
  if (override !== undefined) return override;
  if (cl === null) return 'q35';
  const type = machineType(options(cl, file, new Map()).machine);
  if (type === undefined || type === 'pc' || type.startsWith('pc-i440fx-')) return 'pc';
  if (type === 'q35' || type.startsWith('pc-q35-')) return 'q35';
  throw new InputError(
    `${file}:${cl.line}`,
    `an x86 machine isoroot drives (${MACHINES.join(', ')}, or their versioned pc-q35-X.Y and pc-i440fx-X.Y), got "${type}": a reproducer for another machine or architecture runs with its own qemu-system binary, outside isoroot; --machine ${MACHINES.join('|')} forces an x86 one if the devices exist there`,
  );
}

/** -m: MiB by default, or with a K, M, G or T suffix. */
function ramBytes(v: string, where: string): number {
  const m = /^(?:size=)?([0-9]+(?:\.[0-9]+)?)([kKmMgGtT]?)[bB]?(,.*)?$/.exec(v);
  if (m === null) throw new InputError(where, `-m SIZE such as 512M or 2G, got "${v}"`);
  const unit = { '': 2 ** 20, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase()]!;
  return Math.round(Number(m[1]) * unit);
}

/** QEMU's default VGA card and NIC on each machine (what -nodefaults leaves out). */
const DEFAULT_NIC: Record<Machine, string> = { q35: 'e1000e', pc: 'e1000' };

/**
 * The topology of root 0 the command line builds, and the rest of the
 * command line to pass on; without one, a machine with no devices. No
 * firmware runs under qtest, so ECAM stays off (null) until the input
 * turns it on itself. `buses` says which bus each driver goes on.
 */
export function qemuSetup(cl: CommandLine | null, file: string, machine: Machine, buses: DeviceBuses = new Map()): QemuSetup {
  const root: RootSpec = { bus: 0, busLimit: 255, cf8: true, ecam: null, devices: [] };
  const topology: Topology = { roots: [root] };
  if (cl === null) return { topology, notPassed: [] };
  const where = `${file}:${cl.line}`;
  const o = options(cl, file, buses);
  root.ram = o.ram === undefined ? QEMU_DEFAULT_RAM : ramBytes(o.ram, where);
  const line: QemuLine = { args: o.pass };
  if (o.machine !== undefined) line.machine = o.machine;
  if (!o.nodefaults) line.defaults = true;
  topology.qemu = line;
  const builtins = PLATFORMS[machine].builtins;
  const taken = new Set(builtins.map((b) => b.slot));
  const ids = new Set(builtins.map((b) => b.id));
  /** driver: with its own properties (a drive, a netdev), as QEMU is to get it; id, bus and addr are the topology's. */
  const pci: { driver: string; qdev: string; id?: string; slot?: number; fn: number }[] = [];
  for (const arg of o.devices) {
    const { driver, props } = driverOf(arg);
    if (driver === '' || driver.includes('=') || driver.startsWith('{')) throw new InputError(where, `-device DRIVER[,PROP=VALUE…], got "-device ${arg}"`);
    const addr = props.get('addr');
    const m = addr === undefined ? null : /^(?:0x)?([0-9a-fA-F]{1,2})(?:\.([0-7]))?$/.exec(addr);
    if (addr !== undefined && (m === null || parseInt(m[1], 16) > 31)) throw new InputError(where, `-device ${driver},addr=SLOT[.FN] with a hex slot 0..1f, got "addr=${addr}"`);
    const own = [...props].filter(([k]) => !['id', 'bus', 'addr', 'multifunction'].includes(k)).map(([k, v]) => `${k}=${v}`);
    const d: (typeof pci)[number] = { driver, qdev: [driver, ...own].join(','), fn: m?.[2] === undefined ? 0 : Number(m[2]) };
    if (m !== null) taken.add((d.slot = parseInt(m[1], 16)));
    const id = props.get('id');
    if (id !== undefined) d.id = id;
    pci.push(d);
  }
  const nextFree = (): number => {
    for (let s = 0; s < 32; s++) if (!taken.has(s)) return (taken.add(s), s);
    throw new InputError(where, `at most 32 slots on the ${machine} root bus`);
  };
  // Without -nodefaults QEMU places its VGA (unless -vga none) and its NIC (unless -netdev or -net/-nic none)
  // first; they are the machine's own functions, learned from QEMU when a session opens.
  const defaults: DeviceSpec[] = [];
  if (o.vga === undefined ? !o.nodefaults : o.vga !== 'none') {
    const slot = nextFree();
    if (!o.nodefaults && o.vga === undefined) defaults.push({ id: 'qemu-vga', kind: 'opaque', qdev: 'VGA', slot, fn: 0, builtin: true });
  }
  if (o.nic === undefined ? !o.nodefaults && !o.netdev : o.nic !== 'none') {
    const slot = nextFree();
    if (!o.nodefaults && o.nic === undefined && !o.netdev) defaults.push({ id: 'qemu-nic', kind: 'opaque', qdev: DEFAULT_NIC[machine], slot, fn: 0, builtin: true });
  }
  for (const d of defaults) ids.add(d.id);
  for (const d of pci) {
    let id = d.id !== undefined && ID.test(d.id) && !ids.has(d.id) ? d.id : d.driver.replace(/[^A-Za-z0-9_-]/g, '-').replace(/^[^A-Za-z]/, 'd').slice(0, 28);
    for (let n = 2; ids.has(id); n++) id = `${id.replace(/-[0-9]+$/, '')}-${n}`;
    ids.add(id);
    const spec: DeviceSpec = (d.driver === 'edu' || d.driver === 'pci-testdev' || d.driver === 'iommu-testdev') && d.qdev === d.driver ? { id, kind: d.driver, slot: 0, fn: d.fn } : { id, kind: 'opaque', qdev: d.qdev, slot: 0, fn: d.fn };
    spec.slot = d.slot ?? nextFree();
    root.devices.push(spec);
  }
  root.devices.push(...defaults);
  return { topology, notPassed: o.notPassed };
}
