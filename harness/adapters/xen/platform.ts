/**
 * Where the hardware domain's platform puts things, shared by the target
 * (which builds the domain) and its sessions (which address it).
 */
import type { Sbdf } from './agent.ts';

/** Segment 0's MMCFG at q35's PCIEXBAR; the others above the generators' 64-bit windows (generators/plan.ts). */
export const xenEcam = (root: number): number => (root === 0 ? 0xb000_0000 : 0xf0_0000_0000 + (root - 1) * 0x1000_0000);

/** "0001:00:03.0": segment, bus, device, function as the agent writes them. */
export const sbdfOf = (bus: number, dev: number, fn: number, seg: number): Sbdf =>
  `${seg.toString(16).padStart(4, '0')}:${bus.toString(16).padStart(2, '0')}:${dev.toString(16).padStart(2, '0')}.${fn}`;
