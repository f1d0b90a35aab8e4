/**
 * How isoroot captures vfio-user traffic (docs/wireshark.md): a classic
 * libpcap file, link type LINKTYPE_USER0, one whole vfio-user message per
 * packet, each preceded by an 8-byte pseudo-header (little-endian):
 *
 *   byte 0     encapsulation version, 1
 *   byte 1     direction: 0 client to server, 1 server to client
 *   byte 2     record kind: 0 a vfio-user message follows, 1 a session label
 *              (UTF-8, e.g. the socket path), written once when a session starts
 *   byte 3     number of file descriptors that travelled with the message
 *              (SCM_RIGHTS; the descriptors themselves cannot be captured)
 *   bytes 4-7  u32 session index: one per connection, numbered from 0 in
 *              order of appearance
 *
 * Packets are never truncated (caplen == len). The writer is pcap-writer.ts,
 * the reader pcap-read.ts, the Wireshark dissector tools/wireshark/vfio-user.lua.
 */

/** Classic pcap magic, microsecond timestamps (written little-endian: d4 c3 b2 a1). */
export const PCAP_MAGIC = 0xa1b2c3d4;
/** The same file format with nanosecond timestamps; pcap-parser does not read it. */
export const PCAP_MAGIC_NANOS = 0xa1b23c4d;
/** pcapng's Section Header Block type, as the first four bytes of a pcapng file. */
export const PCAPNG_MAGIC = 0x0a0d0d0a;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
export const PCAP_GLOBAL_HEADER_SIZE = 24;
export const PCAP_RECORD_HEADER_SIZE = 16;
/**
 * The snapshot length we declare: 16 MiB, above any vfio-user message
 * (data transfers are at most max_data_xfer_size, 1 MiB by default).
 */
export const PCAP_SNAPLEN = 0x1000000;
/** LINKTYPE_USER0 (DLT_USER0), reserved for private use: this encapsulation. */
export const LINKTYPE_USER0 = 147;

export const ENCAPSULATION_VERSION = 1;
export const PSEUDO_HEADER_SIZE = 8;

export const DIRECTION_TO_SERVER = 0;
export const DIRECTION_TO_CLIENT = 1;
export type Direction = 'to-server' | 'to-client';

export const KIND_MESSAGE = 0;
export const KIND_LABEL = 1;
export type RecordKind = 'message' | 'label';

/** At most this many descriptors fit byte 3. */
export const MAX_FDS = 0xff;
export const MAX_SESSION = 0xffffffff;

export interface PseudoHeader {
  direction: Direction;
  kind: RecordKind;
  /** File descriptors that travelled with the message (SCM_RIGHTS). */
  fds: number;
  session: number;
}

/**
 * A pseudo-header that breaks the encapsulation: the byte offset inside
 * the packet (0-7) and what was expected there. The reader turns it into
 * an InputError naming the file and the byte offset in the file.
 */
export class EncapsulationError extends Error {
  override name = 'EncapsulationError';
  constructor(
    readonly offset: number,
    readonly expected: string,
  ) {
    super(`pseudo-header byte ${offset}: ${expected}`);
  }
}

const directionCode = (d: Direction): number => (d === 'to-server' ? DIRECTION_TO_SERVER : DIRECTION_TO_CLIENT);
const kindCode = (k: RecordKind): number => (k === 'message' ? KIND_MESSAGE : KIND_LABEL);

/** The 8 bytes of a pseudo-header. Throws RangeError on a value that does not fit. */
export function encodePseudoHeader(h: PseudoHeader): Buffer {
  if (h.direction !== 'to-server' && h.direction !== 'to-client') throw new RangeError(`direction must be "to-server" or "to-client", got ${String(h.direction)}`);
  if (h.kind !== 'message' && h.kind !== 'label') throw new RangeError(`record kind must be "message" or "label", got ${String(h.kind)}`);
  if (!Number.isInteger(h.fds) || h.fds < 0 || h.fds > MAX_FDS) throw new RangeError(`fds must be an integer 0-${MAX_FDS}, got ${h.fds}`);
  if (!Number.isInteger(h.session) || h.session < 0 || h.session > MAX_SESSION) throw new RangeError(`session must be a u32, got ${h.session}`);
  const b = Buffer.alloc(PSEUDO_HEADER_SIZE);
  b[0] = ENCAPSULATION_VERSION;
  b[1] = directionCode(h.direction);
  b[2] = kindCode(h.kind);
  b[3] = h.fds;
  b.writeUInt32LE(h.session, 4);
  return b;
}

/**
 * Reads the pseudo-header at the start of a packet. Throws
 * EncapsulationError, naming the byte, when the packet is too short or a
 * byte holds a value the encapsulation does not define.
 */
export function decodePseudoHeader(packet: Uint8Array): PseudoHeader {
  if (packet.length < PSEUDO_HEADER_SIZE) {
    throw new EncapsulationError(packet.length, `an ${PSEUDO_HEADER_SIZE}-byte pseudo-header, but the packet has ${packet.length} byte${packet.length === 1 ? '' : 's'}`);
  }
  if (packet[0] !== ENCAPSULATION_VERSION) throw new EncapsulationError(0, `encapsulation version ${ENCAPSULATION_VERSION}, got ${packet[0]}`);
  const d = packet[1];
  if (d !== DIRECTION_TO_SERVER && d !== DIRECTION_TO_CLIENT) throw new EncapsulationError(1, `direction 0 (client to server) or 1 (server to client), got ${d}`);
  const k = packet[2];
  if (k !== KIND_MESSAGE && k !== KIND_LABEL) throw new EncapsulationError(2, `record kind 0 (vfio-user message) or 1 (session label), got ${k}`);
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  return {
    direction: d === DIRECTION_TO_SERVER ? 'to-server' : 'to-client',
    kind: k === KIND_MESSAGE ? 'message' : 'label',
    fds: packet[3],
    session: view.getUint32(4, true),
  };
}

/** The pcap global header we write: little-endian, microseconds, version 2.4, LINKTYPE_USER0. */
export function pcapGlobalHeader(): Buffer {
  const b = Buffer.alloc(PCAP_GLOBAL_HEADER_SIZE);
  b.writeUInt32LE(PCAP_MAGIC, 0);
  b.writeUInt16LE(PCAP_VERSION_MAJOR, 4);
  b.writeUInt16LE(PCAP_VERSION_MINOR, 6);
  b.writeInt32LE(0, 8); // thiszone: timestamps are UTC
  b.writeUInt32LE(0, 12); // sigfigs
  b.writeUInt32LE(PCAP_SNAPLEN, 16);
  b.writeUInt32LE(LINKTYPE_USER0, 20);
  return b;
}

/** Names of the link types someone is likely to hand us by mistake (tcpdump.org/linktypes.html). */
export const LINKTYPE_NAMES: Record<number, string> = {
  0: 'LINKTYPE_NULL',
  1: 'LINKTYPE_ETHERNET',
  101: 'LINKTYPE_RAW',
  113: 'LINKTYPE_LINUX_SLL',
  147: 'LINKTYPE_USER0',
  148: 'LINKTYPE_USER1',
  149: 'LINKTYPE_USER2',
  150: 'LINKTYPE_USER3',
  151: 'LINKTYPE_USER4',
  152: 'LINKTYPE_USER5',
  153: 'LINKTYPE_USER6',
  154: 'LINKTYPE_USER7',
  155: 'LINKTYPE_USER8',
  156: 'LINKTYPE_USER9',
  157: 'LINKTYPE_USER10',
  158: 'LINKTYPE_USER11',
  159: 'LINKTYPE_USER12',
  160: 'LINKTYPE_USER13',
  161: 'LINKTYPE_USER14',
  162: 'LINKTYPE_USER15',
  220: 'LINKTYPE_USB_LINUX_MMAPPED',
  228: 'LINKTYPE_IPV4',
  229: 'LINKTYPE_IPV6',
  231: 'LINKTYPE_DBUS',
  249: 'LINKTYPE_USBPCAP',
  252: 'LINKTYPE_WIRESHARK_UPPER_PDU',
  276: 'LINKTYPE_LINUX_SLL2',
};

export const linkTypeName = (n: number): string => LINKTYPE_NAMES[n] ?? 'an unassigned or unlisted link type';
