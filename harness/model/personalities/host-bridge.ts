/** A host bridge function (class 06 00 00): identity only, no BARs. */
import { PciFunction } from '../function.ts';
import { initType0 } from '../header-init.ts';
import type { DeviceSpec } from '../../topology/types.ts';

export class HostBridge extends PciFunction {
  constructor(spec: DeviceSpec, root: number, uid: number, multifunction: boolean) {
    super(spec, root, false, multifunction);
    this.uid = uid;
    if (!this.templated) initType0(this.cfg, { vendor: 0x1b36, device: 0x0008, classCode: 0x060000, revision: 0, pin: 0, multifunction });
    this.seal();
  }
  protected read(): bigint {
    return 0n;
  }
  protected write(): void {}
}
