/**
 * DMA_MAP, DMA_UNMAP, DMA_READ and DMA_WRITE payloads.
 */
import { DMA_READ_FLAG, DMA_UNMAP_ALL, DMA_WRITE_FLAG, type DmaAccess, type DmaMap, type DmaUnmap } from './messages.ts';
import { Dec, type Dir, hex } from './fields.ts';
import { DMA_ACCESS_SIZE, DMA_MAP_SIZE, DMA_UNMAP_SIZE, P, U64_MAX } from './layout.ts';

export function decodeDmaMap(d: Dec, len: number, { fds }: Dir): DmaMap {
  // "VFIO_USER_DMA_MAP": argsz is the size of the structure, 32.
  d.exact(len, DMA_MAP_SIZE, 'the DMA map structure');
  const argsz = d.u32(P);
  if (argsz !== DMA_MAP_SIZE) d.fail('argsz', P, `${DMA_MAP_SIZE} (the size of the structure)`, `${argsz}`);
  const flags = d.u32(P + 4);
  if ((flags & ~(DMA_READ_FLAG | DMA_WRITE_FLAG)) !== 0) d.fail('flags', P + 4, 'only bits 0 (readable) and 1 (writeable)', hex(flags));
  const offset = d.u64(P + 8);
  const address = d.u64(P + 16);
  const size = d.u64(P + 24);
  if (address + size > U64_MAX + 1n) d.fail('size', P + 24, `at most ${hex(U64_MAX + 1n - address)} (the region must not wrap past 2^64)`, hex(size));
  // A mappable region comes with one fd; otherwise none, and offset is zero.
  if (fds.length > 1) d.fail('fds', P, 'at most 1 (the file backing the region)', `${fds.length}`);
  if (fds.length === 0 && offset !== 0n) d.fail('offset', P + 8, '0 (no file descriptor: the region is not mappable)', hex(offset));
  return { flags, offset, address, size };
}

export function decodeDmaUnmap(d: Dec, len: number, { fds }: Dir): DmaUnmap {
  // "VFIO_USER_DMA_UNMAP": flags are unused in the specification; QEMU and libvfio-user send VFIO_DMA_UNMAP_FLAG_ALL (bit 1).
  d.exact(len, DMA_UNMAP_SIZE, 'the DMA unmap structure');
  const argsz = d.argszAtLeast(DMA_UNMAP_SIZE, 'the reply echoes the 24-byte entry');
  const flags = d.u32(P + 4);
  if ((flags & ~DMA_UNMAP_ALL) !== 0) d.fail('flags', P + 4, 'only bit 1 (unmap all)', hex(flags));
  const address = d.u64(P + 8);
  const size = d.u64(P + 16);
  if (flags & DMA_UNMAP_ALL) {
    if (address !== 0n) d.fail('address', P + 8, '0 (unmap all)', hex(address));
    if (size !== 0n) d.fail('size', P + 16, '0 (unmap all)', hex(size));
  }
  d.noFds(fds);
  return argsz === DMA_UNMAP_SIZE ? { flags, address, size } : { argsz, flags, address, size };
}

export function decodeDmaAccess(d: Dec, len: number, { reply, fds, limits }: Dir, write: boolean): DmaAccess {
  // "VFIO_USER_DMA_READ" / "VFIO_USER_DMA_WRITE": count is 8 bytes (the DMA_WRITE reply table says 4; libvfio-user and the other tables use 8).
  const withData = write !== reply;
  if (withData) d.atLeast(len, DMA_ACCESS_SIZE, 'the DMA access structure');
  else d.exact(len, DMA_ACCESS_SIZE, 'the DMA access structure');
  const address = d.u64(P);
  const count = d.u64(P + 8);
  if (withData || reply) d.xfer('count', P + 8, count, limits);
  d.noFds(fds);
  if (!withData) return { address, count };
  if (BigInt(len - DMA_ACCESS_SIZE) !== count) d.fail('count', P + 8, `${len - DMA_ACCESS_SIZE} (the data carried)`, `${count}`);
  return { address, count, data: d.take(P + DMA_ACCESS_SIZE, Number(count)) };
}
