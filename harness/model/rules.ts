/**
 * The decisions of the model that mutants and quirks replace. Each mutant
 * in harness/adapters/model/mutants.ts overrides exactly one of these;
 * each quirk (a known bug of a target, harness/adapters/quirks.ts) the
 * ones that reproduce that bug. The reference model always uses
 * REFERENCE_RULES.
 */
import { ownerOf, type Topology } from '../topology/types.ts';
import type { IntxArrival } from './intx-lines.ts';

export interface Rules {
  /** The root whose IO space root r uses (the topology's contract). */
  ioOwner(t: Topology, r: number): number;
  /** The root whose memory receives root r's DMA (the memory owner of r). */
  dmaMemoryOwner(t: Topology, r: number): number;
  /** The upper dword of a 64-bit BAR as decoded. */
  bar64High(hi: number): number;
  /** Whether a BAR's old placement keeps decoding after it moves or is disabled. */
  keepStaleMappings: boolean;
  /** Whether freeing a PASID removes every binding of it. */
  freeUnbinds: boolean;
  /** The namespace a device's PASIDs are allocated in, given its context's key. */
  pasidNamespace(contextKey: string, dev: string): string;
  /** The bus number ECAM decodes from the address bits 27:20. */
  ecamBus(bus: number): number;
  /** The decoded limit of a bridge's memory window (PCI-to-PCI Bridge 1.2 §3.2.5.8). */
  bridgeMemLimit(limit: number): number;
  /** The root whose interrupt space receives an MSI/MSI-X of a device on root r. */
  msiSpace(t: Topology, r: number): number;
  /** The registered BDFs whose emulator receives a config access to `bdf`, in order of precedence. */
  emulatorKeys(bdf: number): readonly number[];
  /**
   * Whether the root's own handlers take an access before any emulator's
   * claim (Xen: hvm_io_intercept's internal handlers, vPCI's config traps,
   * and the p2m's mappings come before ioreq_server_select): config
   * accesses never reach an emulator, nor does an access a decoding BAR
   * claims, nor a port other than CF8..CFF (the hardware domain's own).
   */
  emulatorsAfterInternal: boolean;
  /** Whether a bridge's reset leaves its windows decoding where they were until its windows are written again. */
  keepWindowsOnReset: boolean;
  /**
   * Whether a config request finds its root by the first root whose bridges
   * claim the bus number (QEMU's pci_find_bus_nr, config-route.ts
   * claimedRoot) rather than by the roots' own bus ranges.
   */
  expanderBusClaims: boolean;
  /** Whether an edu DMA between its buffer and [addr, addr + count) aborts the target (its range check). */
  eduDmaAborts(addr: bigint, count: bigint): boolean;
  /** What CONFIG_ADDRESS holds after a DWORD write of `value` (PCI 3.0 §3.2.2.3.2: bits 30:24 and 1:0 are reserved, read as 0). */
  cf8Latch(value: number): number;
  /** The register a CONFIG_DATA access at `port` reaches under `latch`: register bits 7:2, and the byte within by port. */
  cf8Register(latch: number, port: number): number;
  /** Bits 1:0 of MSI's Message Address after a write of `written` to its low byte (PCI 3.0 §6.8.1.4: reserved, read as 0). */
  msiAddressLowBits(written: number): number;
  /** Command bits a guest's view keeps as written though the function implements none of them (PCI 3.0 §6.2.2: unimplemented bits read 0). */
  guestCommandKeeps: number;
  /**
   * Whether turning memory decode on fails, silently, when a page of the
   * function's MSI-X table or PBA is backed by RAM or by another device's
   * mapping (a hypervisor that must trap those pages and cannot): the
   * device's Command keeps its old value and its memory BARs stop taking
   * writes until a decode enable succeeds.
   */
  msixHoleClash: boolean;
  /**
   * VT-d scalable mode: whether a PASID entry's translation type is
   * checked before its Present bit, so that an entry that is all zeros
   * (never written, or cleared whole) faults as invalid rather than as not
   * present (VT-d §9.6: a not-present entry's other fields are ignored).
   */
  pasidTypeBeforePresent: boolean;
  /**
   * VT-d scalable mode: whether a PASID entry whose Present bit alone was
   * cleared keeps translating through its old fields (any page of its old
   * domain, as mapped now) for as long as the IOMMU holds the device's
   * context entry, whatever PASID-cache and IOTLB invalidations follow.
   */
  pasidPresentIgnoredWhenCached: boolean;
  /**
   * Whether a hypervisor maps a memory BAR from the address last written to
   * it, bits below the BAR's size included (not from the address the BAR
   * decodes): the pages before that one are not mapped, and a range that
   * wraps past 2^64 kills it.
   */
  barCachesWritten: boolean;
  /**
   * Whether a reset or a plug gives a guest's function (a root seen through
   * a hypervisor's guest view) the lowest free slot of its bus at or below
   * its own, else the lowest free one above: a hypervisor that re-assigns
   * the device and numbers its virtual slots first come, first served.
   */
  guestFirstFreeSlot: boolean;
  /**
   * Whether a guest's memory BAR mappings outlive the function's unplug or
   * reset (a hypervisor whose p2m nothing unmaps then): each place the BAR
   * decoded keeps reaching the device whenever it decodes memory again.
   */
  guestKeepsMappings: boolean;
  /**
   * Whether a decode enable whose memory BARs cannot all be mapped (one
   * lies past the physical address width) leaves memory decode off, the
   * rest of the Command write taken: a hypervisor that turns decoding off
   * when a map fails.
   */
  mapFailureDropsDecode: boolean;
  /** The platform line an asserted INTx arrives at (ACPI _PRT: the root's routing table), or null for none. */
  intxLine(t: Topology, a: IntxArrival): number | null;
}

/** The line the root's routing table gives a slot's pin (ACPI §6.2.13). */
export const routedLine = (t: Topology, a: IntxArrival): number | null => t.roots[a.root].intxRouting?.find((x) => x.slot === a.slot)?.lines[a.pin] ?? null;

export const REFERENCE_RULES: Rules = {
  ioOwner: (t, r) => ownerOf(t, r, 'io'),
  dmaMemoryOwner: (t, r) => ownerOf(t, r, 'memory'),
  bar64High: (hi) => hi,
  keepStaleMappings: false,
  freeUnbinds: true,
  pasidNamespace: (ctx) => ctx,
  ecamBus: (bus) => bus,
  bridgeMemLimit: (limit) => limit,
  msiSpace: (t, r) => ownerOf(t, r, 'irq'),
  emulatorKeys: (bdf) => [bdf],
  emulatorsAfterInternal: false,
  keepWindowsOnReset: false,
  expanderBusClaims: false,
  eduDmaAborts: () => false,
  cf8Latch: (value) => (value & 0x80fffffc) >>> 0,
  msiAddressLowBits: () => 0,
  guestCommandKeeps: 0,
  msixHoleClash: false,
  pasidTypeBeforePresent: false,
  pasidPresentIgnoredWhenCached: false,
  barCachesWritten: false,
  guestFirstFreeSlot: false,
  guestKeepsMappings: false,
  mapFailureDropsDecode: false,
  cf8Register: (latch, port) => (latch & 0xfc) + (port - 0xcfc),
  intxLine: routedLine,
};
