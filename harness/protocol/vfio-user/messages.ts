/**
 * The vfio-user messages (QEMU docs/interop/vfio-user.rst), as data: the
 * header, the command numbers, and the body of each request and reply.
 * The codec (codec.ts) turns these into bytes and back; the client, the
 * reference server, the proxy and the pcap importer all speak in them.
 */

/** Header: id u16, command u16, size u32 (header included), flags u32, error u32 ("Header"). */
export const HEADER_SIZE = 16;

/**
 * Command numbers ("Commands"). 14 was DIRTY_PAGES, withdrawn from the
 * specification; 15 is REGION_WRITE_MULTI (only once VERSION negotiated
 * write_multiple); DEVICE_FEATURE and the MIG_DATA pair follow it.
 */
export const COMMANDS = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  DEVICE_GET_INFO: 4,
  DEVICE_GET_REGION_INFO: 5,
  DEVICE_GET_REGION_IO_FDS: 6,
  DEVICE_GET_IRQ_INFO: 7,
  DEVICE_SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DMA_READ: 11,
  DMA_WRITE: 12,
  DEVICE_RESET: 13,
  REGION_WRITE_MULTI: 15,
  DEVICE_FEATURE: 16,
  MIG_DATA_READ: 17,
  MIG_DATA_WRITE: 18,
} as const;
export type CommandName = keyof typeof COMMANDS;
export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];
export const commandName = (n: number): CommandName | undefined => COMMAND_NAMES.find((k) => COMMANDS[k] === n);

/** Header flags: bits 0-3 the type, bit 4 no-reply, bit 5 error. */
export const FLAG_TYPE_MASK = 0xf;
export const FLAG_TYPE_COMMAND = 0;
export const FLAG_TYPE_REPLY = 1;
export const FLAG_NO_REPLY = 1 << 4;
export const FLAG_ERROR = 1 << 5;

export interface Header {
  id: number;
  command: number;
  /** Whole message, header included. */
  size: number;
  reply: boolean;
  noReply: boolean;
  error: boolean;
  /** errno of a failed request (reply with error set); 0 otherwise. */
  errno: number;
}

/** VFIO region indexes of a PCI device (linux/vfio.h, VFIO_PCI_*_REGION_INDEX). */
export const REGION = { BAR0: 0, BAR5: 5, ROM: 6, CONFIG: 7, VGA: 8 } as const;
export const PCI_REGIONS = 9;
/** VFIO IRQ indexes of a PCI device (VFIO_PCI_*_IRQ_INDEX). */
export const IRQ = { INTX: 0, MSI: 1, MSIX: 2, ERR: 3, REQ: 4 } as const;
export const PCI_IRQS = 5;

/** VFIO_DEVICE_FLAGS_* */
export const DEVICE_FLAG_RESET = 1 << 0;
export const DEVICE_FLAG_PCI = 1 << 1;
/** VFIO_REGION_INFO_FLAG_* */
export const REGION_FLAG_READ = 1 << 0;
export const REGION_FLAG_WRITE = 1 << 1;
export const REGION_FLAG_MMAP = 1 << 2;
export const REGION_FLAG_CAPS = 1 << 3;
/** VFIO_REGION_INFO_CAP_SPARSE_MMAP */
export const CAP_SPARSE_MMAP = 1;
/** VFIO_REGION_INFO_CAP_TYPE ("Device-Specific Regions") */
export const CAP_TYPE = 2;
/** VFIO_IRQ_INFO_* */
export const IRQ_INFO_EVENTFD = 1 << 0;
export const IRQ_INFO_MASKABLE = 1 << 1;
export const IRQ_INFO_AUTOMASKED = 1 << 2;
export const IRQ_INFO_NORESIZE = 1 << 3;
/** VFIO_IRQ_SET_DATA_* and VFIO_IRQ_SET_ACTION_* */
export const IRQ_SET_DATA_NONE = 1 << 0;
export const IRQ_SET_DATA_BOOL = 1 << 1;
export const IRQ_SET_DATA_EVENTFD = 1 << 2;
export const IRQ_SET_ACTION_MASK = 1 << 3;
export const IRQ_SET_ACTION_UNMASK = 1 << 4;
export const IRQ_SET_ACTION_TRIGGER = 1 << 5;
/** DMA_MAP flags. */
export const DMA_READ_FLAG = 1 << 0;
export const DMA_WRITE_FLAG = 1 << 1;
/** DMA_UNMAP flags: unmap every region (address and size 0). */
export const DMA_UNMAP_ALL = 1 << 1;
/** DEVICE_GET_REGION_IO_FDS sub-region types and their flags (KVM_IOEVENTFD_FLAG_*, KVM_IOREGION_*). */
export const IO_FD_TYPE_IOEVENTFD = 0;
export const IO_FD_TYPE_IOREGIONFD = 1;
export const IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
export const IOEVENTFD_FLAG_PIO = 1 << 1;
export const IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY = 1 << 3;
export const IOREGIONFD_FLAG_PIO = 1 << 0;
export const IOREGIONFD_FLAG_POSTED_WRITES = 1 << 1;
/** REGION_WRITE_MULTI: each write carries at most this many bytes. */
export const WRITE_MULTI_DATA = 8;
/** DEVICE_FEATURE flags: the feature index in bits 0-15, then GET, SET, PROBE. */
export const FEATURE_MASK = 0xffff;
export const FEATURE_GET = 1 << 16;
export const FEATURE_SET = 1 << 17;
export const FEATURE_PROBE = 1 << 18;
/** Device feature indexes ("Device Features"). */
export const FEATURE_MIGRATION = 1;
export const FEATURE_MIG_DEVICE_STATE = 2;
export const FEATURE_DMA_LOGGING_START = 6;
export const FEATURE_DMA_LOGGING_STOP = 7;
export const FEATURE_DMA_LOGGING_REPORT = 8;

/** What VERSION's JSON carries ("Version", capabilities object); absent fields take the specification's defaults. */
export interface VersionCaps {
  maxMsgFds?: number;
  maxDataXferSize?: number;
  pgsizes?: bigint;
  maxDmaMaps?: number;
  /** QEMU's "migration" capability; max_bitmap_size may be absent. */
  migration?: { pgsize: bigint; maxBitmapSize?: number };
  twinSocket?: { supported: boolean; fdIndex?: number };
  writeMultiple?: boolean;
  /** Keys the codec does not know, kept as parsed (the JSON is extensible). */
  other?: Record<string, unknown>;
}

export interface Version {
  major: number;
  minor: number;
  caps: VersionCaps;
  /** Top-level JSON keys other than "capabilities", kept as parsed. */
  other?: Record<string, unknown>;
}

export interface DmaMap {
  flags: number;
  /** Offset into the file descriptor, when one is sent. */
  offset: bigint;
  address: bigint;
  size: bigint;
}

export interface DmaUnmap {
  /** Absent: 24, the size of the structure. A request's argsz is the largest reply it takes. */
  argsz?: number;
  flags: number;
  address: bigint;
  size: bigint;
}

export interface DeviceInfo {
  /** Absent: 16, the size of the structure. */
  argsz?: number;
  flags: number;
  numRegions: number;
  numIrqs: number;
}

export interface SparseArea {
  offset: bigint;
  size: bigint;
}

export interface RegionInfo {
  /** argsz of the request: how much of the reply the client can take. */
  argsz: number;
  flags: number;
  index: number;
  capOffset: number;
  size: bigint;
  offset: bigint;
  /** The sparse-mmap capability, when the reply has one. */
  sparse?: SparseArea[];
  /** The region-type capability (device-specific regions), when the reply has one. */
  type?: { type: number; subtype: number };
}

export interface IoFdEntry {
  offset: bigint;
  size: bigint;
  fdIndex: number;
  /** 0: ioeventfd (datamatch), 1: ioregionfd (user data). */
  type: number;
  flags: number;
  /** datamatch for type 0, user data for type 1. */
  data: bigint;
}

export interface RegionIoFds {
  argsz: number;
  flags: number;
  index: number;
  count: number;
  entries: IoFdEntry[];
}

export interface IrqInfo {
  argsz: number;
  flags: number;
  index: number;
  count: number;
}

export interface SetIrqs {
  argsz: number;
  flags: number;
  index: number;
  start: number;
  count: number;
  /** DATA_BOOL: one byte per interrupt. DATA_EVENTFD: the fds travel as ancillary data. */
  data?: Uint8Array;
}

export interface RegionAccess {
  offset: bigint;
  region: number;
  count: number;
  /** Write request and read reply: the bytes. */
  data?: Uint8Array;
}

export interface DmaAccess {
  address: bigint;
  count: bigint;
  /** Write request and read reply: the bytes. */
  data?: Uint8Array;
}

/** One write of REGION_WRITE_MULTI: at most 8 bytes. */
export interface MultiWrite {
  offset: bigint;
  region: number;
  count: number;
  /** count bytes (the 8-byte field's tail is not kept). */
  data: Uint8Array;
}

export interface RegionWriteMulti {
  /** wr_cnt is writes.length. */
  writes: MultiWrite[];
}

export interface RegionWriteMultiReply {
  wrCnt: bigint;
}

export interface DeviceFeature {
  argsz: number;
  flags: number;
  data: Uint8Array;
}

export interface MigData {
  argsz: number;
  size: number;
  data?: Uint8Array;
}

/** The body of each command, as a request and as its reply (null: none). */
export interface Bodies {
  VERSION: { request: Version; reply: Version };
  DMA_MAP: { request: DmaMap; reply: null };
  DMA_UNMAP: { request: DmaUnmap; reply: DmaUnmap };
  DEVICE_GET_INFO: { request: DeviceInfo; reply: DeviceInfo };
  DEVICE_GET_REGION_INFO: { request: RegionInfo; reply: RegionInfo };
  DEVICE_GET_REGION_IO_FDS: { request: RegionIoFds; reply: RegionIoFds };
  DEVICE_GET_IRQ_INFO: { request: IrqInfo; reply: IrqInfo };
  DEVICE_SET_IRQS: { request: SetIrqs; reply: null };
  REGION_READ: { request: RegionAccess; reply: RegionAccess };
  REGION_WRITE: { request: RegionAccess; reply: RegionAccess };
  DMA_READ: { request: DmaAccess; reply: DmaAccess };
  DMA_WRITE: { request: DmaAccess; reply: DmaAccess };
  DEVICE_RESET: { request: null; reply: null };
  REGION_WRITE_MULTI: { request: RegionWriteMulti; reply: RegionWriteMultiReply };
  DEVICE_FEATURE: { request: DeviceFeature; reply: DeviceFeature };
  MIG_DATA_READ: { request: MigData; reply: MigData };
  /** "There is no reply payload for this message." */
  MIG_DATA_WRITE: { request: MigData; reply: null };
}

/**
 * A decoded message. An error reply has no body (body null) and errno set;
 * `error: true` marks the Error flag when errno is 0 ("It may be zero even
 * if the Error bit is set").
 */
export type Message = {
  [C in CommandName]:
    | { command: C; id: number; reply: false; noReply: boolean; body: Bodies[C]['request']; fds: number[] }
    | { command: C; id: number; reply: true; errno: number; error?: true; body: Bodies[C]['reply'] | null; fds: number[]; departure?: ProtocolViolation };
}[CommandName];

export type Request<C extends CommandName = CommandName> = Extract<Message, { command: C; reply: false }>;
export type Reply<C extends CommandName = CommandName> = Extract<Message, { command: C; reply: true }>;

/** Limits the codec enforces, from the negotiated VERSION ("Version": defaults). */
export interface Limits {
  /** Largest message accepted, header included. */
  maxMessage: number;
  maxMsgFds: number;
  maxDataXferSize: number;
}

/** The specification's defaults: max_msg_fds 1, max_data_xfer_size 1 MiB. */
export const DEFAULT_LIMITS: Limits = { maxMsgFds: 1, maxDataXferSize: 1 << 20, maxMessage: (1 << 20) + 4096 };

/**
 * A peer's message that breaks the specification: which field, at which
 * byte offset of the message, and what was expected. It becomes a
 * finding of kind "protocol"; it never ends the harness.
 */
export class ProtocolViolation extends Error {
  override name = 'ProtocolViolation';
  constructor(
    readonly command: string,
    readonly field: string,
    readonly offset: number,
    readonly expected: string,
    readonly got: string,
  ) {
    super(`${command}: ${field} at byte ${offset}: expected ${expected}, got ${got}`);
  }
}
