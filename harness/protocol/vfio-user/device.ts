/**
 * Device payloads: DEVICE_GET_INFO, DEVICE_FEATURE, MIG_DATA_READ/WRITE, and the empty ones.
 */
import { DEVICE_FLAG_PCI, FEATURE_DMA_LOGGING_REPORT, FEATURE_DMA_LOGGING_START, FEATURE_GET, FEATURE_MASK, FEATURE_MIGRATION, FEATURE_MIG_DEVICE_STATE, FEATURE_PROBE, FEATURE_SET, PCI_REGIONS, type DeviceFeature, type DeviceInfo, type MigData } from './messages.ts';
import { Dec, type Dir, bytesOf, hex } from './fields.ts';
import { DEVICE_INFO_FLAGS, DEVICE_INFO_SIZE, FEATURE_OPS, FEATURE_SIZE, MIGRATION_FLAGS, MIGRATION_STOP_COPY, MIG_DATA_SIZE, MIG_STATES_GET, MIG_STATES_SET, P } from './layout.ts';

export function decodeDeviceInfo(d: Dec, len: number, { reply, fds }: Dir): DeviceInfo {
  // "VFIO_USER_DEVICE_GET_INFO"
  d.exact(len, DEVICE_INFO_SIZE, 'the device info structure');
  const argsz = d.argszAtLeast(DEVICE_INFO_SIZE, 'the 16-byte reply');
  const flags = d.u32(P + 4);
  const numRegions = d.u32(P + 8);
  const numIrqs = d.u32(P + 12);
  if (!reply) {
    d.zero32('flags', P + 4, 'all other fields must be zero');
    d.zero32('num_regions', P + 8, 'all other fields must be zero');
    d.zero32('num_irqs', P + 12, 'all other fields must be zero');
  } else {
    if ((flags & ~DEVICE_INFO_FLAGS) !== 0) d.fail('flags', P + 4, 'only VFIO_DEVICE_FLAGS_RESET and VFIO_DEVICE_FLAGS_PCI', hex(flags));
    if (!(flags & DEVICE_FLAG_PCI)) d.fail('flags', P + 4, 'VFIO_DEVICE_FLAGS_PCI (this version of the protocol only supports PCI devices)', hex(flags));
    if (numRegions < PCI_REGIONS) d.fail('num_regions', P + 8, `at least ${PCI_REGIONS} (VFIO_PCI_NUM_REGIONS)`, `${numRegions}`);
  }
  d.noFds(fds);
  return argsz === DEVICE_INFO_SIZE ? { flags, numRegions, numIrqs } : { argsz, flags, numRegions, numIrqs };
}

export function decodeFeature(d: Dec, len: number, { reply, fds }: Dir): DeviceFeature {
  // "VFIO_USER_DEVICE_FEATURE"
  d.atLeast(len, FEATURE_SIZE, 'argsz and flags');
  d.noFds(fds);
  const argsz = d.argszAtLeast(FEATURE_SIZE, 'the 8-byte reply structure');
  const flags = d.u32(P + 4);
  if ((flags & ~(FEATURE_MASK | FEATURE_OPS)) !== 0) d.fail('flags', P + 4, 'only the feature index (bits 0-15), GET, SET and PROBE (bits 16-18)', hex(flags));
  const get = (flags & FEATURE_GET) !== 0;
  const set = (flags & FEATURE_SET) !== 0;
  const probe = (flags & FEATURE_PROBE) !== 0;
  if (!get && !set && !probe) d.fail('flags', P + 4, 'one of GET, SET, PROBE', hex(flags));
  if (get && set && !probe) d.fail('flags', P + 4, 'GET and SET together only with PROBE', hex(flags));
  const feature = flags & FEATURE_MASK;
  const n = len - FEATURE_SIZE;
  const D = P + FEATURE_SIZE;
  const dataLen = (want: number, why: string): void => {
    if (n !== want) d.fail('data', D, `${bytesOf(want)} (${why})`, bytesOf(n));
  };
  // "data ... is not used for probing"; the reply to a probe is the request.
  if (probe) dataLen(0, 'no data when probing');
  // The reply to SET or PROBE echoes the request, so argsz must admit it.
  if (!reply && (set || probe) && argsz < len) d.fail('argsz', P, `at least ${len} (the reply echoes the request)`, `${argsz}`);
  if (!probe) {
    if (feature === FEATURE_MIGRATION && get) {
      if (!reply) dataLen(0, 'MIGRATION GET has no request data');
      else {
        dataLen(8, 'MIGRATION flags');
        const mf = d.u64(D);
        if ((mf & ~MIGRATION_FLAGS) !== 0n) d.fail('flags', D, 'only STOP_COPY, P2P, PRE_COPY (bits 0-2)', hex(mf));
        if (!(mf & MIGRATION_STOP_COPY)) d.fail('flags', D, 'VFIO_MIGRATION_STOP_COPY (at least STOP_COPY must be set)', hex(mf));
      }
    } else if (feature === FEATURE_MIG_DEVICE_STATE) {
      if (get && !reply) dataLen(0, 'MIG_DEVICE_STATE GET has no request data');
      else {
        dataLen(8, 'device_state and data_fd');
        const st = d.u32(D);
        const ok = get ? MIG_STATES_GET : MIG_STATES_SET;
        if (!ok.has(st)) d.fail('device_state', D, get ? 'a vfio-user device state (0-4, 6)' : 'a state to transition to (1-4, 6; ERROR cannot be specified)', `${st}`);
      }
    } else if (feature === FEATURE_DMA_LOGGING_START && set) {
      if (n < 16) dataLen(16, 'page_size, num_ranges, reserved');
      const nr = d.u32(D + 8);
      d.zero32('reserved', D + 12, 'reserved');
      if (n !== 16 + 16 * nr) d.fail('num_ranges', D + 8, `${(n - 16) / 16} (the ranges carried)`, `${nr}`);
    } else if (feature === FEATURE_DMA_LOGGING_REPORT && get) {
      if (!reply) dataLen(24, 'iova, length, page_size');
      else if (n < 24 || (n - 24) % 8 !== 0) d.fail('data', D, '24 bytes then a bitmap of u64s', bytesOf(n));
      const ps = d.u64(D + 16);
      if (ps === 0n || (ps & (ps - 1n)) !== 0n) d.fail('page_size', D + 16, 'a power of two', hex(ps));
    }
  }
  return { argsz, flags, data: d.take(D, n) };
}

export function decodeMigData(d: Dec, len: number, { reply, fds, limits }: Dir, write: boolean): MigData {
  // "VFIO_USER_MIG_DATA_READ" / "VFIO_USER_MIG_DATA_WRITE"
  d.noFds(fds);
  const withData = write !== reply;
  if (withData) d.atLeast(len, MIG_DATA_SIZE, 'argsz and size');
  else d.exact(len, MIG_DATA_SIZE, 'argsz and size');
  const argsz = d.u32(P);
  const size = d.u32(P + 4);
  if (withData || reply) d.xfer('size', P + 4, size, limits);
  if (!withData) {
    // A read request: argsz, the largest reply, must hold the structure and size bytes.
    if (argsz < MIG_DATA_SIZE + size) d.fail('argsz', P, `at least ${MIG_DATA_SIZE + size} (8 + size)`, `${argsz}`);
    return { argsz, size };
  }
  if (len !== MIG_DATA_SIZE + size) d.fail('size', P + 4, `${len - MIG_DATA_SIZE} (the data carried)`, `${size}`);
  if (reply && argsz !== len) d.fail('argsz', P, `${len} (the structure and its data)`, `${argsz}`);
  if (!reply && argsz < MIG_DATA_SIZE) d.fail('argsz', P, `at least ${MIG_DATA_SIZE}`, `${argsz}`);
  return { argsz, size, data: d.take(P + MIG_DATA_SIZE, size) };
}

export function decodeEmpty(d: Dec, len: number, { fds }: Dir, what: string): null {
  d.exact(len, 0, what);
  d.noFds(fds);
  return null;
}
