/**
 * The guest's /init: busybox mounts what the agent needs, loads the
 * modules in dependency order and hands over to the agent. The agent is
 * init from then on, so its death panics the kernel, and with panic=-1
 * and -no-reboot QEMU exits: the host sees a crash, never a silent guest.
 */
export const AGENT_PORT = 'isoroot.agent';
/** What /init prints on the console when the modules are in; the host looks for it when a boot fails. */
export const MODULES_LOADED = 'isoroot-init: modules loaded';

export function initScript(modules: readonly string[]): string {
  return [
    '#!/bin/busybox sh',
    'export PATH=/bin',
    '/bin/busybox mkdir -p /proc /sys /dev /tmp',
    '/bin/busybox mount -t proc proc /proc',
    '/bin/busybox mount -t sysfs sysfs /sys',
    '/bin/busybox mount -t devtmpfs devtmpfs /dev',
    // One insmod per module, dependencies first (read from each module's .modinfo at set-up).
    ...modules.map((m) => `/bin/busybox insmod /lib/modules/${m}.ko || echo "isoroot-init: insmod ${m} failed"`),
    `echo "${MODULES_LOADED}"`,
    `exec /agent ${AGENT_PORT}`,
    '',
  ].join('\n');
}
