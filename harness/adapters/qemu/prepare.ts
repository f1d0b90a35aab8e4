/**
 * A topology as QEMU builds it: checks that QEMU can build it (QEMU's own
 * isolation contract, its device set, the slots its chipset takes) and
 * completes it with what the machine brings: chipset functions, the host
 * functions of expander roots, the reserved ranges, ECAM and CF8/CFC.
 * Idempotent: a completed topology comes back unchanged, so traces carry
 * the completed topology and replay it as is.
 */
import { InputError } from '../../util/errors.ts';
import { canonicalTopology } from '../../topology/canonical.ts';
import { topologyProblem } from '../../topology/validate.ts';
import { DEFAULT_RAM, SPACE_KINDS, walkDevices, type DeviceSpec, type Personality, type RootSpec, type Topology } from '../../topology/types.ts';
import { expanderHostId, type Platform } from './platform.ts';
import { HARNESS_RAM } from './machine.ts';
import { MESSAGE_WINDOW } from './interrupts.ts';
import type { QemuBuild } from './build.ts';

export const MAX_QEMU_ROOTS = 8;

/**
 * Roots a machine takes. On pc, a pxb expander's devices sit behind a
 * pci-bridge QEMU adds on the expander's bus (hw/pci-bridge/pci_expander_bridge.c),
 * which this target does not lay out yet: pc has its main root only.
 */
export const maxRootsOf = (p: Platform): number => (p.machine === 'pc' ? 1 : MAX_QEMU_ROOTS);
/** Device kinds QEMU builds from the model's personalities (opaque needs qdev unless built in). */
export const QEMU_PERSONALITIES: readonly Personality[] = ['edu', 'pci-testdev', 'iommu-testdev', 'root-port', 'opaque'];
const MIB = 2 ** 20;
const EDU_REACH = 0x1000_0000;
/** Low memory ends below q35's ECAM window (0xb0000000), so RAM is one range at address 0. */
const LOW_RAM_LIMIT = 0xb000_0000;
/** RAM of a QEMU machine whose topology does not say: small, so that a reset clears it quickly. */
export const QEMU_RAM = 16 * MIB;

const fail = (path: string, expected: string): never => {
  throw new InputError(`topology for QEMU: ${path}`, expected);
};

function checkDevice(p: Platform, d: DeviceSpec, path: string, place: 'main' | 'expander' | 'port', build: Pick<QemuBuild, 'iommuTestdev'>): void {
  if (d.builtin === true) return;
  if (!QEMU_PERSONALITIES.includes(d.kind)) fail(`${path}.kind`, `one of ${QEMU_PERSONALITIES.join(', ')} (QEMU has no "${d.kind}" device)`);
  if (d.kind === 'iommu-testdev' && !build.iommuTestdev) fail(`${path}.kind`, "another kind: this QEMU has no iommu-testdev (QEMU 11 has; scripts/install-qemu-backports.sh)");
  if (d.kind === 'opaque' && d.qdev === undefined) fail(`${path}.qdev`, "QEMU's device name for an opaque device, e.g. \"e1000e\"");
  if (d.kind !== 'opaque' && d.qdev !== undefined) fail(`${path}.qdev`, `no qdev: a ${d.kind} is QEMU's own`);
  if (d.acs === false) fail(`${path}.acs`, "nothing: this target's model of a root port has QEMU's ACS capability (acs: false is for --target vfio-guest)");
  if (d.emulator !== undefined) fail(`${path}.emulator`, 'no emulator: QEMU hosts every device itself');
  if (d.present === false && place !== 'port') fail(`${path}.present`, 'hot-plug only below a root port (PCIe native hot-plug)');
  if (d.kind === 'root-port' && place === 'port') fail(`${path}.kind`, 'an endpoint below a root port');
  if (p.machine === 'q35' && place === 'expander' && d.kind !== 'root-port') fail(`${path}.kind`, 'a root port: a pxb-pcie expander root takes only root ports');
  if (p.machine === 'pc' && d.kind === 'root-port') fail(`${path}.kind`, 'no root port on the pc machine (conventional PCI)');
}

function checkRoot(p: Platform, t: Topology, r: number, build: Pick<QemuBuild, 'scalableIommu'>): void {
  const root = t.roots[r];
  const path = `roots[${r}]`;
  if (r === 0) {
    if (root.bus !== 0) fail(`${path}.bus`, "0: root 0 is the machine's main root bus");
    if (root.share !== undefined) fail(`${path}.share`, 'nothing: root 0 owns the machine spaces');
    if (root.cf8 === false) fail(`${path}.cf8`, 'true: the machine decodes CF8/CFC');
    if (root.ecam !== undefined && root.ecam !== null && root.ecam !== p.ecam) fail(`${path}.ecam`, p.ecam === null ? `null: ${p.machine} has no ECAM` : `${'0x' + p.ecam.toString(16)} (where isoroot maps PCIEXBAR) or null`);
    if (p.ecam === null && root.ecam !== undefined && root.ecam !== null) fail(`${path}.ecam`, `null: ${p.machine} has no ECAM`);
    const ram = root.ram ?? DEFAULT_RAM;
    // edu masks DMA addresses to 28 bits: with an edu, RAM and the harness's scratch above it stay below 256 MiB.
    // Without one, RAM stays below ECAM and the PCI hole, all of it low memory on both machines.
    const withEdu = [...walkDevices(t)].some((w) => w.dev.kind === 'edu');
    const reach = withEdu ? EDU_REACH : LOW_RAM_LIMIT;
    if (ram % MIB !== 0 || ram + HARNESS_RAM > reach)
      fail(`${path}.ram`, `whole MiB, at most ${(reach - HARNESS_RAM) / MIB} MiB (${withEdu ? 'edu reaches 256 MiB' : 'RAM below the ECAM window'}; isoroot keeps ${HARNESS_RAM / MIB} MiB above RAM)`);
    if (root.iommu === true && p.machine !== 'q35') fail(`${path}.iommu`, 'false: intel-iommu needs the q35 machine');
    if ((root.domains ?? 0) > 16) fail(`${path}.domains`, 'at most 16 IOMMU domains (page tables live in 4 MiB)');
    if (root.scalable !== undefined && !build.scalableIommu) fail(`${path}.scalable`, "nothing: this QEMU's intel-iommu has no scalable mode with PASID tables and first-stage translation (QEMU 11 has; scripts/install-qemu-backports.sh)");
    // QEMU's intel-iommu translates through one stage, first (fsts=on) or second: never both (ECAP.FSTS or ECAP.SSTS).
    if (root.scalable === 'both') fail(`${path}.scalable`, '"first" or "second": QEMU\'s intel-iommu offers one translation stage, not both');
    // PASID contexts are scalable-mode PASID tables.
    if ((root.pasidContexts ?? 0) > 0 && root.scalable === undefined) fail(`${path}.pasidContexts`, '0, or scalable: true: PASID contexts are the PASID tables of intel-iommu\'s scalable mode');
  } else {
    for (const k of SPACE_KINDS) if (root.share?.[k] !== 0) fail(`${path}.share.${k}`, `0: an expander root shares the machine's ${k} space with root 0 (QEMU's contract)`);
    if (root.bus === 0) fail(`${path}.bus`, "the expander's bus_nr, 1..255");
    if (root.reserved !== undefined) fail(`${path}.reserved`, 'nothing: reserved ranges belong to root 0');
  }
}

/** Completes and checks a topology for a QEMU machine; throws InputError naming what QEMU cannot build. */
export function prepareTopology(t: Topology, p: Platform, build: Pick<QemuBuild, 'resetPowerIndicator' | 'scalableIommu' | 'iommuTestdev'> = { resetPowerIndicator: 'on', scalableIommu: false, iommuTestdev: false }): Topology {
  if (t.roots.length > maxRootsOf(p)) fail('roots', p.machine === 'pc' ? "one root on pc: QEMU's pxb puts a pci-bridge in front of an expander's devices, which this target does not build yet" : `at most ${MAX_QEMU_ROOTS} roots (the main root and 7 ${p.expander} expanders)`);
  if ((t.emulators ?? []).length > 0) fail('emulators', 'none: QEMU hosts every device itself');
  // An imported command line's machine is of one family: replayed on another, it would run one machine with the other's layout.
  const type = t.qemu?.machine?.split(',').find((f) => !f.includes('='));
  if (type !== undefined && !(type === p.machine || type.startsWith(p.versionedMachine)))
    fail('qemu.machine', `a ${p.machine} machine (${p.machine} or ${p.versionedMachine}X.Y), got "${type}": replay it with --target qemu:${type.startsWith('pc-q35') || type === 'q35' ? 'q35' : 'pc'}`);
  t.roots.forEach((_, r) => checkRoot(p, t, r, build));
  for (const { root, dev, parent } of walkDevices(t)) {
    checkDevice(p, dev, `device ${dev.id}`, parent !== null ? 'port' : root === 0 ? 'main' : 'expander', build);
    // An eject takes everything in the slot (hw/pci/pcie.c): a hot-plugged device has its slot to itself.
    if (parent !== null && (parent.children ?? []).length > 1 && (parent.children ?? []).some((c) => c.present === false)) fail(`device ${parent.id}.children`, 'one device when it is hot-plugged: an eject removes every function in the slot');
  }

  const main = t.roots[0];
  // Built-in functions come from the platform; any in the input are replaced, except the machine's
  // default devices an imported command line without -nodefaults has QEMU add (they name their qdev).
  const defaults = t.qemu?.defaults === true ? main.devices.filter((d) => d.builtin === true && d.qdev !== undefined) : [];
  const own = [...main.devices.filter((d) => d.builtin !== true), ...defaults];
  // What was learned of a built-in function stays with it (a trace replays without the target).
  const learned = new Map(main.devices.filter((d) => d.builtin === true && d.learned !== undefined).map((d) => [d.id, d.learned!]));
  const mustHave: DeviceSpec[] = [...p.builtins, ...t.roots.slice(1).map((_, i) => ({ id: expanderHostId(i + 1), kind: 'opaque' as const, slot: p.expanderSlot(i + 1), fn: 0, builtin: true, identity: p.expanderHost }))].map((d) =>
    learned.has(d.id) ? { ...d, learned: learned.get(d.id)! } : d,
  );
  const taken = new Map(mustHave.map((b) => [b.slot, b.id]));
  for (const d of own) {
    const who = taken.get(d.slot);
    if (who !== undefined) fail(`device ${d.id}.slot`, `a slot the machine leaves free (slot ${d.slot} holds ${who})`);
  }
  const rootZero: RootSpec = { ...main, cf8: true, ram: main.ram ?? QEMU_RAM, devices: [...own, ...mustHave] };
  if (main.ecam === undefined && p.ecam === null) rootZero.ecam = null;
  const ram = rootZero.ram!;
  rootZero.reserved = [...p.reserved.map((x) => ({ ...x })), { space: 'memory', base: ram, size: HARNESS_RAM, name: "isoroot's DMA scratch and IOMMU tables" }];
  rootZero.reserved.push({ space: 'memory', base: MESSAGE_WINDOW.base, size: MESSAGE_WINDOW.size, name: "isoroot's MSI window" });
  const roots = [rootZero, ...t.roots.slice(1)].map((root, r): RootSpec => {
    const slots = [...new Set(root.devices.map((d) => d.slot))].sort((a, b) => a - b);
    const routes = slots.flatMap((slot) => {
      const lines = p.intxLines(r, slot);
      return lines === null ? [] : [{ slot, lines }];
    });
    const { intxRouting: _, ...rest } = root;
    rest.devices = rest.devices.map((d) => withResetIndicator(d, build.resetPowerIndicator));
    return routes.length > 0 ? { ...rest, intxRouting: routes } : rest;
  });
  const out: Topology = { ...t, roots };
  const problem = topologyProblem(out);
  if (problem !== null) fail(problem.path, problem.expected);
  return canonicalTopology(out);
}

/** Root ports as this QEMU resets them (build.ts); 'on', 7.2's, is the default and left unsaid. */
function withResetIndicator(d: DeviceSpec, indicator: 'on' | 'off'): DeviceSpec {
  const { resetPowerIndicator: _, ...rest } = d;
  const out: DeviceSpec = d.kind === 'root-port' && indicator === 'off' ? { ...rest, resetPowerIndicator: indicator } : rest;
  if (d.children !== undefined) out.children = d.children.map((c) => withResetIndicator(c, indicator));
  return out;
}

/** Whether a topology is already complete for the platform (open() refuses one that is not). */
export function isPrepared(t: Topology, p: Platform, build?: Pick<QemuBuild, 'resetPowerIndicator' | 'scalableIommu' | 'iommuTestdev'>): boolean {
  return JSON.stringify(canonicalTopology(t)) === JSON.stringify(prepareTopology(t, p, build));
}
