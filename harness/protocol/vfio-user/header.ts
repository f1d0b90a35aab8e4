/**
 * The 16-byte header ("Header"): id, command, size, flags, error.
 */
import { FLAG_ERROR, FLAG_NO_REPLY, FLAG_TYPE_COMMAND, FLAG_TYPE_MASK, FLAG_TYPE_REPLY, HEADER_SIZE, commandName, type Header } from './messages.ts';
import { Dec, bytesOf, hex } from './fields.ts';

export function headerChecks(d: Dec, b: Uint8Array): Header {
  if (b.length < HEADER_SIZE) d.fail('header', 0, `${HEADER_SIZE} bytes`, bytesOf(b.length));
  const id = d.u16(0);
  const command = d.u16(2);
  const size = d.u32(4);
  const flags = d.u32(8);
  const errno = d.u32(12);
  if (size < HEADER_SIZE) d.fail('msg_size', 4, `at least ${HEADER_SIZE} (the header is included)`, `${size}`);
  const name = commandName(command);
  if (name === undefined) d.fail('command', 2, 'a command of the specification (1-13, 15-18)', `${command}`);
  const type = flags & FLAG_TYPE_MASK;
  const reply = type === FLAG_TYPE_REPLY;
  d.label = reply ? `${name} reply` : name;
  if (type !== FLAG_TYPE_COMMAND && type !== FLAG_TYPE_REPLY) d.fail('flags', 8, 'type 0 (command) or 1 (reply)', `type ${type}`);
  const reserved = flags & ~(FLAG_TYPE_MASK | FLAG_NO_REPLY | FLAG_ERROR);
  if (reserved !== 0) d.fail('flags', 8, 'reserved bits 6-31 clear', hex(flags >>> 0));
  const noReply = (flags & FLAG_NO_REPLY) !== 0;
  const error = (flags & FLAG_ERROR) !== 0;
  if (reply && noReply) d.fail('flags', 8, 'No_reply clear in a reply (it is a command attribute)', hex(flags));
  if (!reply && error) d.fail('flags', 8, 'Error clear in a command (it is a reply attribute)', hex(flags));
  // "It is reserved in a command message"; without the Error bit there is no error to report.
  if (!reply && errno !== 0) d.fail('error', 12, '0 (reserved in a command message)', `${errno}`);
  if (reply && !error && errno !== 0) d.fail('error', 12, '0 (the Error flag is clear)', `${errno}`);
  return { id, command, size, reply, noReply, error, errno };
}

/** Header peek for tools (pcap import, proxy): decodes only the 16-byte header, validating it. */
export function decodeHeader(bytes: Uint8Array): Header {
  return headerChecks(new Dec('header', bytes), bytes);
}
