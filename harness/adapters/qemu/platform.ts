/**
 * What QEMU's machines bring with them, as QEMU 7.2 builds them with
 * -nodefaults: the chipset functions on the main root bus, the ranges of
 * memory and IO space that legacy devices and firmware decode, and how a
 * firmware-less harness turns on ECAM. Verified against `info mtree -f`
 * and config dumps of Debian's qemu-system-x86 7.2.
 */
import type { DeviceSpec, ReservedRange } from '../../topology/types.ts';
import { DEFAULT_ECAM } from '../../topology/types.ts';

export const MACHINES = ['q35', 'pc'] as const;
export type Machine = (typeof MACHINES)[number];

export interface Platform {
  machine: Machine;
  /** The machine's versioned types, less the version: pc-q35-7.2 is "pc-q35-" + "7.2". */
  versionedMachine: string;
  /** Chipset functions on root 0, created by the machine itself. */
  builtins: DeviceSpec[];
  reserved: ReservedRange[];
  /** ECAM base once the set-up has run, or null (pc has none). */
  ecam: number | null;
  /** The expander bus device for roots 1..7. */
  expander: 'pxb-pcie' | 'pxb';
  /** The expander's host function on root 0 (its identity). */
  expanderHost: NonNullable<DeviceSpec['identity']>;
  /** Slot on root 0 of the host function of expander root r (1..7). */
  expanderSlot(r: number): number;
  /** qtest commands that bring a reset machine to the state the model starts from. */
  setup: string[];
  /**
   * The IOAPIC input of each of INTA..INTD of a slot on root r's bus, as
   * the machine's ACPI routing table (_PRT) gives it to a guest; null where
   * INTx reaches no line without firmware.
   */
  intxLines(r: number, slot: number): number[] | null;
}

const builtin = (id: string, slot: number, fn: number, identity: NonNullable<DeviceSpec['identity']>): DeviceSpec => ({ id, kind: 'opaque', slot, fn, builtin: true, identity });

/** Legacy ranges of memory space on both PC machines (pc.rom, isa-bios, IOAPIC, HPET, the MSI window, BIOS flash). */
const PC_MEMORY: ReservedRange[] = [
  { space: 'memory', base: 0xc0000, size: 0x40000, name: 'option ROM and BIOS shadow' },
  { space: 'memory', base: 0xfec00000, size: 0x1400000, name: 'IOAPIC, HPET, MSI window and BIOS flash' },
];

/**
 * ISA and chipset ports below 0xcf8, and the CONFIG_ADDRESS bytes (0xcf9
 * is the reset control register). PCI IO BARs outrank them in QEMU
 * (priority 1 against 0 in the IO address space).
 */
const PC_IO: ReservedRange[] = [
  { space: 'io', base: 0, size: 0xcf8, name: 'ISA and chipset ports', pciWins: true },
  { space: 'io', base: 0xcf8, size: 4, name: 'CONFIG_ADDRESS bytes and reset control', pciWins: true },
];

const PINS = [0, 1, 2, 3];
const PIRQ_A = 16;
const PIRQ_E = 20;

/**
 * q35's _PRT in APIC mode (hw/i386/acpi-build.c, build_q35_routing_table):
 * slots 0..24 and 30 rotate over PIRQ E..H, the others start at PIRQ A
 * (the D<N>IR defaults); PIRQ n is GSI 16 + n (hw/isa/lpc_ich9.c). An
 * expander's bus has the generic _PRT (build_prt): link (slot + pin) & 3
 * of LNKD, LNKA, LNKB, LNKC, i.e. PIRQ D, A, B, C.
 */
function q35IntxLines(r: number, slot: number): number[] {
  if (r > 0) return PINS.map((p) => PIRQ_A + ((slot + p + 3) & 3));
  if (slot <= 0x18) return PINS.map((p) => PIRQ_E + ((slot + p) & 3));
  if (slot === 0x1e) return PINS.map((p) => PIRQ_E + p);
  return PINS.map((p) => PIRQ_A + p);
}

export const Q35: Platform = {
  machine: 'q35',
  versionedMachine: 'pc-q35-',
  builtins: [
    builtin('q35-mch', 0, 0, { vendor: 0x8086, device: 0x29c0, classCode: 0x060000, revision: 0, headerType: 0 }),
    builtin('q35-lpc', 0x1f, 0, { vendor: 0x8086, device: 0x2918, classCode: 0x060100, revision: 2, headerType: 0x80 }),
    builtin('q35-sata', 0x1f, 2, { vendor: 0x8086, device: 0x2922, classCode: 0x010601, revision: 2, headerType: 0x80 }),
    builtin('q35-smbus', 0x1f, 3, { vendor: 0x8086, device: 0x2930, classCode: 0x0c0500, revision: 2, headerType: 0x80 }),
  ],
  reserved: [...PC_MEMORY, ...PC_IO],
  ecam: DEFAULT_ECAM,
  expander: 'pxb-pcie',
  expanderHost: { vendor: 0x1b36, device: 0x000b, classCode: 0x060000, revision: 0, headerType: 0 },
  expanderSlot: (r) => 0x17 + r,
  // PCIEXBAR (MCH 00:00.0, 0x60): base 0xb0000000, 256 buses (length field 0), enable (bit 0).
  setup: ['outl 0xcf8 0x80000060', `outl 0xcfc 0x${((DEFAULT_ECAM | 1) >>> 0).toString(16)}`, 'outl 0xcf8 0x0'],
  intxLines: q35IntxLines,
};

export const PC: Platform = {
  machine: 'pc',
  versionedMachine: 'pc-i440fx-',
  builtins: [
    builtin('pc-i440fx', 0, 0, { vendor: 0x8086, device: 0x1237, classCode: 0x060000, revision: 2, headerType: 0 }),
    builtin('pc-piix3', 1, 0, { vendor: 0x8086, device: 0x7000, classCode: 0x060100, revision: 0, headerType: 0x80 }),
    builtin('pc-ide', 1, 1, { vendor: 0x8086, device: 0x7010, classCode: 0x010180, revision: 0, headerType: 0 }),
    builtin('pc-acpi', 1, 3, { vendor: 0x8086, device: 0x7113, classCode: 0x068000, revision: 3, headerType: 0 }),
  ],
  reserved: [
    ...PC_MEMORY,
    ...PC_IO,
    // PIIX4 ACPI: PCI and CPU hot-plug, GPE0 and the SMBus controller, which QEMU places itself.
    { space: 'io', base: 0xae00, size: 0x120, name: 'ACPI PCI and CPU hot-plug', pciWins: true },
    { space: 'io', base: 0xafe0, size: 4, name: 'ACPI GPE0', pciWins: true },
    { space: 'io', base: 0xb100, size: 0x40, name: 'PIIX4 SMBus', pciWins: true },
  ],
  ecam: null,
  expander: 'pxb',
  expanderHost: { vendor: 0x1b36, device: 0x0009, classCode: 0x060000, revision: 0, headerType: 0 },
  expanderSlot: (r) => 0x17 + r,
  setup: [],
  // PIIX3 routes PIRQs to ISA lines only once firmware programs PIRQRC (reset value: disabled).
  intxLines: () => null,
};

export const PLATFORMS: Record<Machine, Platform> = { q35: Q35, pc: PC };

/** Id of the host function of expander root r. */
export const expanderHostId = (r: number): string => `qemu-pxb${r}`;
