/**
 * QEMU's command line for the guest: q35 under TCG with intel-iommu
 * (interrupt remapping, caching mode, so that Linux flushes what it
 * unmaps), the kernel and initramfs of image.ts, the agent's virtio-serial
 * port on a UNIX socket (QEMU waits for isoroot to connect), and the
 * topology's devices. SeaBIOS enumerates the buses (qboot loses devices
 * behind a pxb-pcie); Linux keeps what firmware assigned.
 */
import { physicalSlots, walkDevices, type DeviceSpec, type Topology } from '../../topology/types.ts';
import { expanderBusId } from '../qemu/machine.ts';
import { AGENT_PORT } from './image/init-script.ts';
import type { GuestImage } from './image/image.ts';

const hx = (n: number): string => '0x' + n.toString(16);

/** The -device driver and properties of a device (without bus and address). */
function driver(d: DeviceSpec, slots: Map<string, number>, chassis: Map<string, number>): string {
  switch (d.kind) {
    case 'edu':
      return 'edu';
    case 'pci-testdev':
      return 'pci-testdev';
    case 'root-port':
      return `pcie-root-port,chassis=1,slot=${slots.get(d.id)!}${d.acs === false ? ',disable-acs=on' : ''}`;
    case 'bridge':
      // A conventional PCI-PCI bridge needs a chassis number of its own; its SHPC is not needed.
      return d.qdev === 'pci-bridge' ? `pci-bridge,chassis_nr=${chassis.get(d.id)!},shpc=off` : d.qdev!;
    default:
      // NICs would load an option ROM; none of ours has one. virtio: Linux's virtio-pci takes it.
      return d.qdev!;
  }
}

export function guestArgs(t: Topology, image: GuestImage, socket: string, console: string): string[] {
  const args = [
    '-machine', 'q35,kernel-irqchip=split,vmport=off', '-accel', 'tcg', '-m', '512M', '-smp', '1',
    '-nodefaults', '-no-user-config', '-vga', 'none', '-display', 'none', '-no-reboot',
    '-device', 'intel-iommu,intremap=on,caching-mode=on',
    '-kernel', image.kernel, '-initrd', image.initrd,
    '-append', 'console=ttyS0 intel_iommu=on iommu=pt panic=-1 quiet loglevel=4',
    '-serial', `file:${console}`,
    '-chardev', `socket,id=isoroot-agent,path=${socket},server=on,wait=on`,
  ];
  for (let r = 1; r < t.roots.length; r++) args.push('-device', `pxb-pcie,id=${expanderBusId(r)},bus_nr=${t.roots[r].bus},bus=pcie.0,addr=${hx(0x17 + r)}.0`);
  const slots = physicalSlots(t);
  const chassis = new Map<string, number>();
  const fns = new Map<string, number>();
  const busOf = (root: number, parent: DeviceSpec | null): string => (parent !== null ? parent.id : root === 0 ? 'pcie.0' : expanderBusId(root));
  const walk = [...walkDevices(t)];
  for (const { root, dev, parent } of walk) fns.set(`${busOf(root, parent)}/${dev.slot}`, (fns.get(`${busOf(root, parent)}/${dev.slot}`) ?? 0) + 1);
  for (const { root, dev, parent } of walk) {
    if (dev.kind === 'bridge' && dev.qdev === 'pci-bridge') chassis.set(dev.id, 2 + chassis.size);
    if (dev.builtin === true && dev.qdev !== 'virtio-serial-pci') continue;
    const bus = busOf(root, parent);
    const mf = (fns.get(`${bus}/${dev.slot}`) ?? 1) > 1 ? ',multifunction=on' : '';
    args.push('-device', `${driver(dev, slots, chassis)},id=${dev.id},bus=${bus},addr=${hx(dev.slot)}.${dev.fn}${mf}`);
    if (dev.qdev === 'virtio-serial-pci') args.push('-device', `virtserialport,bus=${dev.id}.0,chardev=isoroot-agent,name=${AGENT_PORT}`);
  }
  return args;
}
