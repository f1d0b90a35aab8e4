/**
 * What a target reports for one operation. Faults are observations, not
 * exceptions: a DMA through an unmapped IOVA completes with status "fault".
 */
import type { ChoiceId } from '../spec/choices.ts';
import type { RuleId } from '../spec/rules.ts';

/**
 * ok: completed. ur: Unsupported Request (PCIe Base §2.3.1). ma: Master
 * Abort, nobody claimed the access (PCI 3.0 §3.3.3.1). fault: a DMA or
 * PASID translation fault. error: the operation itself was refused (for
 * example unmapping what was never mapped), as an API would refuse it.
 */
export const STATUSES = ['ok', 'ur', 'ma', 'fault', 'error'] as const;
export type Status = (typeof STATUSES)[number];

/** Translation faults (status "fault"). */
export const FAULT_REASONS = [
  'bus-master-disabled', // PCI 3.0 §6.2.2: no DMA without Bus Master Enable
  'no-domain', // the device is attached to no IOMMU domain
  'iova-unmapped',
  'perm', // mapping lacks read or write permission
  'no-pasid-support', // no IOMMU, or no PASID capability
  'pasid-disabled', // PCIe Base §7.8.8.3: PASID Enable clear
  'pasid-range', // PASID beyond Max PASID Width
  'pasid-unbound',
  'pasid-freed',
  'pasid-invalid', // VT-d §9.6: a present PASID entry with a reserved or unsupported field (its translation type, its paging mode)
  'no-memory', // the translated address hits no RAM
] as const;

/** Refusals (status "error"). */
export const ERROR_REASONS = [
  'no-device',
  'not-present',
  'present',
  'no-slot',
  'exists',
  'partial',
  'align',
  'not-mapped',
  'no-context',
  'invalid-pasid',
  'bound',
  'not-bound',
  'busy',
  'not-registered',
  'no-ecam',
  'no-cf8',
  'no-iommu',
  'no-emulator',
  'exhausted',
  'unsupported',
  'unreachable', // a driver cannot reach the registers that drive the device's DMA (edu's BAR0)
  // Region accesses of a VFIO user (region.read / region.write):
  'no-region', // the device has no such region
  'past-end', // the access runs past the region's end
  'read-only', // a write to the expansion ROM
  'not-decoding', // a BAR that does not decode (vfio-pci answers EIO)
  'too-large', // more than one message may carry (vfio-user max_data_xfer_size)
  // Linux VFIO's refusals (harness/model/vfio/errno-reasons.ts gives each errno its word):
  'invalid', // EINVAL
  'not-viable', // EPERM: a group with a device a kernel driver holds
  'no-file', // ENOENT: no such file (a group without a device bound to a VFIO driver)
  'not-held', // EBADF: isoroot holds no such file; refused before any syscall
  'errno', // any other errno: the errno field names it
] as const;

export type FaultReason = (typeof FAULT_REASONS)[number];
export type Reason = FaultReason | (typeof ERROR_REASONS)[number];

/** Device regions, RAM, the CF8 address latch of the host bridge, and a reserved platform range. */
export const REGIONS = ['cfg', 'bar0', 'bar1', 'bar2', 'bar3', 'bar4', 'bar5', 'rom', 'ram', 'cf8', 'platform'] as const;
export type Region = (typeof REGIONS)[number];

/** Where an access landed. Neither `dev` nor `region` means nobody decoded it. */
export interface Delivery {
  /** The root whose decoder took the access (for a miss: the root that issued it). */
  root: number;
  /** The emulator that handled it; absent for the root's own handler. */
  via?: string;
  dev?: string;
  region?: Region;
  offset?: number;
}

/**
 * msi, msix, intx: an interrupt as its function sends it. line: a
 * platform interrupt line (an IOAPIC input) changing level, the wired-OR
 * of the INTx pins routed to it. message: an MSI or MSI-X message as the
 * memory write it is, seen in a watched range of memory (IrqView).
 */
export const IRQ_KINDS = ['msi', 'msix', 'intx', 'line', 'message'] as const;
export type IrqKind = (typeof IRQ_KINDS)[number];

export interface Irq {
  /** The root whose interrupt space received it. */
  space: number;
  /** The function that sent it; absent for line and message, which do not name one. */
  dev?: string;
  kind: IrqKind;
  /** MSI/MSI-X: vector. */
  vector?: number;
  /** MSI/MSI-X/message: address and data. */
  addr?: number;
  data?: number;
  /** INTx: pin at the root after swizzling (0=A..3=D). */
  pin?: number;
  /** line: the platform's interrupt line (QEMU: the IOAPIC input, i.e. the GSI). */
  line?: number;
  /** INTx and line: the new level. */
  level?: 0 | 1;
}

/**
 * What a CPU-side target sees of interrupts: platform lines rather than
 * functions' pins, and messages only where they land in memory it watches.
 */
export interface IrqView {
  /** INTx is seen as the platform's lines (kind line); per-function intx events are not. */
  lines: boolean;
  /**
   * Messages seen as writes into [base, base + size) of the irq owner's
   * memory, as the dwords that changed during an op (kind message). The
   * range holds `fill` in every byte when a session opens. Null: no
   * message is seen.
   */
  messages: { base: number; size: number; fill: number } | null;
  /**
   * Interrupts seen as VFIO eventfds (a vfio-user client): MSI and MSI-X
   * by function and vector, without address or data, and INTx by function
   * when it asserts (vfio signals the assertion; the line's release is not
   * signalled).
   */
  eventfds?: boolean;
  /**
   * MSI and MSI-X messages by function, vector, address and data, as a
   * hypervisor that emulates the capabilities holds them (Xen's vPCI);
   * INTx is not seen.
   */
  messagesByFunction?: boolean;
}

/** What a target can observe about an access beyond its value; oracles compare only these. */
export interface Observes {
  /** Where an access was delivered (Observation.to). */
  delivery: boolean;
  /** Interrupts raised (Observation.irqs): all as the model names them (true), none (false), or a CPU-side view. */
  irqs: boolean | IrqView;
  /**
   * Whether the target tells an abort (ur, ma) from a completion. A target
   * that cannot (a CPU-side view such as QEMU's qtest) reports "ok" with
   * the value it read; the value is still compared.
   */
  aborts: boolean;
  /**
   * The fault reasons the target sees. Any other fault completes silently
   * on it: a DMA read gets zeros, a DMA write is dropped.
   */
  faults: 'all' | readonly FaultReason[];
}

/** A target that sees everything the model predicts. */
export const OBSERVES_ALL: Observes = { delivery: true, irqs: true, aborts: true, faults: 'all' };

/** One range of a target's own flat view of an address space, as it names it. */
export interface MapSegment {
  start: number;
  end: number;
  name: string;
  /** The device that owns the region, by its topology id, when the target says. */
  owner?: string;
}

/**
 * What a target shows of its own state after an op, beyond the op's
 * result: its flat views of the memory and IO spaces (QEMU's `info mtree
 * -f`), for the maps oracle to hold against the model's. Ranges inside
 * the topology's reserved ranges are left out.
 */
export interface Evidence {
  maps?: FlatMaps;
  /**
   * The target's own trace events logged since the previous op that
   * carries events (QEMU: pci_cfg_*, pci_update_mappings_*, guest errors).
   * Shown with findings; no oracle reads them.
   */
  events?: string[];
}

/** A target's flat views of the CPU's memory and IO spaces. */
export interface FlatMaps {
  memory: MapSegment[];
  io: MapSegment[];
}

export interface Observation {
  status: Status;
  reason?: Reason;
  /**
   * The errno a refusal carried on the target's wire (VFIO, vfio-user),
   * by name (harness/spec/errno.ts). The reason is isoroot's word for a
   * refusal; the errno is the target's.
   */
  errno?: string;
  /** Value read (config, MMIO, PIO reads; PASID alloc). */
  value?: bigint;
  /** Bytes read by DMA. */
  data?: Uint8Array;
  to?: Delivery;
  irqs?: Irq[];
  /**
   * Predictions only: the model cannot tell the value or data (an opaque
   * function's register, a reserved platform range). Status and delivery
   * still hold. Never part of a trace.
   */
  unknown?: true;
  /**
   * Predictions only: of the value, the bits the model predicts (absent:
   * all of them). A learned function's dynamic status bits are not.
   */
  known?: bigint;
  /** Predictions only: of the data, the bits the model predicts, byte by byte (absent: all of them). */
  knownData?: Uint8Array;
  /** The target's evidence after the op (observations only). */
  evidence?: Evidence;
  /**
   * Observations only: "harness" when isoroot computed the observation
   * itself (a driver's decision from its own tables, a VMM's own decode),
   * so that it is no evidence about the target and the oracles skip it.
   */
  source?: 'harness';
  /**
   * Observations only: departures from the target's protocol in its
   * answer that did not break the conversation (a vfio-user error reply
   * with a body), each with the field and what the specification wants.
   */
  departures?: { field: string; message: string }[];
  /** Predictions only: the rule that decides the outcome (status, reason, delivery, interrupts). */
  rule?: RuleId;
  /** Predictions only: the rule that decides the value or data read, where another one does. */
  valueRule?: RuleId;
  /** Predictions only: an implementation choice this op met, with the option taken and whether a profile fixed it. */
  choice?: { id: ChoiceId; option: string; declared: boolean; departs?: string };
  /** Predictions only: the other outcomes the specifications allow at that choice. */
  allowed?: { option: string; obs: Observation }[];
}

/** What a read nobody claims returns: all ones, `size` bytes of them (PCI 3.0 §3.3.3.1, Master Abort). */
export const allOnes = (size: number): bigint => (1n << BigInt(8 * size)) - 1n;

export const regionName = (r: number): Region => (r === 6 ? 'rom' : (`bar${r}` as Region));
