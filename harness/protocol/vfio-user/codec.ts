/**
 * The vfio-user codec: messages.ts's Message to bytes and back, with the
 * checks of QEMU's docs/interop/vfio-user.rst. Everything the specification
 * does not allow becomes a ProtocolViolation naming the field, its byte
 * offset from the start of the message (header byte 0), what was expected
 * and what came. Little-endian ("all data is in the endianness of the host
 * system"; the hosts we test are little-endian).
 *
 * Offsets in the specification's tables are from the end of the header; here
 * they are from the start of the message, so a payload field at offset N of
 * its table is at byte 16 + N.
 */
import { COMMANDS, DEFAULT_LIMITS, FLAG_ERROR, FLAG_NO_REPLY, FLAG_TYPE_COMMAND, FLAG_TYPE_REPLY, HEADER_SIZE, ProtocolViolation, WRITE_MULTI_DATA, commandName, type CommandName, type DeviceFeature, type DeviceInfo, type DmaAccess, type DmaMap, type DmaUnmap, type IrqInfo, type Limits, type Message, type MigData, type RegionAccess, type RegionInfo, type RegionIoFds, type RegionWriteMulti, type RegionWriteMultiReply, type SetIrqs, type Version } from './messages.ts';
import { decodeDeviceInfo, decodeEmpty, decodeFeature, decodeMigData } from './device.ts';
import { decodeDmaAccess, decodeDmaMap, decodeDmaUnmap } from './dma.ts';
import { Dec, type Dir, cat, u32s, u64 } from './fields.ts';
import { headerChecks } from './header.ts';
import { decodeIrqInfo, decodeSetIrqs } from './irq.ts';
import { DEVICE_INFO_SIZE, DMA_MAP_SIZE, DMA_UNMAP_SIZE, P } from './layout.ts';
import { decodeRegionAccess, decodeRegionInfo, decodeRegionIoFds, decodeWriteMulti, encodeRegionInfo } from './region.ts';
import { decodeVersion, encodeVersion } from './version.ts';

/** The payload of command c, as a request or a reply. */
function decodeBody(c: CommandName, d: Dec, len: number, dir: Dir): unknown {
  const r = dir.reply;
  switch (c) {
    case 'VERSION':
      return decodeVersion(d, len, r, dir.fds);
    case 'DMA_MAP':
      return r ? decodeEmpty(d, len, dir, 'no payload') : decodeDmaMap(d, len, dir);
    case 'DMA_UNMAP':
      return decodeDmaUnmap(d, len, dir);
    case 'DEVICE_GET_INFO':
      return decodeDeviceInfo(d, len, dir);
    case 'DEVICE_GET_REGION_INFO':
      return decodeRegionInfo(d, len, dir);
    case 'DEVICE_GET_REGION_IO_FDS':
      return decodeRegionIoFds(d, len, dir);
    case 'DEVICE_GET_IRQ_INFO':
      return decodeIrqInfo(d, len, dir);
    case 'DEVICE_SET_IRQS':
      return r ? decodeEmpty(d, len, dir, 'no payload') : decodeSetIrqs(d, len, dir);
    case 'REGION_READ':
      return decodeRegionAccess(d, len, dir, false);
    case 'REGION_WRITE':
      return decodeRegionAccess(d, len, dir, true);
    case 'DMA_READ':
      return decodeDmaAccess(d, len, dir, false);
    case 'DMA_WRITE':
      return decodeDmaAccess(d, len, dir, true);
    case 'DEVICE_RESET':
      return decodeEmpty(d, len, dir, 'no payload');
    case 'REGION_WRITE_MULTI':
      return decodeWriteMulti(d, len, dir);
    case 'DEVICE_FEATURE':
      return decodeFeature(d, len, dir);
    case 'MIG_DATA_READ':
      return decodeMigData(d, len, dir, false);
    case 'MIG_DATA_WRITE':
      return r ? decodeEmpty(d, len, dir, 'no payload') : decodeMigData(d, len, dir, true);
  }
}

/**
 * Decodes one whole message (bytes = exactly one message, header included)
 * with the fds that came with it. Anything the specification does not allow
 * is a ProtocolViolation.
 */
export function decodeMessage(bytes: Uint8Array, fds: readonly number[], limits: Limits = DEFAULT_LIMITS): Message {
  const b = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const d = new Dec('header', b);
  const h = headerChecks(d, b);
  if (h.size !== b.length) d.fail('msg_size', 4, `${b.length} (the bytes of the message)`, `${h.size}`);
  if (h.size > limits.maxMessage) d.fail('msg_size', 4, `at most ${limits.maxMessage}`, `${h.size}`);
  if (fds.length > limits.maxMsgFds) d.fail('fds', P, `at most ${limits.maxMsgFds} (max_msg_fds)`, `${fds.length}`);
  const command = commandName(h.command)!;
  const len = h.size - HEADER_SIZE;
  if (h.reply && h.error) {
    d.noFds(fds);
    const m = { command, id: h.id, reply: true, errno: h.errno, body: null, fds: [] } as Message & { reply: true };
    if (h.errno === 0) m.error = true;
    // "If an error occurs, the reply message must only include the reply header." A body there is a
    // departure, but msg_size still frames the stream: the refusal is read and the departure kept.
    if (len !== 0) m.departure = new ProtocolViolation(command, 'reply.body', HEADER_SIZE, 'nothing: an error reply is the header only', `${len} bytes`);
    return m;
  }
  const body = decodeBody(command, d, len, { reply: h.reply, fds, limits });
  if (h.reply) return { command, id: h.id, reply: true, errno: 0, body, fds: [...fds] } as Message;
  return { command, id: h.id, reply: false, noReply: h.noReply, body, fds: [...fds] } as Message;
}

function encodeBody(m: Message): Buffer {
  const r = m.reply;
  const body = m.body as unknown;
  switch (m.command) {
    case 'VERSION':
      return encodeVersion(body as Version);
    case 'DMA_MAP': {
      if (r) return Buffer.alloc(0);
      const b = body as DmaMap;
      return cat(u32s(DMA_MAP_SIZE, b.flags), u64(b.offset), u64(b.address), u64(b.size));
    }
    case 'DMA_UNMAP': {
      const b = body as DmaUnmap;
      return cat(u32s(b.argsz ?? DMA_UNMAP_SIZE, b.flags), u64(b.address), u64(b.size));
    }
    case 'DEVICE_GET_INFO': {
      const b = body as DeviceInfo;
      return u32s(b.argsz ?? DEVICE_INFO_SIZE, b.flags, b.numRegions, b.numIrqs);
    }
    case 'DEVICE_GET_REGION_INFO':
      return encodeRegionInfo(body as RegionInfo);
    case 'DEVICE_GET_REGION_IO_FDS': {
      const b = body as RegionIoFds;
      return cat(
        u32s(b.argsz, b.flags, b.index, b.count),
        ...b.entries.map((e) => cat(u64(e.offset), u64(e.size), u32s(e.fdIndex, e.type, e.flags, 0), u64(e.data))),
      );
    }
    case 'DEVICE_GET_IRQ_INFO': {
      const b = body as IrqInfo;
      return u32s(b.argsz, b.flags, b.index, b.count);
    }
    case 'DEVICE_SET_IRQS': {
      if (r) return Buffer.alloc(0);
      const b = body as SetIrqs;
      return cat(u32s(b.argsz, b.flags, b.index, b.start, b.count), b.data ?? new Uint8Array(0));
    }
    case 'REGION_READ':
    case 'REGION_WRITE': {
      const b = body as RegionAccess;
      return cat(u64(b.offset), u32s(b.region, b.count), b.data ?? new Uint8Array(0));
    }
    case 'DMA_READ':
    case 'DMA_WRITE': {
      const b = body as DmaAccess;
      return cat(u64(b.address), u64(b.count), b.data ?? new Uint8Array(0));
    }
    case 'DEVICE_RESET':
      return Buffer.alloc(0);
    case 'REGION_WRITE_MULTI': {
      if (r) return u64((body as RegionWriteMultiReply).wrCnt);
      const b = body as RegionWriteMulti;
      return cat(
        u64(BigInt(b.writes.length)),
        ...b.writes.map((w) => {
          if (w.data.length > WRITE_MULTI_DATA) throw new RangeError(`REGION_WRITE_MULTI write of ${w.data.length} bytes (at most ${WRITE_MULTI_DATA})`);
          const data = Buffer.alloc(WRITE_MULTI_DATA);
          data.set(w.data);
          return cat(u64(w.offset), u32s(w.region, w.count), data);
        }),
      );
    }
    case 'DEVICE_FEATURE': {
      const b = body as DeviceFeature;
      return cat(u32s(b.argsz, b.flags), b.data);
    }
    case 'MIG_DATA_READ':
    case 'MIG_DATA_WRITE': {
      if (r && m.command === 'MIG_DATA_WRITE') return Buffer.alloc(0);
      const b = body as MigData;
      return cat(u32s(b.argsz, b.size), b.data ?? new Uint8Array(0));
    }
  }
}

/** Commands whose reply carries no payload: a reply with body null is then a success. */
const EMPTY_REPLY = new Set<CommandName>(['DMA_MAP', 'DEVICE_SET_IRQS', 'DEVICE_RESET', 'MIG_DATA_WRITE']);

/** Encodes a message (request or reply; an error reply has body null and errno set: header only). Little-endian. Header size field = total bytes. */
export function encodeMessage(m: Message): Buffer {
  let flags: number;
  let errno = 0;
  let body: Buffer;
  if (m.reply) {
    const isError = m.errno !== 0 || m.error === true;
    if (isError && m.body !== null) throw new TypeError(`${m.command} error reply with a body (an error reply is the header only)`);
    if (!isError && m.body === null && !EMPTY_REPLY.has(m.command)) throw new TypeError(`${m.command} reply without a body needs errno or error`);
    flags = FLAG_TYPE_REPLY | (isError ? FLAG_ERROR : 0);
    errno = m.errno;
    body = isError || m.body === null ? Buffer.alloc(0) : encodeBody(m);
  } else {
    if (m.body === null && m.command !== 'DEVICE_RESET') throw new TypeError(`${(m as Message).command} request without a body`);
    flags = FLAG_TYPE_COMMAND | (m.noReply ? FLAG_NO_REPLY : 0);
    body = encodeBody(m);
  }
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt16LE(m.id, 0);
  h.writeUInt16LE(COMMANDS[m.command], 2);
  h.writeUInt32LE(HEADER_SIZE + body.length, 4);
  h.writeUInt32LE(flags, 8);
  h.writeUInt32LE(errno, 12);
  return Buffer.concat([h, body]);
}
