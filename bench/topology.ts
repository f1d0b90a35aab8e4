/** The bench topology: 4 roots of 8 devices (32), endpoints, edu, pci-testdev, a bridge and a root port on each, with IOMMU and PASID contexts. */
import type { DeviceSpec, RootSpec, Topology } from '../harness/topology/types.ts';

function rootOf(r: number): RootSpec {
  const p = `r${r}`;
  const devices: DeviceSpec[] = [
    { id: `${p}ep1`, kind: 'endpoint', slot: 1, fn: 0, bars: [{ kind: 'mem32', size: 0x4000 }, { kind: 'io', size: 0x20 }], caps: ['msi', 'pcie', 'pasid'], msiVectors: 4, domain: 0, pasidContext: 0 },
    { id: `${p}ep2`, kind: 'endpoint', slot: 2, fn: 0, bars: [{ kind: 'mem64', size: 0x100000, prefetch: true }, { kind: 'mem32', size: 0x4000 }], caps: ['msix', 'pcie', 'ats'], msixVectors: 8, domain: 1, pasidContext: 0 },
    { id: `${p}edu`, kind: 'edu', slot: 3, fn: 0, domain: 0 },
    { id: `${p}td`, kind: 'pci-testdev', slot: 4, fn: 0 },
    {
      id: `${p}br`,
      kind: 'bridge',
      slot: 5,
      fn: 0,
      children: [{ id: `${p}ep3`, kind: 'endpoint', slot: 1, fn: 0, bars: [{ kind: 'mem32', size: 0x1000 }], caps: ['msi'], domain: 1 }],
    },
    { id: `${p}rp`, kind: 'root-port', slot: 6, fn: 0, children: [{ id: `${p}ep4`, kind: 'endpoint', slot: 0, fn: 0, bars: [{ kind: 'mem32', size: 0x1000 }], caps: ['pcie', 'pasid'], domain: 0, pasidContext: 1 }] },
  ];
  return { bus: 0, busLimit: 0xff, cf8: true, iommu: true, domains: 2, pasidContexts: 2, devices };
}

export const BENCH_TOPOLOGY: Topology = { roots: [0, 1, 2, 3].map(rootOf), emulators: ['qemu'] };
