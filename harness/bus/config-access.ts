/**
 * A config access lowered to bus accesses, written once for every target
 * that has a bus (QEMU through qtest, exec targets that declare bus
 * primitives, Xen next), for the report's maps, and for the suites' guest
 * helpers, as libqos lowers QPCIDevice config accesses onto its QPCIBus.
 * The model lowers with it too and keeps its own decode side (ECAM and the
 * CF8 latch are decoded where they land, in the address spaces), so sharing
 * the encoder weakens no check.
 */
import { busOf, devfnOf, type Bdf } from '../topology/bdf.ts';
import { DEFAULT_ECAM, ownerOf, type Topology } from '../topology/types.ts';

/** CONFIG_ADDRESS and CONFIG_DATA (PCI 3.0 §3.2.2.3.2). */
export const CONFIG_ADDRESS_PORT = 0xcf8;
export const CONFIG_DATA_PORT = 0xcfc;
/** Bytes of ECAM per bus: 32 devices × 8 functions × 4 KiB (PCIe Base §7.2.2). */
export const ECAM_BUS_BYTES = 0x100000;

/** One access on a bus: memory or IO space, at an address, of 1, 2, 4 or 8 bytes; a write carries its value. */
export interface BusAccess {
  space: 'memory' | 'io';
  addr: number;
  size: number;
  value: bigint | null;
}

/** CONFIG_ADDRESS for a BDF and register: enable | bus | device | function | register[7:2] (PCI 3.0 §3.2.2.3.2). */
export const configAddress = (bdf: Bdf, reg: number): number => (0x80000000 | (busOf(bdf) << 16) | (devfnOf(bdf) << 8) | (reg & 0xfc)) >>> 0;

/** The ECAM address of a BDF's register: base + (bus << 20 | device << 15 | function << 12 | register) (PCIe Base §7.2.2). */
export const ecamAddress = (ecam: number, bdf: Bdf, reg: number): number => ecam + busOf(bdf) * ECAM_BUS_BYTES + devfnOf(bdf) * 0x1000 + reg;

/** The data port byte lane of a register through CONFIG_DATA. */
export const configDataPort = (reg: number): number => CONFIG_DATA_PORT + (reg & 3);

/** Where a root's config mechanisms are: the config owner's ECAM window (null: none) and whether it decodes CF8/CFC. */
export interface ConfigMechanisms {
  /** The root whose config space this is (roots may share one host bridge). */
  owner: number;
  ecam: number | null;
  cf8: boolean;
}

export function configMechanisms(t: Topology, root: number): ConfigMechanisms {
  const owner = ownerOf(t, root, 'config');
  const spec = t.roots[owner];
  return { owner, ecam: spec.ecam === undefined ? DEFAULT_ECAM : spec.ecam, cf8: spec.cf8 === true };
}

/** A config access through ECAM: one memory access. */
export const ecamAccess = (ecam: number, bdf: Bdf, reg: number, size: number, value: bigint | null): BusAccess[] => [{ space: 'memory', addr: ecamAddress(ecam, bdf, reg), size, value }];

/** A config access through CF8/CFC: the latch written, then the data port's byte lane read or written. */
export const cf8Access = (bdf: Bdf, reg: number, size: number, value: bigint | null): BusAccess[] => [
  { space: 'io', addr: CONFIG_ADDRESS_PORT, size: 4, value: BigInt(configAddress(bdf, reg)) },
  { space: 'io', addr: configDataPort(reg), size, value },
];

/**
 * A config operation as bus accesses in the owner's spaces, or why it
 * cannot go: the root has no ECAM window, or does not decode CF8/CFC.
 */
export function lowerConfig(m: ConfigMechanisms, via: 'ecam' | 'cf8', bdf: Bdf, reg: number, size: number, value: bigint | null): BusAccess[] | 'no-ecam' | 'no-cf8' {
  if (via === 'ecam') return m.ecam === null ? 'no-ecam' : ecamAccess(m.ecam, bdf, reg, size, value);
  return m.cf8 ? cf8Access(bdf, reg, size, value) : 'no-cf8';
}
