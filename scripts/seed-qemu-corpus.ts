/**
 * Refreshes corpora/qemu: where QEMU and the model disagree and the model
 * is right, each disagreement as a trace recorded on the QEMU at hand,
 * with its status (known-divergence: QEMU's choice, accepted; open: a QEMU
 * bug), the reason, the QEMU version, and the quirk: the variant of the
 * model that behaves as QEMU does, checked to explain the recording. Rerun after changing the model,
 * or to record them against another QEMU (--qemu PATH); --only NAME[,NAME] records those alone (the
 * PASID entries need QEMU 11's scalable mode, the edu one QEMU 7.2's bug).
 */
import { join } from 'node:path';
import { openQemuTarget } from '../harness/adapters/qemu/target.ts';
import { CorpusStore } from '../harness/corpus/store.ts';
import type { CorpusMeta } from '../harness/corpus/meta.ts';
import type { Op } from '../harness/ops/catalog.ts';
import { execute } from '../harness/run/execute.ts';
import { checkRun, judgeOf, traceTarget, violations } from '../harness/run/check.ts';
import type { Topology } from '../harness/topology/types.ts';
import { traceToText } from '../harness/trace/writer.ts';
import { stepFailure, type Step } from '../harness/trace/format.ts';
import { quirkNamed } from '../harness/adapters/quirk.ts';
import { quirkExplains } from '../harness/run/known.ts';
import { ISOROOT_VERSION } from '../harness/version.ts';

interface Entry {
  name: string;
  status: 'known-divergence' | 'open';
  reason: string;
  /** The model variant that behaves like the faulty QEMU (harness/adapters/qemu/quirks.ts). */
  quirk: string;
  topology: Topology;
  ops: Op[];
  /** Recorded only on a QEMU whose intel-iommu has scalable mode (QEMU 11). */
  scalable?: true;
}

const cfgW = (bdf: number, reg: number, value: number, size = 4): Op => ({ op: 'cfg.write', root: 0, via: 'ecam', bdf, reg, size, value: BigInt(value) });
const b = (bus: number, dev: number): number => (bus << 8) | (dev << 3);
const one: Topology = { roots: [{ bus: 0, busLimit: 0x1f, devices: [{ id: 'e0', kind: 'edu', slot: 2, fn: 0 }] }] };
const behindPortIo: Topology = {
  roots: [{ bus: 0, busLimit: 0x1f, devices: [{ id: 'p0', kind: 'root-port', slot: 3, fn: 0, children: [{ id: 't1', kind: 'pci-testdev', slot: 0, fn: 0 }] }] }],
};
const WINDOW_BUG =
  "QEMU bug: a machine reset clears a bridge's window registers without unmapping the windows (hw/pci/pci_bridge.c resets the registers; nothing updates the mappings until the next write to them), so a device behind the bridge stays reachable where its closed window was.";

/** A root port at 20:00.0 of an expander root, with an edu behind it at 21:00.0. */
const onExpander: Topology = {
  roots: [
    { bus: 0, busLimit: 0x1f, devices: [] },
    { bus: 0x20, busLimit: 0x3f, share: { memory: 0, io: 0, dma: 0, irq: 0, pasid: 0, config: 0 }, devices: [{ id: 'p0', kind: 'root-port', slot: 0, fn: 0, children: [{ id: 'e0', kind: 'edu', slot: 0, fn: 0 }] }] },
  ],
};
const cfgW1 = (bdf: number, reg: number, value: number, size = 4): Op => ({ ...cfgW(bdf, reg, value, size), root: 1 });

/** edu e0 in PASID context 0, attached to domain 0, under a scalable-mode intel-iommu translating through `stage` tables. */
const scalable = (stage: 'first' | 'second'): Topology => ({
  roots: [{ bus: 0, busLimit: 0x1f, iommu: true, scalable: stage, domains: 1, pasidContexts: 1, devices: [{ id: 'e0', kind: 'edu', slot: 2, fn: 0, domain: 0, pasidContext: 0 }] }],
});
const eduUp: Op[] = [cfgW(b(0, 2), 0x10, 0xc0000000), cfgW(b(0, 2), 0x04, 6, 2)];
const map0: Op = { op: 'dma.map', root: 0, domain: 0, iova: 0x10000, size: 0x1000, gpa: 0x100000, perm: 'rw' };

const ENTRIES: Entry[] = [
  {
    name: 'bridge-window-survives-reset',
    status: 'open',
    reason: `${WINDOW_BUG} The same for the IO window.`,
    quirk: 'qemu-bridge-windows-survive-reset',
    topology: behindPortIo,
    ops: [
      cfgW(b(0, 3), 0x1c, 0x4040, 2),
      cfgW(b(0, 3), 0x20, 0xd000d000),
      cfgW(b(0, 3), 0x04, 7, 2),
      { op: 'root.reset', root: 0 },
      cfgW(b(0, 3), 0x18, 0x010100),
      cfgW(b(1, 0), 0x10, 0xd0000000),
      cfgW(b(1, 0), 0x14, 0x4000),
      cfgW(b(1, 0), 0x04, 3, 2),
    ],
  },
  {
    name: 'edu-dma-to-buffer-end-aborts',
    status: 'open',
    reason: "QEMU bug: edu's range check rejects a transfer that ends exactly at the end of its 4 KiB buffer and aborts QEMU (hw/misc/edu.c, off by one); the transfer is legal.",
    quirk: 'qemu-7.2-edu-dma-range',
    topology: one,
    ops: [cfgW(b(0, 2), 0x10, 0xc0000000), cfgW(b(0, 2), 0x04, 6, 2), { op: 'dma.read', dev: 'e0', iova: 0x1000, len: 4096 }],
  },
  {
    name: 'cf8-reserved-bits-pick-the-register',
    status: 'open',
    reason:
      "QEMU departs from PCI 3.0 §3.2.2.3.2: CONFIG_ADDRESS keeps the reserved bits 1:0 it was written with and reads them back, and CONFIG_DATA then reaches register config_reg | (port & 3) (hw/pci/pci_host.c), so a CONFIG_ADDRESS of 0x80000002 reads the Device ID through port 0xcfc where the Vendor ID is due. Seen first in QEMU's own fuzz reproducer for virtio-scsi (tests/qtest/fuzz-virtio-scsi-test.c), which writes CONFIG_ADDRESS with those bits set.",
    quirk: 'qemu-cf8-reserved-bits',
    topology: one,
    ops: [
      { op: 'pio.write', root: 0, port: 0xcf8, size: 4, value: 0x80000003n },
      { op: 'pio.read', root: 0, port: 0xcf8, size: 4 },
      { op: 'pio.write', root: 0, port: 0xcf8, size: 4, value: 0x80001002n },
      { op: 'pio.read', root: 0, port: 0xcfc, size: 2 },
    ],
  },
  {
    name: 'expander-intx-off-its-routing-table',
    status: 'open',
    reason:
      "QEMU bug: INTx of a device on a pxb-pcie expander's bus raises an IOAPIC line other than the one QEMU's ACPI _PRT for that bus gives the guest (hw/i386/acpi-build.c build_prt: link (slot + pin) & 3 of LNKD, LNKA, LNKB, LNKC, i.e. PIRQ D, A, B, C). pxb_map_irq_fn subtracts the expander's slot from the pin, and ich9_lpc_map_irq then indexes its per-slot table with that negative pin (out of bounds), landing on PIRQ E..H.",
    quirk: 'qemu-pxb-intx-off-prt',
    topology: onExpander,
    ops: [cfgW1(b(0x20, 0), 0x18, 0x212120), cfgW1(b(0x20, 0), 0x20, 0xc000c000), cfgW1(b(0x20, 0), 0x04, 6, 2), cfgW1(b(0x21, 0), 0x10, 0xc0000000), cfgW1(b(0x21, 0), 0x04, 6, 2), { op: 'mmio.write', root: 1, addr: 0xc0000060, size: 4, value: 1n }],
  },
  {
    name: 'bridge-bus-range-captures-other-roots',
    status: 'open',
    reason:
      "QEMU bug, an isolation one: a config request finds its bus by walking bus 0's children newest first (hw/pci/pci.c pci_find_bus_nr), and enters a pxb-pcie expander root as soon as any bridge on it has a secondary..subordinate range holding the bus number (pci_root_bus_in_range), even a range outside the expander's own buses. Here the root port of expander root 2 (bus 0x40) is given buses 0x21..0x41, which belong to expander root 1: from then on a config read of 21:00.0, root 1's edu, reaches root 2's pci-testdev (1b36:0005 instead of 1234:11e8), and a config write there would change the other root's device. A host bridge decodes only its own bus range (PCI Firmware 3.3 §4.1.2, _BBN and _CRS bus ranges per host bridge; PCIe Base §7.2.2.1 ECAM per segment and bus range): a bridge below one root cannot claim another root's buses. Found by a QEMU 11 campaign as a maps collision: a BAR write to a device on a captured root was lost.",
    quirk: 'qemu-pxb-bus-claim',
    topology: {
      roots: [
        { bus: 0, busLimit: 0x1f, devices: [] },
        { bus: 0x20, busLimit: 0x3f, share: { memory: 0, io: 0, dma: 0, irq: 0, pasid: 0, config: 0 }, devices: [{ id: 'p0', kind: 'root-port', slot: 0, fn: 0, children: [{ id: 'e0', kind: 'edu', slot: 0, fn: 0 }] }] },
        { bus: 0x40, busLimit: 0x5f, share: { memory: 0, io: 0, dma: 0, irq: 0, pasid: 0, config: 0 }, devices: [{ id: 'p1', kind: 'root-port', slot: 0, fn: 0, children: [{ id: 't1', kind: 'pci-testdev', slot: 0, fn: 0 }] }] },
      ],
    },
    ops: [
      cfgW1(b(0x20, 0), 0x18, 0x212120),
      { ...cfgW(b(0x40, 0), 0x18, 0x414140), root: 2 },
      { op: 'cfg.read', root: 1, via: 'ecam', bdf: b(0x21, 0), reg: 0, size: 4 },
      // Root 2's port takes buses 0x21..0x41: root 1's bus 0x21 among them.
      { ...cfgW(b(0x40, 0), 0x18, 0x412140), root: 2 },
      { op: 'cfg.read', root: 1, via: 'ecam', bdf: b(0x21, 0), reg: 0, size: 4 },
    ],
  },
  {
    name: 'pasid-zeroed-entry-faults-invalid',
    status: 'open',
    reason: "QEMU bug (fault reason only): in scalable mode intel-iommu checks a PASID entry's translation type and paging level before its Present bit (hw/i386/intel_iommu.c vtd_get_pe_in_pasid_leaf_table runs vtd_pe_type_check, and vtd_get_pe_from_pasid_table tests vtd_pe_present only after it). A PASID entry that is all zeros, cleared whole by software or never written, therefore faults with reason 0x5b (PASID-table entry invalid) instead of 0x59 (PASID-table entry not present). VT-d \u00a79.6 has the other fields of a not-present entry ignored, so the fault is a not-present one. The translation itself is right: the DMA faults and moves nothing. Clearing the Present bit alone (pasid.unbind clear=present) faults with 0x59 as it should.",
    quirk: 'qemu-pasid-type-before-present',
    scalable: true,
    topology: scalable('second'),
    ops: [...eduUp, map0, { op: 'dma.read', dev: 'e0', iova: 0x10000, len: 4 }, { op: 'pasid.unbind', dev: 'e0', pasid: 0, clear: 'zero' }, { op: 'pasid.invalidate', dev: 'e0', pasid: 0 }, { op: 'dma.read', dev: 'e0', iova: 0x10000, len: 4 }],
  },
  {
    name: 'pasid-unbound-entry-still-translates',
    status: 'open',
    reason: "QEMU bug, an isolation one: in scalable mode a PASID entry whose Present bit is cleared keeps translating while intel-iommu holds the device's context entry. On a context-cache hit vtd_do_iommu_translate (hw/i386/intel_iommu.c) calls vtd_ce_get_pasid_fpd, which checks the PASID directory entry and the PASID entry's type, never its Present bit, and the page walk then uses the entry's old table pointer. Here the device's RID_PASID entry is unbound (Present cleared, fields kept), then the PASID cache and the IOTLB are invalidated for it (PASID-selective PASID-cache and PASID-based IOTLB invalidation, what VT-d \u00a76.5.3's guidance asks after a PASID-table entry changes), and the device still reads its old domain at a page it had never touched (0x10000: only 0x30000 faulted before, so nothing was in the IOTLB). VT-d \u00a79.6: with Present clear the entry translates nothing. Only a context-cache invalidation, which VT-d does not require for a PASID entry's change, ends it (the driver's own context switches around edu's transfers do, which is why a successful transfer before the unbind hides the bug).",
    quirk: 'qemu-pasid-present-ignored-on-context-hit',
    scalable: true,
    topology: scalable('first'),
    // The faulting read loads e0's context entry and moves nothing: no harness transfer switches the entry around it.
    ops: [...eduUp, { op: 'mmio.write', root: 0, addr: 0x100000, size: 4, value: 0x11223344n }, map0, { op: 'dma.read', dev: 'e0', iova: 0x30000, len: 4 }, { op: 'pasid.unbind', dev: 'e0', pasid: 0 }, { op: 'pasid.invalidate', dev: 'e0', pasid: 0 }, { op: 'dma.read', dev: 'e0', iova: 0x10000, len: 4 }],
  },
];

const dir = join(import.meta.dirname, '..', 'corpora', 'qemu');
const at = process.argv.indexOf('--qemu');
const only = process.argv.indexOf('--only');
const target = openQemuTarget(at > 0 ? { qemu: process.argv[at + 1] } : {});
const store = new CorpusStore(dir);
const now = new Date().toISOString();
try {
  for (const e of ENTRIES) {
    if (only > 0 && !process.argv[only + 1].split(',').includes(e.name)) continue;
    if (e.scalable === true && !target.build.scalableIommu) {
      console.log(`${e.name}: skipped, this QEMU's intel-iommu has no scalable mode (record it with --qemu and QEMU 11)`);
      continue;
    }
    const topology = target.prepare!(e.topology);
    const ex = await execute(target, topology, e.ops);
    const vs = violations(checkRun(topology, judgeOf(target), ex.steps, ex.failure, e.ops));
    if (vs.length === 0) throw new Error(`${e.name}: QEMU ${target.info.version} agrees with the model now; mark the entry fixed instead`);
    const steps: Step[] = [...ex.steps, ...e.ops.slice(ex.steps.length).map((op) => ({ op }))];
    if (ex.failure !== undefined) steps[ex.failure.index].failure = stepFailure(ex.failure);
    const q = quirkNamed(e.quirk);
    if (q === undefined || !quirkExplains(q, topology, judgeOf(target), ex.steps, ex.failure, e.ops)) throw new Error(`${e.name}: the quirk ${e.quirk} does not explain what QEMU ${target.info.version} did`);
    const text = traceToText({ format: 'isoroot-trace', version: 1, topology, target: traceTarget(target), seed: null, isoroot: ISOROOT_VERSION, time: now }, steps);
    const firstSeen = store.has(e.name) && store.meta(e.name).firstSeen !== 'unknown' ? store.meta(e.name).firstSeen : now;
    const meta: Omit<CorpusMeta, 'name'> = { firstSeen, status: e.status, reason: `${e.reason} (QEMU ${target.info.version})`, signature: vs[0].signature, kind: vs[0].kind, source: `hand-written, recorded on QEMU ${target.info.version}`, quirk: e.quirk };
    store.add(e.name, text, meta, true);
    console.log(`${e.name}: ${e.status}, ${vs[0].signature}`);
  }
} finally {
  await (target as { dispose(): Promise<void> }).dispose();
}
