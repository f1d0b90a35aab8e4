/**
 * Configuration header offsets and bits.
 * Type 0: PCI Local Bus 3.0 §6.1, §6.2. Type 1: PCI-to-PCI Bridge 1.2 §3.2.
 */
export const VENDOR_ID = 0x00;
export const DEVICE_ID = 0x02;
export const COMMAND = 0x04;
export const STATUS = 0x06;
export const REVISION = 0x08;
export const CLASS_PROG = 0x09;
export const CACHE_LINE = 0x0c;
export const LATENCY_TIMER = 0x0d;
export const HEADER_TYPE = 0x0e;
export const BIST = 0x0f;
export const BAR0 = 0x10;
export const SUBSYS_VENDOR = 0x2c;
export const SUBSYS_ID = 0x2e;
export const ROM_TYPE0 = 0x30;
export const CAP_PTR = 0x34;
export const INTERRUPT_LINE = 0x3c;
export const INTERRUPT_PIN = 0x3d;

// Type 1 (bridge) header, PCI-to-PCI Bridge 1.2 §3.2.5.
export const PRIMARY_BUS = 0x18;
export const SECONDARY_BUS = 0x19;
export const SUBORDINATE_BUS = 0x1a;
export const SEC_LATENCY = 0x1b;
export const IO_BASE = 0x1c;
export const IO_LIMIT = 0x1d;
export const SEC_STATUS = 0x1e;
export const MEM_BASE = 0x20;
export const MEM_LIMIT = 0x22;
export const PREF_BASE = 0x24;
export const PREF_LIMIT = 0x26;
export const PREF_BASE_UPPER = 0x28;
export const PREF_LIMIT_UPPER = 0x2c;
export const IO_BASE_UPPER = 0x30;
export const IO_LIMIT_UPPER = 0x32;
export const ROM_TYPE1 = 0x38;
export const BRIDGE_CONTROL = 0x3e;

// Command register, PCI 3.0 §6.2.2.
export const CMD_IO = 1 << 0;
export const CMD_MEMORY = 1 << 1;
export const CMD_MASTER = 1 << 2;
export const CMD_SERR = 1 << 8;
export const CMD_PARITY = 1 << 6;
export const CMD_INTX_DISABLE = 1 << 10;

// Status register, PCI 3.0 §6.2.3: bits 15:11 and 8 are write-1-to-clear.
export const STATUS_INTERRUPT = 1 << 3;
export const STATUS_CAP_LIST = 1 << 4;
export const STATUS_W1C = 0xf900;

// Bridge control, Bridge 1.2 §3.2.5.18.
export const BRCTL_PARITY = 1 << 0;
export const BRCTL_SERR = 1 << 1;
export const BRCTL_ISA = 1 << 2;
export const BRCTL_VGA = 1 << 3;
export const BRCTL_VGA_16BIT = 1 << 4;
export const BRCTL_MASTER_ABORT = 1 << 5;
export const BRCTL_SEC_BUS_RESET = 1 << 6;

export const HEADER_MULTIFUNCTION = 0x80;

/**
 * The registers of the type 0 and type 1 headers, as [offset, bytes]
 * (PCI 3.0 figure 6-1; PCI-to-PCI Bridge 1.2 figure 3-1): a register is
 * what a write is judged by, not its bytes (a BAR is one register, though
 * its low byte may have no writable bit).
 */
export const TYPE0_REGISTERS: readonly (readonly [number, number])[] = [
  [0x00, 2], [0x02, 2], [0x04, 2], [0x06, 2], [0x08, 1], [0x09, 3], [0x0c, 1], [0x0d, 1], [0x0e, 1], [0x0f, 1],
  [0x10, 4], [0x14, 4], [0x18, 4], [0x1c, 4], [0x20, 4], [0x24, 4], [0x28, 4], [0x2c, 2], [0x2e, 2], [0x30, 4],
  [0x34, 1], [0x35, 3], [0x38, 4], [0x3c, 1], [0x3d, 1], [0x3e, 1], [0x3f, 1],
];
export const TYPE1_REGISTERS: readonly (readonly [number, number])[] = [
  [0x00, 2], [0x02, 2], [0x04, 2], [0x06, 2], [0x08, 1], [0x09, 3], [0x0c, 1], [0x0d, 1], [0x0e, 1], [0x0f, 1],
  [0x10, 4], [0x14, 4], [0x18, 1], [0x19, 1], [0x1a, 1], [0x1b, 1], [0x1c, 1], [0x1d, 1], [0x1e, 2], [0x20, 2],
  [0x22, 2], [0x24, 2], [0x26, 2], [0x28, 4], [0x2c, 4], [0x30, 2], [0x32, 2], [0x34, 1], [0x35, 3], [0x38, 4],
  [0x3c, 1], [0x3d, 1], [0x3e, 2],
];

/** Per header byte, the register holding it (a table: every config write asks). */
const byByte = (regs: readonly (readonly [number, number])[]): (readonly [number, number])[] =>
  Array.from({ length: 0x40 }, (_, off) => regs.find((r) => off >= r[0] && off < r[0] + r[1]) ?? [off & ~3, 4]);
const TYPE0_AT = byByte(TYPE0_REGISTERS);
const TYPE1_AT = byByte(TYPE1_REGISTERS);

/** The register holding config byte `off`: from the header's layout, else the dword around it. */
export function registerAt(off: number, type1: boolean): readonly [number, number] {
  if (off < 0x40) return (type1 ? TYPE1_AT : TYPE0_AT)[off];
  return [off & ~3, 4];
}

/** Conventional PCI functions decode 256 bytes; PCI Express functions 4 KiB (PCIe Base §7.2). */
export const CONFIG_LEGACY = 0x100;
export const CONFIG_EXPRESS = 0x1000;
