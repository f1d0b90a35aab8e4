/** Builds a function from its topology description. */
import type { PciFunction } from '../function.ts';
import type { DeviceSpec } from '../../topology/types.ts';
import { Endpoint } from './endpoint.ts';
import { Edu } from './edu.ts';
import { PciTestdev } from './pci-testdev.ts';
import { Bridge } from './bridge.ts';
import { HostBridge } from './host-bridge.ts';
import { Opaque } from './opaque.ts';

export function createFunction(spec: DeviceSpec, root: number, uid: number, multifunction: boolean): PciFunction {
  switch (spec.kind) {
    case 'endpoint':
      return new Endpoint(spec, root, uid, multifunction);
    case 'edu':
      return new Edu(spec, root, uid, multifunction);
    case 'pci-testdev':
      return new PciTestdev(spec, root, uid, multifunction);
    case 'bridge':
      return new Bridge(spec, root, uid, multifunction, false);
    case 'root-port':
      return new Bridge(spec, root, uid, multifunction, true);
    case 'host-bridge':
      return new HostBridge(spec, root, uid, multifunction);
    case 'opaque':
      return new Opaque(spec, root, uid, multifunction);
  }
}
