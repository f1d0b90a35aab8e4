/**
 * A topology: the roots a target hosts, the devices on them, and the
 * isolation contract, i.e. which roots share which address spaces.
 */

/** The spaces a root owns or shares (the domain brief's isolation contract). */
export const SPACE_KINDS = ['memory', 'io', 'dma', 'irq', 'pasid', 'config'] as const;
export type SpaceKind = (typeof SPACE_KINDS)[number];

export const PERSONALITIES = ['endpoint', 'edu', 'pci-testdev', 'iommu-testdev', 'bridge', 'root-port', 'host-bridge', 'opaque'] as const;
export type Personality = (typeof PERSONALITIES)[number];

export const CAP_NAMES = ['pm', 'msi', 'msix', 'pcie', 'pasid', 'ats', 'acs'] as const;
export type CapName = (typeof CAP_NAMES)[number];

export const BAR_KINDS = ['mem32', 'mem64', 'io'] as const;
export type BarKind = (typeof BAR_KINDS)[number];

export interface BarSpec {
  kind: BarKind;
  /** Bytes; a power of two, at least 16 for memory and 4 for IO (PCI 3.0 §6.2.5.1). */
  size: number;
  prefetch?: boolean;
}

/**
 * What is known of an opaque function: the identity registers. Reads of
 * anything else are unpredictable (the model answers "unknown").
 */
export interface OpaqueIdentity {
  vendor: number;
  device: number;
  /** 24-bit class code: base class, sub-class, programming interface. */
  classCode: number;
  revision?: number;
  /** The Header Type byte (0x0e), multi-function bit included. */
  headerType?: number;
}

/**
 * What isoroot learned of a function it does not know, from the target
 * itself when a session opened (harness/adapters/learn.ts): its config
 * space, which bits take writes, and on vfio-user what the device says of
 * its regions and interrupts. A trace carries it, so that it replays
 * without the target.
 */
export interface LearnedFunction {
  /** Config space as read at the session's start: 256 or 4096 bytes, as hex. */
  config: string;
  /** The bits that took a written value when probed, as hex of the same length (0: read-only or not probed). */
  wmask: string;
  /** vfio-user: each region's size (DEVICE_GET_REGION_INFO), by index. */
  regions?: number[];
  /** vfio-user: each interrupt type's count (DEVICE_GET_IRQ_INFO): INTx, MSI, MSI-X, ERR, REQ. */
  irqs?: number[];
}

export interface DeviceSpec {
  /** Unique across the topology; operations name devices by it. */
  id: string;
  kind: Personality;
  /** Device number on its bus, 0..31. */
  slot: number;
  /** Function number, 0..7. */
  fn: number;
  /** Endpoint only: BARs in order; a 64-bit BAR takes two slots. */
  bars?: BarSpec[];
  /** Endpoint only: expansion ROM size in bytes (power of two, >= 2 KiB). */
  rom?: number;
  /** Endpoint only: capabilities. edu, pci-testdev and bridges have fixed ones. */
  caps?: CapName[];
  /** MSI vectors the function asks for (1..32, power of two). */
  msiVectors?: number;
  /** MSI-X table size (1..2048). */
  msixVectors?: number;
  /** Bridges and root ports: the devices on the secondary bus. */
  children?: DeviceSpec[];
  /** IOMMU domain index in the DMA space of the root; absent means not attached. */
  domain?: number;
  /** PASID context index in the PASID space of the root; absent means none. */
  pasidContext?: number;
  /** The emulator that hosts this function; absent means the root itself. */
  emulator?: string;
  /** false: a hot-plug candidate, absent at start. */
  present?: boolean;
  /** Opaque only: the identity registers, where known. */
  identity?: OpaqueIdentity;
  /** Opaque only: what was learned of the function from the target; the model then predicts what the specifications define for it. */
  learned?: LearnedFunction;
  /** The target's own name for the device model (QEMU's -device driver), for opaque devices. */
  qdev?: string;
  /** Provided by the target's platform (a chipset function): the target does not create it. */
  builtin?: boolean;
  /**
   * Root ports: the power indicator of a populated slot after reset, which
   * PCIe Base §7.5.3.10 leaves to the platform: 'on' (QEMU 7.2, the
   * default) or 'off' (QEMU 11).
   */
  resetPowerIndicator?: 'on' | 'off';
  /**
   * Root ports: false builds the port without its ACS capability (QEMU's
   * pcie-root-port,disable-acs=on), so that the port does not isolate
   * what is below it (PCIe Base §6.12); absent: with ACS.
   */
  acs?: boolean;
  /**
   * The function's identity number (the generic endpoint shows it in its
   * BARs' identity registers); default: its place in walk order, from 1.
   * A vfio-user server keeps each device's number when it moves the
   * device onto a root of its own, so that clients see which one answers.
   */
  uid?: number;
}

/**
 * A range of a memory or IO space that the platform decodes with devices
 * the model does not emulate (legacy ISA ports, firmware ROM, interrupt
 * controllers). Accesses there are unpredictable; generators keep writes
 * out of them.
 */
export interface ReservedRange {
  space: 'memory' | 'io';
  base: number;
  size: number;
  /** What is there, for messages. */
  name: string;
  /** PCI decoders (BARs, windows) outrank the range where they overlap; otherwise it outranks them. */
  pciWins?: boolean;
}

/**
 * Where the INTx pins of one slot on a root bus arrive: one row of the
 * platform's PCI routing table (ACPI §6.2.13, _PRT).
 */
export interface IntxRoute {
  slot: number;
  /** The platform interrupt line (QEMU: the IOAPIC input, the GSI) of INTA, INTB, INTC and INTD. */
  lines: number[];
}

export const SCALABLE_STAGES = ['first', 'second', 'both'] as const;
export type ScalableStages = (typeof SCALABLE_STAGES)[number];

export interface RootSpec {
  /** Root bus number (QEMU's pxb bus_nr). */
  bus: number;
  /** Last bus number below this root. */
  busLimit: number;
  /** For each shared space: the index of the root that owns it. Absent kinds are the root's own. */
  share?: Partial<Record<SpaceKind, number>>;
  /** Memory owner: RAM bytes at address 0. */
  ram?: number;
  /** Config owner: ECAM base in its memory space, or null for none. */
  ecam?: number | null;
  /** Config owner: CF8/CFC ports in its IO space. */
  cf8?: boolean;
  /** DMA owner: whether DMA is translated by an IOMMU (else identity). */
  iommu?: boolean;
  /**
   * DMA owner, with an IOMMU: Intel VT-d in scalable mode (§3.4.3, §9.4).
   * A device's requests without a PASID are translated through PASID 0
   * (RID_PASID) of its PASID table, so dma.attach binds that entry; the
   * devices of one PASID context share one table, and with it their
   * attachment and every binding. The value says which translation stages
   * the IOMMU offers (ECAP.FSTS, ECAP.SSTS: §11.4.3); a binding through
   * another is refused, and dma.attach uses second-stage where offered.
   */
  scalable?: ScalableStages;
  /** DMA owner: number of IOMMU domains. */
  domains?: number;
  /** PASID owner: number of PASID contexts. */
  pasidContexts?: number;
  /** Memory or IO owner: platform ranges of those spaces. */
  reserved?: ReservedRange[];
  /** Where INTx of the root bus's slots arrives, for targets that see platform lines; absent: not modelled. */
  intxRouting?: IntxRoute[];
  devices: DeviceSpec[];
  /**
   * How software on this root sees its functions' configuration space:
   * absent, as the functions hold it; 'xen-vpci-guest', as Xen's vPCI
   * shows it to a guest domain (harness/model/guest-view.ts).
   */
  view?: RootView;
}

export const ROOT_VIEWS = ['xen-vpci-guest'] as const;
export type RootView = (typeof ROOT_VIEWS)[number];

/**
 * How device timers (edu's DMA and factorial) advance. virtual (the
 * default): only clock.step moves time. immediate: timers fire before the
 * op that armed them completes, as on a target without a virtual clock (a
 * vfio-user server finishes the device's work before its next reply).
 */
export const CLOCKS = ['virtual', 'immediate'] as const;
export type Clock = (typeof CLOCKS)[number];

/**
 * What a QEMU command line says that the topology does not describe
 * (an imported reproducer's): carried to QEMU as it is.
 */
export interface QemuLine {
  /** Arguments passed through verbatim: drives, block devices, netdevs, audio, devices on other buses (ISA, SCSI, USB…). */
  args: string[];
  /** The -machine value as given, less its accelerator (a versioned type such as pc-q35-5.0, and properties). */
  machine?: string;
  /** The input gave no -nodefaults: QEMU adds its default devices (a VGA card, a NIC), which the topology lists as the machine's. */
  defaults?: boolean;
  /** What isoroot adds to the command line itself, for readers of the trace (not run from here). */
  added?: string[];
}

export interface Topology {
  name?: string;
  clock?: Clock;
  roots: RootSpec[];
  /** Names of emulators (ioreq servers, device models) that can claim BDFs and ranges. */
  emulators?: string[];
  /** QEMU only: the input's own command line where the topology does not describe it. */
  qemu?: QemuLine;
}

/** Index of the root that owns the given space of root r. */
export const ownerOf = (t: Topology, r: number, kind: SpaceKind): number => t.roots[r].share?.[kind] ?? r;

/**
 * The roots a reset of root r reaches: the host bridge that serves r's
 * config space resets, and with it every root whose config space it serves
 * (QEMU's expander roots share the machine's, which system_reset resets as
 * one). The model and the oracles both ask here, so they cannot disagree on
 * what a root.reset tore down.
 */
export function resetReach(t: Topology, r: number): number[] {
  const owner = ownerOf(t, r, 'config');
  const out: number[] = [];
  for (let x = 0; x < t.roots.length; x++) if (ownerOf(t, x, 'config') === owner) out.push(x);
  return out;
}

/** Walks every device with its root index and its parent (null on a root bus). */
export function* walkDevices(
  t: Topology,
): Generator<{ root: number; dev: DeviceSpec; parent: DeviceSpec | null; depth: number }> {
  for (let r = 0; r < t.roots.length; r++) {
    const stack: { dev: DeviceSpec; parent: DeviceSpec | null; depth: number }[] = [];
    for (const d of [...t.roots[r].devices].reverse()) stack.push({ dev: d, parent: null, depth: 0 });
    while (stack.length > 0) {
      const e = stack.pop()!;
      yield { root: r, ...e };
      for (const c of [...(e.dev.children ?? [])].reverse()) stack.push({ dev: c, parent: e.dev, depth: e.depth + 1 });
    }
  }
}

export const isBridge = (d: DeviceSpec): boolean => d.kind === 'bridge' || d.kind === 'root-port';

/** Defaults that the model and firmware plan share. */
export const DEFAULT_RAM = 0x0800_0000; // 128 MiB
export const DEFAULT_ECAM = 0xb000_0000; // q35's default PCIEXBAR
/** Buses an ECAM window covers, 1 MiB each (PCIe Base §7.2.2). */
export const ECAM_BUSES = 256;

/**
 * Physical Slot Number of each root port (PCIe Base §7.5.3.9): 1, 2, …
 * in walk order. Targets that build root ports give them these numbers,
 * and the model reports them in the Slot Capabilities register.
 */
export function physicalSlots(t: Topology): Map<string, number> {
  const out = new Map<string, number>();
  for (const { dev } of walkDevices(t)) if (dev.kind === 'root-port') out.set(dev.id, out.size + 1);
  return out;
}
