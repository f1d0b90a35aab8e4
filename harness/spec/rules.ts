/**
 * The rule book: every rule a prediction of the model or a finding of an
 * oracle rests on, with the section that states it. A finding names one
 * of these (or a profile entry, harness/spec/choices.ts), so that a reader
 * can tell a target's fault from an assumption of isoroot's.
 *
 * Mandated rules only: where a specification leaves the outcome to the
 * implementation, the point is a choice (choices.ts), never a rule here.
 */

export interface RuleText {
  /** Where it is written: specification and section, or the device's own definition. */
  cites: string;
  /** The rule in one sentence. */
  says: string;
}

const rule = (cites: string, says: string): RuleText => ({ cites, says });

export const RULES = {
  'op.names': rule('the topology (docs/model.md)', 'an operation names a root or a device of the topology; any other is refused'),
  // ---- configuration mechanism and routing -------------------------------------------
  'config.ecam': rule('PCIe Base §7.2.2', 'an ECAM window maps bus, device, function and register to address bits 27:20, 19:15, 14:12 and 11:0'),
  'config.cf8': rule('PCI 3.0 §3.2.2.3.2', 'a DWORD write to CONFIG_ADDRESS (0xCF8) latches enable, bus, device, function and register; CONFIG_DATA (0xCFC..0xCFF) carries the access; other accesses to 0xCF8 pass through'),
  'config.routing': rule('PCI-to-PCI Bridge 1.2 §3.2.5.3-§3.2.5.4; PCIe Base §7.3.1', 'a configuration request reaches the function at its bus number: on the root bus, or below the bridge whose secondary..subordinate range holds the bus'),
  'config.absent-function': rule('PCI 3.0 §6.1; PCIe Base §2.3.1', 'a configuration read of a function that does not exist completes with all ones (Unsupported Request)'),
  'config.present-function': rule('PCI 3.0 §6.1, §6.2.1; PCIe Base §7.2.2', 'a function that exists answers configuration reads at its own bus, device and function number: its Vendor ID is never 0xFFFF, which is what a function that is not there returns'),
  'config.size': rule('PCI 3.0 §6.1; PCIe Base §7.2', 'a conventional function has 256 bytes of configuration space, a PCI Express function 4 KiB; registers beyond read all ones'),
  'config.read-only': rule('PCI 3.0 §6.1, §6.2', 'read-only register bits keep their value whatever is written; reserved bits read zero'),
  // ---- the type 0 and type 1 headers ---------------------------------------------------
  'header.identity': rule('PCI 3.0 §6.2.1', 'Vendor ID, Device ID, Revision ID, Class Code and Header Type are read-only'),
  'header.command': rule('PCI 3.0 §6.2.2', 'the Command register enables IO and memory decode, bus mastering and INTx; unimplemented bits are read-only zero'),
  'header.status': rule('PCI 3.0 §6.2.3', 'Status bits are read-only or write-1-to-clear; Interrupt Status follows the function\'s INTx request; Capabilities List says whether a list is present'),
  'header.misc': rule('PCI 3.0 §6.2.4', 'Cache Line Size, Latency Timer, Interrupt Line and Pin, BIST, Min_Gnt, Max_Lat and the subsystem IDs'),
  'header.bar': rule('PCI 3.0 §6.2.5.1', 'a BAR\'s low bits give its type and are read-only; the bits below its size read zero, so writing all ones reads back the size; a BAR the function does not implement is hardwired to zero'),
  'header.rom': rule('PCI 3.0 §6.2.5.2', 'the expansion ROM BAR: bits 31:11 address (those below the size read zero), bit 0 enable'),
  'header.cap-list': rule('PCI 3.0 §6.7; PCIe Base §7.6.3', 'the capability pointer and each capability\'s ID and next pointer are read-only'),
  'bridge.bus-numbers': rule('PCI-to-PCI Bridge 1.2 §3.2.5.2-§3.2.5.4', 'primary, secondary and subordinate bus numbers are read-write'),
  'bridge.windows': rule('PCI-to-PCI Bridge 1.2 §3.2.5.6-§3.2.5.10', 'IO, memory and prefetchable windows: base and limit registers with read-only granularity bits'),
  'bridge.control': rule('PCI-to-PCI Bridge 1.2 §3.2.5.18', 'Bridge Control: parity, SERR, ISA and VGA enables, secondary bus reset'),
  // ---- capabilities ------------------------------------------------------------------------
  'cap.pm': rule('PCI PM 1.2 §3.2', 'Power Management Capabilities (read-only) and Control/Status: power state and PME_En read-write, PME_Status write-1-to-clear, unsupported states ignored'),
  'cap.msi': rule('PCI 3.0 §6.8.1', 'MSI: Message Control (enable, Multiple Message Enable), address, data, mask and pending bits'),
  'cap.msix': rule('PCI 3.0 §6.8.2', 'MSI-X: Message Control (enable, function mask, table size read-only), table and PBA offsets read-only; table entries and the read-only PBA in a BAR'),
  'cap.pcie': rule('PCIe Base §7.5.3', 'the PCI Express capability: capabilities registers read-only, control registers read-write, status bits read-only or write-1-to-clear'),
  'cap.pasid': rule('PCIe Base §7.8.8', 'the PASID extended capability: Max PASID Width read-only, PASID Enable read-write'),
  'cap.ats': rule('PCIe Base §10.5.1', 'the ATS extended capability'),
  'cap.acs': rule('PCIe Base §7.7.8', 'the ACS extended capability'),
  // ---- a device's own registers ----------------------------------------------------------
  'device.endpoint': rule("isoroot's generic endpoint (docs/model.md, personalities/endpoint.ts)", 'the endpoint\'s BAR registers: identity, scratch, doorbells'),
  'device.edu': rule('QEMU hw/misc/edu.c, docs/specs/edu.rst', 'edu\'s registers: identification, liveness, factorial, interrupts, DMA engine'),
  'device.pci-testdev': rule('QEMU hw/misc/pci-testdev.c', 'pci-testdev\'s selector and counters'),
  'device.iommu-testdev': rule(
    "QEMU's iommu-testdev (hw/misc/iommu-testdev.c, include/hw/misc/iommu-testdev.h, QEMU 11)",
    "4-byte registers: a read of offset 0 runs the armed transfer, the pattern 0x12345678 written at the IOVA through the device's IOMMU address space (Bus Master Enable is not consulted), page by page; RESULT then holds 0, 0xdead0002 (the write failed) or 0xdead0004 (the read-back differs)",
  ),
  'harness.itd-length': rule(
    'isoroot (docs/qemu.md, iommu-testdev)',
    'isoroot refuses to set an iommu-testdev transfer longer than 64 KiB: QEMU allocates the length twice for whatever a guest writes, up to 8 GiB',
  ),
  'device.root-port': rule('QEMU hw/pci-bridge/pcie_root_port.c, hw/pci/pcie.c', 'QEMU\'s PCIe root port: its header, PCIe, MSI-X and slot registers'),
  'device.bridge': rule("isoroot's PCI-to-PCI bridge (personalities/bridge.ts)", 'a conventional bridge\'s header'),
  'device.host-bridge': rule('isoroot host bridge (personalities/host-bridge.ts)', 'a host bridge\'s header'),
  'device.opaque': rule('the function\'s identity as the target declares it', 'an opaque function\'s identity registers'),
  'device.learned': rule('what isoroot learned from the target at the session\'s start (the trace\'s topology)', 'a learned function\'s registers at reset and which of their bits software can write'),
  // ---- decode of memory and IO space ------------------------------------------------------
  'decode.bar': rule('PCI 3.0 §6.2.5.1, §6.2.2', 'a BAR claims [base, base + size) of its space while the Command register enables that space, and nowhere else'),
  'decode.rom': rule('PCI 3.0 §6.2.5.2', 'an expansion ROM decodes while its enable bit and Memory Space are set'),
  'decode.bridge-window': rule('PCI-to-PCI Bridge 1.2 §4.1-§4.3', 'a bridge forwards downstream the accesses inside its windows, and only while its Command register enables the space'),
  'decode.power': rule('PCI PM 1.2 §5.4', 'a function decodes memory and IO only in D0'),
  'decode.overlap': rule('PCI 3.0 §6.2.5.1 (overlap left undefined); the model follows the later mapping, as QEMU\'s memory API does', 'where decoders of one space overlap, the one mapped last answers'),
  'decode.ram': rule('the topology (RootSpec.ram)', 'RAM of the memory owner at address 0'),
  'decode.platform': rule('the topology (RootSpec.reserved)', 'a reserved platform range answers accesses with values the model does not know'),
  'decode.master-abort': rule('PCI 3.0 §3.3.3.1', 'an access nobody claims ends in Master-Abort: a write goes nowhere'),
  // ---- interrupts --------------------------------------------------------------------------
  'irq.intx': rule('PCI 3.0 §2.2.6, §6.2.2, §6.2.3', 'INTx follows the function\'s request unless Interrupt Disable is set; the Interrupt Pin says which pin'),
  'irq.swizzle': rule('PCI-to-PCI Bridge 1.2 §9.1', 'a bridge maps pin x of device D on its secondary bus to pin (x + D) mod 4'),
  'irq.routing': rule('ACPI §6.2.13 (_PRT), as the topology gives it (RootSpec.intxRouting)', 'each root-bus slot\'s INTA..INTD arrive at the platform lines the routing table names'),
  'irq.msi': rule('PCI 3.0 §6.8.1', 'an enabled, unmasked MSI vector is a DWORD write of the message data to the message address; masked vectors are pending'),
  'irq.msix': rule('PCI 3.0 §6.8.2', 'an enabled, unmasked MSI-X vector is a write of its table entry\'s data to its address; masked vectors set their PBA bit'),
  'irq.exclusive': rule('PCI 3.0 §6.8', 'while MSI or MSI-X is enabled the function does not use INTx, and a function uses MSI-X over MSI'),
  'irq.bus-master': rule('PCI 3.0 §6.8.1', 'a message is a memory write: it needs Bus Master Enable on the function and every bridge above it'),
  // ---- DMA, IOMMU, PASID -------------------------------------------------------------------
  'dma.bus-master': rule('PCI 3.0 §6.2.2; PCI-to-PCI Bridge 1.2 §3.2.5.2', 'a function masters DMA only with Bus Master Enable set on it and on every bridge above it'),
  'dma.translation': rule('Intel VT-d §3; VFIO type-1 (linux/vfio.h VFIO_IOMMU_MAP_DMA)', 'DMA of an attached device is translated by its IOMMU domain: unmapped IOVAs and missing permissions fault'),
  'dma.memory': rule('the topology (isolation contract)', 'DMA lands in the RAM of its root\'s memory owner'),
  'dma.pasid': rule('PCIe Base §6.20; Intel VT-d §9.4', 'a PASID-tagged request is translated by the address space its PASID is bound to; PASIDs need the capability enabled and a binding'),
  'dma.rid-pasid': rule(
    'Intel VT-d §9.4 (RID_PASID), §9.6 (PASID-table entry: with Present clear, the other fields are ignored), §6.5 (caching)',
    "under scalable mode a request without a PASID is translated through PASID 0 of the device's PASID table, shared by the devices of its context; an entry that is not present faults as not present, whatever its other fields hold",
  ),
  'iommu.map': rule('VFIO type-1 (linux/vfio.h VFIO_IOMMU_MAP_DMA / UNMAP_DMA); vfio-user "VFIO_USER_DMA_MAP"', 'a mapping may not overlap a live one; unmapping what was never mapped, or part of a mapping, is refused'),
  'iommu.attach': rule('VFIO type-1 (VFIO_GROUP_SET_CONTAINER)', 'a device is attached to at most one domain at a time'),
  'pasid.context': rule('seed 004 (PASID allocation); PCIe Base §6.20', 'PASIDs are allocated, bound, unbound and freed in a context shared by its devices: a live PASID is handed out once; a freed PASID translates nothing'),
  // ---- emulators, lifecycle, regions -------------------------------------------------------
  'emulator.routing': rule('seed 002 (Xen vPCI and ioreq servers)', 'every configuration, memory or IO access reaches exactly one handler: the emulator that registered it, or the root'),
  'lifecycle.hotplug': rule('PCIe Base §6.7', 'a hot-plugged device appears in its slot; an unplugged one answers nothing and decodes nothing'),
  'lifecycle.reset': rule('PCIe Base §6.6.2', 'a function-level reset returns every register to its reset value, turns decode and interrupts off and clears device state'),
  'lifecycle.root-reset': rule('PCIe Base §6.6.1', 'a reset of a root resets every function below it and what the root owns (IOMMU mappings, PASIDs, emulator claims)'),
  'region.access': rule('vfio-user "VFIO_USER_REGION_READ", "VFIO_USER_REGION_WRITE"; linux/vfio.h region indexes', 'a region access reads or writes the device\'s region at the offset; one past the region\'s end, or larger than the negotiated transfer size, is refused'),
  'platform.poweroff': rule('ACPI §7.4.2 (sleeping state S5); QEMU exits with status 0 when the guest powers the machine off', 'a guest may switch the platform off: what follows does not run'),
  'platform.clock': rule('the target\'s virtual clock (QEMU qtest clock_step)', 'device timers fire when virtual time passes their deadline'),
  // ---- isolation: never implementation-defined ---------------------------------------------
  'isolation.memory': rule('the topology\'s isolation contract; seed 000', 'roots that do not share their memory space never reach each other\'s decoders or RAM'),
  'isolation.io': rule('the topology\'s isolation contract; seed 001', 'roots that do not share their IO space never reach each other\'s IO decoders'),
  'isolation.config': rule('the topology\'s isolation contract; seed 002', 'a configuration access of one root never reaches a function of a root with another config space'),
  'isolation.dma': rule('the topology\'s isolation contract; seed 001', 'DMA of a device lands in its own root\'s address space, never in another root\'s memory'),
  'isolation.irq': rule('the topology\'s isolation contract; seed 000', 'an interrupt of a function is raised in its own root\'s interrupt space'),
  'isolation.pasid': rule('the topology\'s isolation contract; seed 004', 'a PASID namespace belongs to one context: a live PASID is never handed out twice in it'),
  'isolation.stale-mapping': rule('PCI 3.0 §6.2.5.1; PCIe Base §6.6.2, §6.7', 'a mapping ends with its owner: a BAR that moved, was disabled, reset or unplugged decodes nothing at its old place'),
  'isolation.stale-translation': rule('Intel VT-d §6.5; VFIO type-1; PCIe Base §6.20', 'a DMA translation ends with its mapping, its attachment, its PASID binding or its PASID'),
  'isolation.stale-message': rule('PCI 3.0 §6.8.1, §6.8.2', 'a function whose MSI or MSI-X is disabled sends no message'),
  // ---- Linux VFIO (a user of the kernel's IOMMU groups and containers) -------------------------
  'vfio.group.isolated': rule('Linux Documentation/driver-api/vfio.rst "Groups, Devices, and IOMMUs"; drivers/iommu/iommu.c pci_device_group; PCIe Base §6.12', 'a device whose path to the root is isolated by ACS, and that is not a function of a multi-function device without ACS, has an IOMMU group of its own'),
  'vfio.group.no-acs': rule('drivers/iommu/iommu.c pci_device_group, drivers/pci/pci.c pci_acs_path_enabled; PCIe Base §6.12.1.1 (SV, RR, CR, UF)', 'a device below a bridge whose path to the root lacks ACS (a root port without it, any conventional or PCIe-to-PCI bridge) is in the group of that bridge'),
  'vfio.group.multifunction': rule('drivers/iommu/iommu.c get_pci_function_alias_group; PCIe Base §6.12.1.2', 'the functions of a multi-function device without ACS share one group'),
  'vfio.group.file': rule('drivers/vfio/vfio_main.c vfio_group_fops_open; Documentation/driver-api/vfio.rst', 'a group\'s file exists once a device of it is bound to a VFIO driver, and is open to one user at a time (EBUSY)'),
  'vfio.viability': rule('Documentation/driver-api/vfio.rst ("viable"); drivers/iommu/iommu.c iommu_group_claim_dma_owner', 'a group is viable when no device of it is bound to a kernel driver that does DMA through the kernel\'s own domain; only a viable group joins a container (EPERM), and no such driver binds to a device of a group a VFIO user holds'),
  'vfio.container': rule('drivers/vfio/container.c vfio_container_attach_group, vfio_ioctl_set_iommu; linux/vfio.h', 'a group is in at most one container (EINVAL); the IOMMU model is set once a group is in the container; a group leaves its container only when none of its devices is open (EBUSY)'),
  'vfio.device.open': rule('drivers/vfio/vfio_main.c vfio_group_get_device_fd, vfio_device_open', 'a device\'s file comes from its own group, once the group is in a container with its IOMMU model set'),
  'vfio.region': rule('linux/vfio.h VFIO_DEVICE_GET_REGION_INFO; drivers/vfio/pci/vfio_pci_core.c', 'a PCI device has regions 0-5 for its BARs, 6 for its ROM and 7 for config space, each with the size and the read, write and mmap flags of what is there'),
  'vfio.dma.map': rule('linux/vfio.h VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA; drivers/vfio/vfio_iommu_type1.c', 'a mapping is page-aligned, does not overlap another (EEXIST) and needs the IOMMU model set; unmapping removes the mappings inside the range and says how many bytes'),
  'vfio.reset': rule('linux/vfio.h VFIO_DEVICE_RESET; drivers/pci/pci.c pci_reset_function', 'a device resets where it has a reset method (function-level, power management, or a bus reset where it is alone below its bridge); else EINVAL'),
  'isolation.vfio-group': rule('the seed\'s isolation rule (seed 003); Documentation/driver-api/vfio.rst', 'a group is the unit of ownership: devices that can reach each other without the IOMMU share one, and devices isolated from each other are never put together'),
  'isolation.vfio-container': rule('the seed\'s isolation rule (seed 003); linux/vfio.h type1', 'a device\'s DMA reaches only the mappings of the container its group is in: never another container\'s, and never one that was unmapped'),
  // ---- a hypervisor's view of a function -------------------------------------------
  'view.xen-vpci-guest': rule('Xen vPCI for guest domains, 4.21+: xen/drivers/vpci/header.c init_header, msi.c, msix.c, cap.c (harness/model/guest-view.ts; the root\'s view, declared by --target xen-vpci:guest)', 'a guest sees Command (its own copy), Status, its memory BARs, and MSI and MSI-X; every other register reads all ones (unused BARs, the ROM BAR and the extended header read 0) and drops writes'),
  // ---- the target as a program -------------------------------------------------------------
  'target.alive': rule('isoroot target interface (docs/target-protocol.md)', 'a target answers every operation: it neither dies nor stops answering'),
  'protocol.xen-vpci-agent': rule('harness/adapters/xen/shim/agent.c (the agent\'s line protocol)', 'xen-vpci-agent answers each command with that command\'s OK reply; an ERR to a command isoroot built is isoroot\'s mistake or a device the agent cannot emulate, never Xen\'s'),
  'protocol.vfio-user': rule('vfio-user specification (QEMU docs/interop/vfio-user.rst)', 'every message has the size, fields and flags the specification gives its command'),
} as const satisfies Record<string, RuleText>;

export type RuleId = keyof typeof RULES;

export const isRuleId = (s: string): s is RuleId => Object.prototype.hasOwnProperty.call(RULES, s);

/** "PCI 3.0 §6.2.5.1 (header.bar)": a rule as a finding shows it. */
export const showRule = (id: RuleId): string => `${RULES[id].cites} (${id})`;
