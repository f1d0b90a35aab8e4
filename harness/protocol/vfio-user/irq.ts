/**
 * Interrupt payloads: DEVICE_GET_IRQ_INFO and DEVICE_SET_IRQS.
 */
import { IRQ_SET_DATA_BOOL, IRQ_SET_DATA_NONE, type IrqInfo, type SetIrqs } from './messages.ts';
import { Dec, type Dir, hex, popcount } from './fields.ts';
import { IRQ_INFO_FLAGS, IRQ_INFO_SIZE, IRQ_SET_ACTION, IRQ_SET_DATA, IRQ_SET_SIZE, P } from './layout.ts';

export function decodeIrqInfo(d: Dec, len: number, { reply, fds }: Dir): IrqInfo {
  // "VFIO_USER_DEVICE_GET_IRQ_INFO"
  d.exact(len, IRQ_INFO_SIZE, 'the IRQ info structure');
  const argsz = d.argszAtLeast(IRQ_INFO_SIZE, 'the 16-byte reply');
  const flags = d.u32(P + 4);
  const index = d.u32(P + 8);
  const count = d.u32(P + 12);
  if (!reply) {
    d.zero32('flags', P + 4, 'all other fields must be zero');
    d.zero32('count', P + 12, 'all other fields must be zero');
  } else if ((flags & ~IRQ_INFO_FLAGS) !== 0) d.fail('flags', P + 4, 'only EVENTFD, MASKABLE, AUTOMASKED, NORESIZE (bits 0-3)', hex(flags));
  d.noFds(fds);
  return { argsz, flags, index, count };
}

export function decodeSetIrqs(d: Dec, len: number, { fds }: Dir): SetIrqs {
  // "VFIO_USER_DEVICE_SET_IRQS": argsz is the size of the request payload, data included.
  d.atLeast(len, IRQ_SET_SIZE, 'the IRQ set structure');
  const argsz = d.u32(P);
  if (argsz !== len) d.fail('argsz', P, `${len} (the request payload, data included)`, `${argsz}`);
  const flags = d.u32(P + 4);
  if ((flags & ~(IRQ_SET_DATA | IRQ_SET_ACTION)) !== 0) d.fail('flags', P + 4, 'only DATA_ and ACTION_ bits (0-5)', hex(flags));
  if (popcount(flags & IRQ_SET_DATA) !== 1) d.fail('flags', P + 4, 'exactly one of DATA_NONE, DATA_BOOL, DATA_EVENTFD', hex(flags));
  if (popcount(flags & IRQ_SET_ACTION) !== 1) d.fail('flags', P + 4, 'exactly one of ACTION_MASK, ACTION_UNMASK, ACTION_TRIGGER', hex(flags));
  const index = d.u32(P + 8);
  const start = d.u32(P + 12);
  const count = d.u32(P + 16);
  const body: SetIrqs = { argsz, flags, index, start, count };
  if (flags & IRQ_SET_DATA_BOOL) {
    if (len !== IRQ_SET_SIZE + count) d.fail('count', P + 16, `${len - IRQ_SET_SIZE} (one boolean byte per interrupt in the data)`, `${count}`);
    body.data = d.take(P + IRQ_SET_SIZE, count);
    d.noFds(fds, P + 4);
  } else {
    if (len !== IRQ_SET_SIZE) d.fail('argsz', P, `${IRQ_SET_SIZE} (no data field with ${flags & IRQ_SET_DATA_NONE ? 'DATA_NONE' : 'DATA_EVENTFD'})`, `${argsz}`);
    if (flags & IRQ_SET_DATA_NONE) d.noFds(fds, P + 4);
    // DATA_EVENTFD: count eventfds, or none to de-assign.
    else if (fds.length !== 0 && fds.length !== count) d.fail('fds', P + 16, `${count} (one eventfd per interrupt) or none (de-assign)`, `${fds.length}`);
  }
  return body;
}
