/**
 * Coverage the target reports itself: features named after QEMU's own
 * trace events (--qemu-events), which tell which of QEMU's PCI paths ran,
 * per device model: a config register it handled (per dword), a BAR it
 * mapped or unmapped, a guest error a device logged. They are not the
 * model's (the universe, harness/coverage/universe.ts, does not list
 * them): campaigns count them apart and keep the sequences that reach new
 * ones as seeds, as they keep those that reach new model features.
 */

/** Every target feature starts with this. */
export const TARGET_FEATURE = 'target:';

export const isTargetFeature = (f: string): boolean => f.startsWith(TARGET_FEATURE);

/** The first words of a line, numbers taken out: what tells one guest error from another. */
const words = (line: string): string =>
  line
    .replace(/0x[0-9a-f]+|\b\d+\b/gi, '#')
    .split(/\s+/)
    .slice(0, 4)
    .join(' ');

/**
 * Features of QEMU event lines (events.ts): "pci_cfg_write edu 00:03.0 @0x4 <- 0x2",
 * "pci_update_mappings_add edu 00:03.0 0,0xc0000000+0x100000", or a guest error.
 * Lines that summarise left-out events name nothing.
 */
export function qemuEventFeatures(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (const line of lines) {
    if (line.startsWith('(')) continue;
    const cfg = /^(pci_cfg_read|pci_cfg_write) (\S+) \S+ @0x([0-9a-f]+)/i.exec(line);
    if (cfg !== null) {
      out.push(`${TARGET_FEATURE}${cfg[1]}:${cfg[2]}:0x${(parseInt(cfg[3], 16) & ~3).toString(16)}`);
      continue;
    }
    const map = /^(pci_update_mappings_(?:add|del)) (\S+) \S+ (\d+),/.exec(line);
    if (map !== null) {
      out.push(`${TARGET_FEATURE}${map[1]}:${map[2]}:bar${map[3]}`);
      continue;
    }
    out.push(`${TARGET_FEATURE}log:${words(line)}`);
  }
  return out;
}
