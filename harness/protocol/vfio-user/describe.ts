/**
 * One-line summaries of messages, for logs, traces and captures.
 */
import { DMA_READ_FLAG, DMA_UNMAP_ALL, DMA_WRITE_FLAG, FEATURE_GET, FEATURE_MASK, FEATURE_PROBE, FEATURE_SET, IRQ_SET_ACTION_MASK, IRQ_SET_ACTION_UNMASK, IRQ_SET_DATA_BOOL, IRQ_SET_DATA_EVENTFD, type DeviceFeature, type DeviceInfo, type DmaAccess, type DmaMap, type DmaUnmap, type IrqInfo, type Message, type MigData, type RegionAccess, type RegionInfo, type RegionIoFds, type RegionWriteMulti, type RegionWriteMultiReply, type SetIrqs, type Version, type VersionCaps } from './messages.ts';
import { bytesOf, hex } from './fields.ts';
import { errnoLabel } from '../../spec/errno.ts';

/** Data as a little-endian value when it fits 8 bytes, else its first bytes in hex. */
function dataStr(data: Uint8Array | undefined): string {
  if (!data || data.length === 0) return '';
  if (data.length <= 8) {
    let v = 0n;
    for (let k = data.length - 1; k >= 0; k--) v = (v << 8n) | BigInt(data[k]);
    return ` 0x${v.toString(16).padStart(data.length * 2, '0')}`;
  }
  return ` ${Buffer.from(data.subarray(0, 16)).toString('hex')}${data.length > 16 ? '…' : ''}`;
}

const capsStr = (c: VersionCaps): string => {
  const p: string[] = [];
  if (c.maxMsgFds !== undefined) p.push(`max_msg_fds ${c.maxMsgFds}`);
  if (c.maxDataXferSize !== undefined) p.push(`max_data_xfer_size ${c.maxDataXferSize}`);
  if (c.pgsizes !== undefined) p.push(`pgsizes ${hex(c.pgsizes)}`);
  if (c.maxDmaMaps !== undefined) p.push(`max_dma_maps ${c.maxDmaMaps}`);
  if (c.migration) p.push(`migration pgsize ${hex(c.migration.pgsize)}`);
  if (c.twinSocket) p.push(`twin_socket ${c.twinSocket.supported}${c.twinSocket.fdIndex !== undefined ? ` fd ${c.twinSocket.fdIndex}` : ''}`);
  if (c.writeMultiple !== undefined) p.push(`write_multiple ${c.writeMultiple}`);
  if (c.other) p.push(...Object.keys(c.other));
  return p.length ? ` ${p.join(', ')}` : '';
};

function bodyStr(m: Message): string {
  const b = m.body as unknown;
  if (b === null) return '';
  const r = m.reply;
  switch (m.command) {
    case 'VERSION': {
      const v = b as Version;
      return ` ${v.major}.${v.minor}${capsStr(v.caps)}`;
    }
    case 'DMA_MAP': {
      const x = b as DmaMap;
      const rw = `${x.flags & DMA_READ_FLAG ? 'R' : ''}${x.flags & DMA_WRITE_FLAG ? 'W' : ''}` || '-';
      return ` address ${hex(x.address)} size ${hex(x.size)} ${rw}${m.fds.length ? ` fd offset ${hex(x.offset)}` : ''}`;
    }
    case 'DMA_UNMAP': {
      const x = b as DmaUnmap;
      return x.flags & DMA_UNMAP_ALL ? ' all' : ` address ${hex(x.address)} size ${hex(x.size)}`;
    }
    case 'DEVICE_GET_INFO': {
      const x = b as DeviceInfo;
      return r ? ` flags ${hex(x.flags)} regions ${x.numRegions} irqs ${x.numIrqs}` : '';
    }
    case 'DEVICE_GET_REGION_INFO': {
      const x = b as RegionInfo;
      if (!r) return ` region ${x.index}`;
      return ` region ${x.index} size ${hex(x.size)} offset ${hex(x.offset)} flags ${hex(x.flags)}${x.sparse ? ` sparse ${x.sparse.length}` : ''}${x.type ? ` type ${x.type.type}:${x.type.subtype}` : ''}`;
    }
    case 'DEVICE_GET_REGION_IO_FDS': {
      const x = b as RegionIoFds;
      return r ? ` region ${x.index} count ${x.count}` : ` region ${x.index}`;
    }
    case 'DEVICE_GET_IRQ_INFO': {
      const x = b as IrqInfo;
      return r ? ` irq ${x.index} count ${x.count} flags ${hex(x.flags)}` : ` irq ${x.index}`;
    }
    case 'DEVICE_SET_IRQS': {
      const x = b as SetIrqs;
      const data = x.flags & IRQ_SET_DATA_BOOL ? 'BOOL' : x.flags & IRQ_SET_DATA_EVENTFD ? 'EVENTFD' : 'NONE';
      const action = x.flags & IRQ_SET_ACTION_MASK ? 'MASK' : x.flags & IRQ_SET_ACTION_UNMASK ? 'UNMASK' : 'TRIGGER';
      return ` irq ${x.index} start ${x.start} count ${x.count} ${data}|${action}`;
    }
    case 'REGION_READ':
    case 'REGION_WRITE': {
      const x = b as RegionAccess;
      if (r && m.command === 'REGION_READ') return ` ${bytesOf(x.count)}${dataStr(x.data)}`;
      return ` region ${x.region} offset ${hex(x.offset)} count ${x.count}${dataStr(x.data)}`;
    }
    case 'DMA_READ':
    case 'DMA_WRITE': {
      const x = b as DmaAccess;
      if (r && m.command === 'DMA_READ') return ` ${bytesOf(Number(x.count))}${dataStr(x.data)}`;
      return ` address ${hex(x.address)} count ${x.count}${dataStr(x.data)}`;
    }
    case 'DEVICE_RESET':
      return '';
    case 'REGION_WRITE_MULTI':
      return r ? ` ${(b as RegionWriteMultiReply).wrCnt} writes` : ` ${(b as RegionWriteMulti).writes.length} writes`;
    case 'DEVICE_FEATURE': {
      const x = b as DeviceFeature;
      const ops = [x.flags & FEATURE_GET && 'GET', x.flags & FEATURE_SET && 'SET', x.flags & FEATURE_PROBE && 'PROBE'].filter(Boolean).join('|');
      return ` feature ${x.flags & FEATURE_MASK} ${ops || '-'}${x.data.length ? ` ${bytesOf(x.data.length)}` : ''}`;
    }
    case 'MIG_DATA_READ':
    case 'MIG_DATA_WRITE': {
      const x = b as MigData;
      return ` size ${x.size}${x.data ? ` ${bytesOf(x.data.length)}` : ''}`;
    }
  }
}

/** One-line human summary of a message for logs and reports. */
export function describeMessage(m: Message): string {
  const head = `#${m.id} ${m.reply ? 'reply ' : ''}${m.command}`;
  if (m.reply && (m.errno !== 0 || m.error)) return `${head} error ${errnoLabel(m.errno)}`;
  const tail = (!m.reply && m.noReply ? ' (no reply)' : '') + (m.fds.length ? ` +${m.fds.length} fd${m.fds.length === 1 ? '' : 's'}` : '');
  return `${head}${bodyStr(m)}${tail}`;
}
