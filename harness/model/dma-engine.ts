/**
 * Devices whose DMA is driven through their own registers, as a driver
 * drives them (QEMU's edu): a dma.read or dma.write on such a device needs
 * its registers reachable from the CPU, lets the clock run until the
 * engine is idle, programs it, and lets the clock run until the transfer
 * is done. Afterwards the engine's registers hold what the driver put
 * there, which the model does not predict.
 */
import type { PciFunction } from './function.ts';

export interface DrivenDma {
  /** The region that holds the engine's registers. */
  readonly engineRegion: number;
  /** Offsets in that region a driver must reach (identification, engine registers). */
  readonly engineRegisters: readonly number[];
  /** When the pending transfer completes (virtual ns), or null when idle. */
  pendingDeadline(): number | null;
  /** When a transfer started at `now` completes. */
  transferDeadline(now: number): number;
  /** The device-side range a driver programs for a transfer of `len` bytes: its buffer's address and the count. */
  transferBuffer(len: number): { addr: bigint; count: bigint };
  /** A dma op drove the engine: its registers now hold the driver's values (PciFunction.unknownRegionRead says which). */
  driven(): void;
}

export const isDriven = (fn: PciFunction): fn is PciFunction & DrivenDma => 'engineRegion' in fn;
