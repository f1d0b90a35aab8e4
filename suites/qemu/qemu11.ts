/**
 * The QEMU 11 a suite needs for what Debian's 7.2 lacks (vfio-user-pci,
 * intel-iommu's scalable mode): ISOROOT_QEMU, else the one
 * scripts/install-qemu-backports.sh installs (npm test's set-up runs it),
 * else whatever qemu-system-x86_64 is on PATH. CI's second pass runs
 * suites/qemu against 7.2 with ISOROOT_QEMU unset: these still find 11.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const PRIVATE_QEMU = join(homedir(), '.cache', 'isoroot', 'qemu-backports', 'bin', 'qemu-system-x86_64');
export const QEMU11 = process.env.ISOROOT_QEMU || (existsSync(PRIVATE_QEMU) ? PRIVATE_QEMU : 'qemu-system-x86_64');
