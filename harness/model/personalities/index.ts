/** Builds a function from its topology description. */
import type { PciFunction } from '../function.ts';
import type { DeviceSpec } from '../../topology/types.ts';
import { Endpoint } from './endpoint.ts';
import { Edu } from './edu.ts';
import { PciTestdev } from './pci-testdev.ts';
import { IommuTestdev } from './iommu-testdev.ts';
import { PciBridge } from './bridge.ts';
import { RootPort, type PortPlacement } from './root-port.ts';
import { HostBridge } from './host-bridge.ts';
import { Opaque } from './opaque.ts';
import { Learned } from './learned.ts';

/** `port`: where a root port sits (its slot number and hot-plug mode); ignored for other kinds. */
export function createFunction(spec: DeviceSpec, root: number, uid: number, multifunction: boolean, port?: PortPlacement | null): PciFunction {
  switch (spec.kind) {
    case 'endpoint':
      return new Endpoint(spec, root, uid, multifunction);
    case 'edu':
      return new Edu(spec, root, uid, multifunction);
    case 'pci-testdev':
      return new PciTestdev(spec, root, uid, multifunction);
    case 'iommu-testdev':
      return new IommuTestdev(spec, root, uid, multifunction);
    case 'bridge':
      return new PciBridge(spec, root, uid, multifunction);
    case 'root-port':
      return new RootPort(spec, root, uid, multifunction, port ?? undefined);
    case 'host-bridge':
      return new HostBridge(spec, root, uid, multifunction);
    case 'opaque':
      return spec.learned === undefined ? new Opaque(spec, root, uid, multifunction) : new Learned(spec, root, uid, multifunction);
  }
}

/**
 * Personalities whose reset brings the whole function back to its power-on
 * state, device state included (they clear it in resetState). edu keeps its
 * registers across a reset, as QEMU's does; a learned function's reset is
 * not known. A client may reset the first kind instead of reconnecting.
 */
export const RESET_IS_POWER_ON: ReadonlySet<DeviceSpec['kind']> = new Set(['endpoint', 'pci-testdev', 'iommu-testdev']);
