/**
 * Region payloads: DEVICE_GET_REGION_INFO (with its capabilities), DEVICE_GET_REGION_IO_FDS, REGION_READ/WRITE and REGION_WRITE_MULTI.
 */
import { CAP_SPARSE_MMAP, CAP_TYPE, IOREGIONFD_FLAG_POSTED_WRITES, IO_FD_TYPE_IOEVENTFD, IO_FD_TYPE_IOREGIONFD, REGION_FLAG_CAPS, REGION_FLAG_MMAP, WRITE_MULTI_DATA, type IoFdEntry, type MultiWrite, type RegionAccess, type RegionInfo, type RegionIoFds, type RegionWriteMulti, type RegionWriteMultiReply, type SparseArea } from './messages.ts';
import { Dec, type Dir, bytesOf, cat, hex, u32s, u64 } from './fields.ts';
import { CAP_HEADER_SIZE, IOEVENTFD_FLAGS, IOREGIONFD_FLAGS, IO_FDS_SIZE, IO_FD_ENTRY_SIZE, P, REGION_ACCESS_SIZE, REGION_INFO_FLAGS, REGION_INFO_SIZE, SPARSE_AREA_SIZE, SPARSE_HEAD_SIZE, TYPE_CAP_SIZE, WRITE_MULTI_ENTRY, WRITE_MULTI_HEAD } from './layout.ts';

export function decodeRegionInfo(d: Dec, len: number, { reply, fds }: Dir): RegionInfo {
  // "VFIO_USER_DEVICE_GET_REGION_INFO"
  const why = 'all other fields must be zero';
  if (!reply) d.exact(len, REGION_INFO_SIZE, 'the region info structure');
  else d.atLeast(len, REGION_INFO_SIZE, 'the region info structure');
  const argsz = d.argszAtLeast(REGION_INFO_SIZE, 'the 32-byte region info');
  const flags = d.u32(P + 4);
  const index = d.u32(P + 8);
  const capOffset = d.u32(P + 12);
  const size = d.u64(P + 16);
  const offset = d.u64(P + 24);
  const info: RegionInfo = { argsz, flags, index, capOffset, size, offset };
  if (!reply) {
    d.zero32('flags', P + 4, why);
    d.zero32('cap_offset', P + 12, why);
    d.zero64('size', P + 16, why);
    d.zero64('offset', P + 24, why);
    d.noFds(fds);
    return info;
  }
  if ((flags & ~REGION_INFO_FLAGS) !== 0) d.fail('flags', P + 4, 'only READ, WRITE, MMAP and CAPS (bits 0-3)', hex(flags));
  const mmap = (flags & REGION_FLAG_MMAP) !== 0;
  // "Message sizes": argsz is the full size; a payload shorter than argsz is a truncated reply (the fixed part only).
  if (len > argsz) d.fail('argsz', P, `at least ${len} (the payload carried)`, `${argsz}`);
  const full = len === argsz;
  if (!full && len !== REGION_INFO_SIZE) d.fail('argsz', P, `${len} (the payload carried; or a truncated reply of ${REGION_INFO_SIZE} bytes)`, `${argsz}`);
  if (!full) {
    if (capOffset !== 0) d.fail('cap_offset', P + 12, '0 (a truncated reply carries no capabilities)', `${capOffset}`);
    if (fds.length > (mmap ? 1 : 0)) d.fail('fds', P + 4, mmap ? 'at most 1 (MMAP)' : 'none (MMAP clear)', `${fds.length}`);
    return info;
  }
  if (len === REGION_INFO_SIZE) {
    if (flags & REGION_FLAG_CAPS) d.fail('flags', P + 4, 'CAPS clear (the reply carries no capabilities)', hex(flags));
    if (capOffset !== 0) d.fail('cap_offset', P + 12, '0 (the reply carries no capabilities)', `${capOffset}`);
  } else {
    if (!(flags & REGION_FLAG_CAPS)) d.fail('flags', P + 4, 'CAPS set (the reply carries capabilities)', hex(flags));
    regionCaps(d, len, info);
  }
  // "When this flag is set, the reply will include a file descriptor".
  if (fds.length !== (mmap ? 1 : 0)) d.fail('fds', P + 4, mmap ? '1 (MMAP: the file to mmap())' : 'none (MMAP clear)', `${fds.length}`);
  return info;
}

/** The capability chain ("VFIO region capabilities"): offsets relative to the region info structure. */
function regionCaps(d: Dec, len: number, info: RegionInfo): void {
  const covered: [number, number][] = [];
  let off = info.capOffset;
  if (off < REGION_INFO_SIZE || off > len - CAP_HEADER_SIZE) d.fail('cap_offset', P + 12, `${REGION_INFO_SIZE}..${len - CAP_HEADER_SIZE} (a capability inside the payload)`, `${off}`);
  for (;;) {
    const a = P + off;
    const id = d.u16(a);
    const version = d.u16(a + 2);
    const next = d.u32(a + 4);
    let end: number;
    if (id === CAP_SPARSE_MMAP) {
      // "VFIO sparse mmap cap header" and "VFIO region info cap sparse mmap"
      if (info.sparse !== undefined) d.fail('id', a, 'one sparse-mmap capability', 'a second one');
      if (version !== 1) d.fail('version', a + 2, '1 (sparse mmap)', `${version}`);
      if (off + SPARSE_HEAD_SIZE > len) d.fail('nr_areas', a + 8, 'inside the payload', 'past its end');
      const nr = d.u32(a + 8);
      d.zero32('reserved', a + 12, 'reserved');
      const room = Math.floor((len - off - SPARSE_HEAD_SIZE) / SPARSE_AREA_SIZE);
      if (nr > room) d.fail('nr_areas', a + 8, `at most ${room} (the areas inside the payload)`, `${nr}`);
      if (!(info.flags & REGION_FLAG_MMAP)) d.fail('flags', P + 4, 'MMAP set (a sparse-mmap capability describes mmap()able areas)', hex(info.flags));
      const areas: SparseArea[] = [];
      for (let k = 0; k < nr; k++) {
        const e = a + SPARSE_HEAD_SIZE + k * SPARSE_AREA_SIZE;
        const offset = d.u64(e);
        const size = d.u64(e + 8);
        if (offset + size > info.size) d.fail(`areas[${k}]`, e, `inside the region (offset + size <= ${hex(info.size)})`, `${hex(offset)}+${hex(size)}`);
        areas.push({ offset, size });
      }
      info.sparse = areas;
      end = off + SPARSE_HEAD_SIZE + nr * SPARSE_AREA_SIZE;
    } else if (id === CAP_TYPE) {
      // "Device-Specific Regions": VFIO_REGION_INFO_CAP_TYPE (type, subtype).
      if (info.type !== undefined) d.fail('id', a, 'one region-type capability', 'a second one');
      if (version !== 1) d.fail('version', a + 2, '1 (region type)', `${version}`);
      if (off + TYPE_CAP_SIZE > len) d.fail('type', a + 8, 'inside the payload', 'past its end');
      info.type = { type: d.u32(a + 8), subtype: d.u32(a + 12) };
      end = off + TYPE_CAP_SIZE;
    } else {
      d.fail('id', a, `a region capability (${CAP_SPARSE_MMAP} sparse mmap, ${CAP_TYPE} type)`, `${id}`);
    }
    covered.push([off, end]);
    if (next === 0) break;
    // The list runs forward without overlap, inside the payload.
    if (next < end || next > len - CAP_HEADER_SIZE) d.fail('next', a + 4, `0 or ${end}..${len - CAP_HEADER_SIZE}`, `${next}`);
    off = next;
  }
  // argsz is "the region info structure plus the size of any region capabilities": no byte outside them.
  covered.sort((x, y) => x[0] - y[0]);
  let at = REGION_INFO_SIZE;
  for (const [s, e] of [...covered, [len, len] as [number, number]]) {
    if (s > at) d.fail('capabilities', P + at, 'a capability (argsz is the structure plus its capabilities)', `${bytesOf(s - at)} outside the chain`);
    at = Math.max(at, e);
  }
}

export function decodeRegionIoFds(d: Dec, len: number, { reply, fds }: Dir): RegionIoFds {
  // "VFIO_USER_DEVICE_GET_REGION_IO_FDS"
  if (!reply) d.exact(len, IO_FDS_SIZE, 'the region io fds request');
  else d.atLeast(len, IO_FDS_SIZE, 'the region io fds structure');
  const argsz = d.argszAtLeast(IO_FDS_SIZE, 'the 16-byte reply structure');
  const flags = d.u32(P + 4);
  const index = d.u32(P + 8);
  const count = d.u32(P + 12);
  d.zero32('flags', P + 4, reply ? 'flags must be zero' : 'all other fields must be zero');
  if (!reply) {
    d.zero32('count', P + 12, 'all other fields must be zero');
    d.noFds(fds);
    return { argsz, flags, index, count, entries: [] };
  }
  const entries: IoFdEntry[] = [];
  if (len > IO_FDS_SIZE) {
    if ((len - IO_FDS_SIZE) % IO_FD_ENTRY_SIZE !== 0) d.fail('msg_size', 4, `${P + IO_FDS_SIZE} + ${IO_FD_ENTRY_SIZE} × count`, `${P + len}`);
    const carried = (len - IO_FDS_SIZE) / IO_FD_ENTRY_SIZE;
    if (count !== carried) d.fail('count', P + 12, `${carried} (the sub-regions carried)`, `${count}`);
    if (argsz !== len) d.fail('argsz', P, `${len} (the reply structure and its sub-regions)`, `${argsz}`);
  } else {
    // The full reply, or a truncated one (argsz says what it would take).
    const need = IO_FDS_SIZE + IO_FD_ENTRY_SIZE * count;
    if (argsz !== need) d.fail('argsz', P, `${need} (16 + 40 × count)`, `${argsz}`);
  }
  const used = new Set<number>();
  for (let k = 0; k < (len - IO_FDS_SIZE) / IO_FD_ENTRY_SIZE; k++) {
    const a = P + IO_FDS_SIZE + k * IO_FD_ENTRY_SIZE;
    const f = `sub-regions[${k}]`;
    const e: IoFdEntry = { offset: d.u64(a), size: d.u64(a + 8), fdIndex: d.u32(a + 16), type: d.u32(a + 20), flags: d.u32(a + 24), data: d.u64(a + 32) };
    if (e.fdIndex >= fds.length) d.fail(`${f}.fd_index`, a + 16, `an index into the ${fds.length} fds sent`, `${e.fdIndex}`);
    used.add(e.fdIndex);
    if (e.type === IO_FD_TYPE_IOEVENTFD) {
      if ((e.flags & ~IOEVENTFD_FLAGS) !== 0) d.fail(`${f}.flags`, a + 24, 'KVM_IOEVENTFD_FLAG_DATAMATCH, _PIO, _VIRTIO_CCW_NOTIFY', hex(e.flags));
    } else if (e.type === IO_FD_TYPE_IOREGIONFD) {
      if ((e.flags & ~IOREGIONFD_FLAGS) !== 0) d.fail(`${f}.flags`, a + 24, 'KVM_IOREGION_PIO, KVM_IOREGION_POSTED_WRITES', hex(e.flags));
      if (e.size === 0n && !(e.flags & IOREGIONFD_FLAG_POSTED_WRITES)) d.fail(`${f}.flags`, a + 24, 'KVM_IOREGION_POSTED_WRITES (size is zero)', hex(e.flags));
    } else {
      d.fail(`${f}.type`, a + 20, `${IO_FD_TYPE_IOEVENTFD} (ioeventfd) or ${IO_FD_TYPE_IOREGIONFD} (ioregionfd)`, `${e.type}`);
    }
    d.zero32(`${f}.padding`, a + 28, 'padding');
    entries.push(e);
  }
  if (used.size !== fds.length) d.fail('fds', P + 12, `${used.size} (the fds the sub-regions refer to)`, `${fds.length}`);
  return { argsz, flags, index, count, entries };
}

export function decodeRegionAccess(d: Dec, len: number, { reply, fds, limits }: Dir, write: boolean): RegionAccess {
  // "VFIO_USER_REGION_READ" / "VFIO_USER_REGION_WRITE": data in the write request and the read reply.
  const withData = write !== reply;
  if (withData) d.atLeast(len, REGION_ACCESS_SIZE, 'the region access structure');
  else d.exact(len, REGION_ACCESS_SIZE, 'the region access structure');
  const offset = d.u64(P);
  const region = d.u32(P + 8);
  const count = d.u32(P + 12);
  // A read request carries no data: one asking for more than max_data_xfer_size is well formed, and refused by its receiver (an error reply, as libvfio-user gives).
  if (withData || reply) d.xfer('count', P + 12, count, limits);
  d.noFds(fds);
  if (!withData) return { offset, region, count };
  if (len !== REGION_ACCESS_SIZE + count) d.fail('count', P + 12, `${len - REGION_ACCESS_SIZE} (the data carried)`, `${count}`);
  return { offset, region, count, data: d.take(P + REGION_ACCESS_SIZE, count) };
}

export function decodeWriteMulti(d: Dec, len: number, { reply, fds }: Dir): RegionWriteMulti | RegionWriteMultiReply {
  // "VFIO_USER_REGION_WRITE_MULTI": wr_cnt writes of up to 8 bytes each.
  d.noFds(fds);
  if (reply) {
    d.exact(len, WRITE_MULTI_HEAD, 'wr_cnt');
    return { wrCnt: d.u64(P) };
  }
  d.atLeast(len, WRITE_MULTI_HEAD, 'wr_cnt');
  if ((len - WRITE_MULTI_HEAD) % WRITE_MULTI_ENTRY !== 0) d.fail('msg_size', 4, `${P + WRITE_MULTI_HEAD} + ${WRITE_MULTI_ENTRY} × wr_cnt`, `${P + len}`);
  const carried = (len - WRITE_MULTI_HEAD) / WRITE_MULTI_ENTRY;
  const wrCnt = d.u64(P);
  if (wrCnt !== BigInt(carried)) d.fail('wr_cnt', P, `${carried} (the writes carried)`, `${wrCnt}`);
  const writes: MultiWrite[] = [];
  for (let k = 0; k < carried; k++) {
    const a = P + WRITE_MULTI_HEAD + k * WRITE_MULTI_ENTRY;
    const count = d.u32(a + 12);
    if (count > WRITE_MULTI_DATA) d.fail(`wrs[${k}].count`, a + 12, `at most ${WRITE_MULTI_DATA} (writes of 8 bytes or less)`, `${count}`);
    writes.push({ offset: d.u64(a), region: d.u32(a + 8), count, data: d.take(a + 16, count) });
  }
  return { writes };
}

export function encodeRegionInfo(r: RegionInfo): Buffer {
  const fixed = cat(u32s(r.argsz, r.flags, r.index, r.capOffset), u64(r.size), u64(r.offset));
  const caps: Buffer[] = [];
  // The first capability sits at cap_offset when that lies past the structure (zero padding before it).
  let at = REGION_INFO_SIZE;
  if ((r.sparse || r.type) && r.capOffset > REGION_INFO_SIZE) {
    caps.push(Buffer.alloc(r.capOffset - REGION_INFO_SIZE));
    at = r.capOffset;
  }
  // Capabilities follow the structure, in this order, each pointing at the next.
  const sparseLen = r.sparse ? SPARSE_HEAD_SIZE + SPARSE_AREA_SIZE * r.sparse.length : 0;
  if (r.sparse) {
    const h = Buffer.alloc(SPARSE_HEAD_SIZE);
    h.writeUInt16LE(CAP_SPARSE_MMAP, 0);
    h.writeUInt16LE(1, 2);
    h.writeUInt32LE(r.type ? at + sparseLen : 0, 4);
    h.writeUInt32LE(r.sparse.length, 8);
    caps.push(h, ...r.sparse.map((a) => cat(u64(a.offset), u64(a.size))));
    at += sparseLen;
  }
  if (r.type) {
    const h = Buffer.alloc(TYPE_CAP_SIZE);
    h.writeUInt16LE(CAP_TYPE, 0);
    h.writeUInt16LE(1, 2);
    h.writeUInt32LE(r.type.type, 8);
    h.writeUInt32LE(r.type.subtype, 12);
    caps.push(h);
  }
  return cat(fixed, ...caps);
}
