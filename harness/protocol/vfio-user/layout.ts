/**
 * Sizes and masks of the fixed parts of vfio-user payloads (docs/interop/vfio-user.rst's tables; payload only, header excluded).
 */
import { DEVICE_FLAG_PCI, DEVICE_FLAG_RESET, FEATURE_GET, FEATURE_PROBE, FEATURE_SET, HEADER_SIZE, IOEVENTFD_FLAG_DATAMATCH, IOEVENTFD_FLAG_PIO, IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY, IOREGIONFD_FLAG_PIO, IOREGIONFD_FLAG_POSTED_WRITES, IRQ_SET_ACTION_MASK, IRQ_SET_ACTION_TRIGGER, IRQ_SET_ACTION_UNMASK, IRQ_SET_DATA_BOOL, IRQ_SET_DATA_EVENTFD, IRQ_SET_DATA_NONE } from './messages.ts';

export const P = HEADER_SIZE; // payload start

export const DMA_MAP_SIZE = 32; // "This structure is 32 bytes in size"

export const DMA_UNMAP_SIZE = 24;

export const DEVICE_INFO_SIZE = 16;

export const REGION_INFO_SIZE = 32;

export const IO_FDS_SIZE = 16;

export const IO_FD_ENTRY_SIZE = 40; // "currently this is 40 bytes for both IO FD types"

export const IRQ_INFO_SIZE = 16;

export const IRQ_SET_SIZE = 20;

export const REGION_ACCESS_SIZE = 16;

export const DMA_ACCESS_SIZE = 16;

export const FEATURE_SIZE = 8;

export const MIG_DATA_SIZE = 8;

export const WRITE_MULTI_HEAD = 8;

export const WRITE_MULTI_ENTRY = 24;

export const VERSION_SIZE = 4;

export const CAP_HEADER_SIZE = 8;

export const SPARSE_HEAD_SIZE = 16; // cap header + nr_areas + reserved

export const SPARSE_AREA_SIZE = 16;

export const TYPE_CAP_SIZE = 16; // cap header + type + subtype

export const U64_MAX = (1n << 64n) - 1n;

export const JSON_MAX_DEPTH = 64;

export const REGION_INFO_FLAGS = 0xf; // READ, WRITE, MMAP, CAPS

export const IRQ_INFO_FLAGS = 0xf; // EVENTFD, MASKABLE, AUTOMASKED, NORESIZE

export const DEVICE_INFO_FLAGS = DEVICE_FLAG_RESET | DEVICE_FLAG_PCI;

export const IRQ_SET_DATA = IRQ_SET_DATA_NONE | IRQ_SET_DATA_BOOL | IRQ_SET_DATA_EVENTFD;

export const IRQ_SET_ACTION = IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK | IRQ_SET_ACTION_TRIGGER;

export const FEATURE_OPS = FEATURE_GET | FEATURE_SET | FEATURE_PROBE;

export const IOEVENTFD_FLAGS = IOEVENTFD_FLAG_DATAMATCH | IOEVENTFD_FLAG_PIO | IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY;

export const IOREGIONFD_FLAGS = IOREGIONFD_FLAG_PIO | IOREGIONFD_FLAG_POSTED_WRITES;

/** VFIO_MIGRATION_STOP_COPY, _P2P, _PRE_COPY ("VFIO_DEVICE_FEATURE_MIGRATION"). */
export const MIGRATION_FLAGS = 0x7n;

export const MIGRATION_STOP_COPY = 0x1n;

/** vfio_device_mig_state values vfio-user uses: ERROR 0 .. RESUMING 4, PRE_COPY 6 (5 and 7 are P2P, unused). */
export const MIG_STATES_GET = new Set([0, 1, 2, 3, 4, 6]);

/** "ERROR cannot be specified as a device state" in a SET. */
export const MIG_STATES_SET = new Set([1, 2, 3, 4, 6]);
