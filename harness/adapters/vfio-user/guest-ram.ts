/**
 * A root's guest memory on the client side: a memfd of the root's RAM
 * size, and the device's DMA mappings (IOVA to guest-physical, VFIO
 * type-1 rules in ops/dma-mappings.ts). Mappings in the upper half of RAM
 * go without a file descriptor, so that the server must reach them with
 * DMA_READ and DMA_WRITE, which this answers; the others go with the
 * memfd, which the server reads and writes in place. Either way every
 * byte the device moves is in this memfd, where the CPU's reads find it.
 */
import { ftruncateSync, readSync, writeSync } from 'node:fs';
import { MappingTable, type Mapping } from '../../ops/dma-mappings.ts';
import { closeFd, memfdCreate } from '../../protocol/vfio-user/fd-socket.ts';
import { ERRNO } from '../../spec/errno.ts';

export class GuestRam {
  readonly fd: number;
  readonly table = new MappingTable();

  constructor(
    readonly size: number,
    name: string,
  ) {
    this.fd = memfdCreate(name, size);
  }

  /** Whether a mapping goes by messages rather than with the memfd. */
  byMessages(m: Pick<Mapping, 'gpa' | 'size'>): boolean {
    return m.gpa >= this.size / 2 && m.gpa + m.size <= this.size;
  }

  read(gpa: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    if (gpa + len <= this.size) readSync(this.fd, out, 0, len, gpa);
    return out;
  }

  write(gpa: number, data: Uint8Array): void {
    if (gpa + data.length <= this.size) writeSync(this.fd, data, 0, data.length, gpa);
  }

  /**
   * The guest-physical pieces behind a device access to [iova, iova+len),
   * or the errno a client returns: the range must be mapped with the
   * permission asked, by message-backed mappings, inside RAM.
   */
  resolve(iova: number, len: number, write: boolean): { gpa: number; len: number }[] | number {
    const out: { gpa: number; len: number }[] = [];
    let done = 0;
    while (done < len) {
      const h = this.table.find(iova + done);
      if (h === null) return ERRNO.EFAULT;
      const m = h.value;
      if (write ? m.perm === 'r' : m.perm === 'w') return ERRNO.EPERM;
      const n = Math.min(len - done, m.iova + m.size - (iova + done));
      const gpa = m.gpa + (iova + done - m.iova);
      if (gpa + n > this.size) return ERRNO.EFAULT;
      out.push({ gpa, len: n });
      done += n;
    }
    return out;
  }

  /** Every byte back to zero, as at power-on (the memfd is cut to nothing and grown again). */
  zero(): void {
    ftruncateSync(this.fd, 0);
    ftruncateSync(this.fd, this.size);
  }

  close(): void {
    closeFd(this.fd);
  }
}
