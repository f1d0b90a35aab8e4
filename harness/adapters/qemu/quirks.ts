/**
 * QEMU's known bugs as variants of the model (quirks): each replaces the
 * rules of harness/model/rules.ts that make the model behave as the faulty
 * QEMU does. A finding belongs to a known bug when the model with its
 * quirk explains the finding's trace without a violation (corpora/qemu
 * names each entry's quirk).
 */
import type { Quirk } from '../../model/quirk.ts';
import { EDU_DMA_BASE, EDU_DMA_SIZE } from '../../model/personalities/edu.ts';
import { expanderHostId, Q35 } from './platform.ts';

const within = (a: bigint, start: bigint, end: bigint): boolean => start <= a && a < end;

export const QEMU_QUIRKS: readonly Quirk[] = [
  {
    name: 'qemu-pasid-present-ignored-on-context-hit',
    describes:
      "intel-iommu in scalable mode does not check a PASID entry's Present bit while it holds the device's context entry: on a context-cache hit vtd_do_iommu_translate asks vtd_ce_get_pasid_fpd only for the fault-processing bit and the entry's type (hw/i386/intel_iommu.c), and the walk uses the entry's old table pointer, so an entry whose Present bit was cleared keeps translating, new pages too, after the PASID-cache and IOTLB invalidations VT-d §6.5.3 asks for; only a context-cache invalidation, which VT-d does not require for a PASID entry's change, ends it",
    rules: { pasidPresentIgnoredWhenCached: true },
  },
  {
    name: 'qemu-pasid-type-before-present',
    describes:
      "intel-iommu reads a scalable-mode PASID entry and checks its translation type (PGTT) and paging level before its Present bit (hw/i386/intel_iommu.c vtd_get_pe_in_pasid_leaf_table, then vtd_get_pe_from_pasid_table), so an entry that is all zeros, never written or cleared whole, faults as an invalid entry (fault reason 0x5b) where VT-d §9.6 has a not-present entry's other fields ignored and the fault be a not-present one (0x59)",
    rules: { pasidTypeBeforePresent: true },
  },
  {
    name: 'qemu-bridge-windows-survive-reset',
    describes:
      "a bridge's reset clears its window registers but leaves the windows mapped until the next write to its command, window or bridge control registers (hw/pci/pci_bridge.c: pci_bridge_reset does not call pci_bridge_update_mappings)",
    rules: { keepWindowsOnReset: true },
  },
  {
    name: 'qemu-7.2-edu-dma-range',
    describes:
      "edu's DMA range check (hw/misc/edu.c edu_check_range, QEMU 7.2) aborts QEMU with hw_error when the transfer's end is not strictly inside the buffer, so a legal transfer that ends at the buffer's end aborts too",
    rules: {
      eduDmaAborts: (addr, count) => {
        const start = BigInt(EDU_DMA_BASE);
        const end2 = start + BigInt(EDU_DMA_SIZE);
        const end1 = addr + count;
        return !(within(addr, start, end2) && end1 > addr && within(end1, start, end2));
      },
    },
  },
  {
    name: 'qemu-cf8-reserved-bits',
    describes:
      "CONFIG_ADDRESS keeps every bit written to it (hw/pci/pci_host.c pci_host_config_write stores the value whole) and CONFIG_DATA accesses the register config_reg | (port & 3), so the reserved bits 1:0 pick the register and read back, where PCI 3.0 §3.2.2.3.2 has them read 0 and the byte chosen by the port alone",
    rules: {
      cf8Latch: (value) => value >>> 0,
      cf8Register: (latch, port) => (latch & 0xff) | (port & 3),
    },
  },
  {
    name: 'qemu-pxb-bus-claim',
    describes:
      "a config request finds its bus by walking bus 0's children newest first (hw/pci/pci.c pci_find_bus_nr): an expander root is entered as soon as one of its bridges' secondary..subordinate range holds the bus number (pci_root_bus_in_range), even a range outside the expander's own buses, so one root's bridge can capture the config space of every root after it in the walk; the request then finds nobody there",
    rules: { expanderBusClaims: true },
  },
  {
    name: 'qemu-pxb-intx-off-prt',
    describes:
      "INTx of a device on a pxb-pcie expander: pxb_map_irq_fn subtracts the expander's slot from the swizzled pin and ich9_lpc_map_irq indexes its per-slot routing table with that negative pin, so the line is another slot's (PIRQ E..H) rather than the one QEMU's own _PRT gives the guest",
    rules: {
      intxLine: (t, a) => {
        if (a.root === 0) return t.roots[0].intxRouting?.find((x) => x.slot === a.slot)?.lines[a.pin] ?? null;
        const host = t.roots[0].devices.find((d) => d.id === expanderHostId(a.root));
        if (host === undefined) return null;
        // pxb_map_irq_fn: the swizzle on the expander's bus, minus the expander's slot; then ich9's
        // table, laid out as irr[slot][pin], read at [host slot][that pin].
        const index = host.slot * 4 + ((a.pin + a.slot) & 3) - host.slot;
        return Q35.intxLines(0, Math.floor(index / 4))?.[index % 4] ?? null;
      },
    },
  },
];
