/**
 * Implementation choices: the points where a specification allows more
 * than one outcome. For each, the section that leaves it open, and the
 * options it allows. The model predicts the first option (its default);
 * a profile (harness/profiles) says which option an implementation takes;
 * with no profile, any option the specification allows is accepted.
 *
 * Isolation is never a choice: nothing here can make an access answered by
 * another root, a mapping that outlives its owner, or data crossing roots
 * acceptable where the contract isolates the space.
 */

export interface ChoiceText {
  cites: string;
  /** What is chosen, in one phrase. */
  says: string;
  /** Each option and what it means; the first is the model's default. */
  options: Readonly<Record<string, string>>;
  /**
   * observed: the op's own observation tells the options apart, so with no
   * profile the checker follows the one the target took. target: a
   * behaviour of the target as a program (its sessions, its messages),
   * read by the adapter, not by the model.
   */
  seen: 'observed' | 'target';
}

const choice = (cites: string, says: string, options: Record<string, string>, seen: ChoiceText['seen'] = 'observed'): ChoiceText => ({ cites, says, options, seen });

export const CHOICES = {
  'memory.unassigned-read': choice(
    'PCI 3.0 §3.3.3.1 (a Master-Abort ends the transaction; what the host hands the CPU is the platform\'s)',
    'what a memory read that no decoder claims returns',
    { ones: 'all ones', zeros: 'zeros' },
  ),
  'io.unassigned-read': choice('PCI 3.0 §3.3.3.1, as for memory', 'what an IO read that no decoder claims returns', { ones: 'all ones', zeros: 'zeros' }),
  'config.read-only-write': choice(
    'PCI 3.0 §6.1 (read-only bits keep their value: a bus write to them completes); vfio-user "VFIO_USER_REGION_WRITE" lets a server fail a write',
    'what a configuration write that reaches a read-only register (a byte with no writable bit) does; one that reaches writable bits must take them',
    { ignore: 'completes, the read-only bits unchanged', refuse: 'refused' },
  ),
  'header.bar-write-while-decoding': choice(
    'PCI 3.0 §6.2.5.1 (software disables decode before it moves a BAR; what a write to a decoding BAR does is not said); PCI Firmware 3.2 §3.5',
    "what a configuration write to a memory BAR, or to an enabled expansion ROM BAR that it leaves enabled, does while the BAR decodes memory outside RAM (the write's own completion does not tell the options apart: later reads do, so a target that ignores such writes declares it)",
    { take: 'the register takes the value, and the BAR moves', ignore: 'the write is dropped; the BAR stays where it is mapped (a BAR under RAM is not mapped: its register takes the write, and the BAR decodes at its new place once memory decode is turned off and on again)' },
  ),
  'decode.overlap': choice(
    'PCI 3.0 §6.2.5.1 (software must not give two decoders one address; what answers when it does is left undefined)',
    'which of two functions\' memory or IO decoders that claim one address answers',
    { later: 'the one mapped last (QEMU\'s memory API)', earlier: 'the one mapped first (a p2m that does not map over another function\'s live mapping)' },
  ),
  'emulator.overlap': choice(
    'seed 002 (every access reaches exactly one handler; how a second claim on a BDF or range is settled is the root\'s); Xen xen/common/ioreq.c (FOR_EACH_IOREQ_SERVER favours the newest server)',
    'what a root does with an emulator\'s claim that overlaps another emulator\'s',
    { refuse: 'refused (busy)', newest: 'taken; where claims overlap the emulator declared last receives' },
  ),
  'emulator.unmap-partial': choice(
    'seed 002; Xen xen/common/ioreq.c ioreq_server_unmap_io_range (any range the server\'s rangeset contains)',
    'what an emulator\'s unmap of a range that is part of its claims, not one whole claim, does',
    { refuse: 'refused (not registered)', split: 'that part goes, the rest stays claimed' },
  ),
  'msix.address-low-bits': choice(
    'PCI 3.0 §6.8.2.6 (Message Address bits 1:0 of an MSI-X table entry: software writes 0, otherwise the result is undefined; the bits may be read-only or read/write)',
    'what an MSI-X table entry keeps of Message Address bits 1:0 written as non-zero',
    { zero: 'read-only zero', keep: 'kept as written' },
  ),
  'dma-map.alignment': choice(
    'vfio-user "VFIO_USER_DMA_MAP" (no alignment required); VFIO type-1 requires page alignment (vfio_dma_do_map)',
    'whether a DMA mapping whose IOVA, size or address is not page aligned is refused',
    { page: 'refused unless page aligned', any: 'accepted at any alignment' },
  ),
  'region.not-decoding': choice(
    'vfio-user "VFIO_USER_REGION_READ" (says nothing of decode); vfio-pci refuses with EIO while memory decode is off',
    'whether a region access to a BAR that does not decode is served',
    { refuse: 'refused', serve: 'served from the device' },
  ),
  'region.rom-write': choice('vfio-user "VFIO_USER_REGION_WRITE"; linux/vfio.h (the ROM region is read-only)', 'what a write to the expansion ROM region does', { refuse: 'refused', ignore: 'completes and changes nothing' }),
  'device.refusal': choice(
    "vfio-user \"VFIO_USER_REGION_READ\", \"VFIO_USER_REGION_WRITE\" (a device may fail an access); PCI 3.0 §6.2.5 leaves a device's own registers to the device",
    "whether a device isoroot only learned completes an access to its own registers (one it does not implement may be refused)",
    { complete: 'completes', refuse: 'refused' },
  ),
  'refusal.errno': choice(
    'vfio-user "Header" (Error: an errno the specification does not assign to refusals)',
    'which errno a refusal carries (the profile\'s errno table, per reason)',
    { any: 'any errno' },
  ),
  'root-reset.ram': choice(
    'PCIe Base §6.6.1 (a reset of the hierarchy below a root; what becomes of the memory the root\'s CPUs use is the platform\'s)',
    'what a root reset leaves of the RAM its root owns',
    { keep: 'kept (QEMU\'s system_reset)', clear: 'zeros (a guest rebuilt as a new domain: Xen\'s reboot)' },
  ),
  'translation.stale': choice(
    'Intel VT-d §6.5 (translations may be cached; a change to a present entry takes effect for certain only after the invalidation §6.5.3 requires for it)',
    'what a DMA translates through after a PASID entry was cleared and before the IOTLB invalidation that change needs',
    { fresh: 'the table as it is now', stale: 'a translation cached before the change' },
  ),
  'session.reconnect': choice(
    'vfio-user "Connection" (device state across clients is the server\'s)',
    'whether a device served to a new client starts from reset',
    { fresh: 'every client gets the device as after reset', kept: 'the device keeps its state across clients' },
    'target',
  ),
  'session.server-lifetime': choice(
    'vfio-user "Connection" (a server may serve one client and exit)',
    'whether a vfio-user server accepts another client after one leaves',
    { stays: 'accepts the next client', exits: 'exits when its client leaves' },
    'target',
  ),
} as const satisfies Record<string, ChoiceText>;

export type ChoiceId = keyof typeof CHOICES;

export const CHOICE_IDS = Object.keys(CHOICES) as ChoiceId[];

export const isChoiceId = (s: string): s is ChoiceId => Object.prototype.hasOwnProperty.call(CHOICES, s);

/** The model's option of a choice: the first one listed. */
export const defaultOption = (id: ChoiceId): string => Object.keys(CHOICES[id].options)[0];
