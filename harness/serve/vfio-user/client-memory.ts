/**
 * A client's memory as the served device's DMA reaches it: the regions
 * the client mapped with DMA_MAP, each backed by the file descriptor it
 * sent (read and written in place) or, without one, reached by DMA_READ
 * and DMA_WRITE messages to the client ("DMA_MAP": "If a DMA region does
 * not have an associated file descriptor..."). The model's IOMMU domain
 * holds the same regions keyed by IOVA (translated to themselves), so the
 * model's translation and permission rules decide, and this decides only
 * where the bytes are.
 */
import { fstatSync, readSync, writeSync } from 'node:fs';
import { Ram } from '../../model/ram.ts';
import { IntervalMap } from '../../util/interval-map.ts';
import { closeFd } from '../../protocol/vfio-user/fd-socket.ts';

/** How a server reaches client memory that came without a file descriptor. */
export interface DmaPort {
  /** DMA_READ; null when the client refused or is gone. */
  read(address: number, count: number): Uint8Array | null;
  /** DMA_WRITE; dropped when the client refuses or is gone. */
  write(address: number, data: Uint8Array): void;
}

interface Region {
  address: number;
  size: number;
  fd: number | null;
  offset: number;
  /** fd: bytes the file holds past `offset` (what a DMA may reach). */
  backed: number;
}

export class ClientMemory extends Ram {
  private readonly regions = new IntervalMap<Region>();
  port: DmaPort | null = null;

  add(address: number, size: number, fd: number | null, offset: number): void {
    let backed = size;
    if (fd !== null) {
      const len = fstatSync(fd).size;
      backed = Math.max(0, Math.min(size, len - offset));
    }
    this.regions.insert(address, address + size - 1, { address, size, fd, offset, backed });
  }

  /** Drops the regions inside [address, address + size), closing their fds. */
  remove(address: number, size: number): void {
    for (const h of this.regions.intersecting(address, address + size - 1)) {
      this.regions.remove(h.start);
      if (h.value.fd !== null) closeFd(h.value.fd);
    }
  }

  removeAll(): void {
    for (const h of this.regions.entries()) if (h.value.fd !== null) closeFd(h.value.fd);
    this.regions.clear();
  }

  override contains(addr: number, len: number): boolean {
    let a = addr;
    const end = addr + len;
    while (a < end) {
      const h = this.regions.find(a);
      if (h === null) return false;
      const reg = h.value;
      if (a - reg.address >= reg.backed) return false;
      a = Math.min(end, reg.address + reg.backed);
    }
    return true;
  }

  override read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.pieces(addr, len, (reg, at, n, done) => {
      if (reg.fd !== null) readSync(reg.fd, out, done, n, reg.offset + (at - reg.address));
      else {
        // A client that refuses, or is gone, leaves zeros: what a failed DMA read gets.
        const got = this.port?.read(at, n) ?? null;
        if (got !== null && got.length === n) out.set(got, done);
      }
    });
    return out;
  }

  override write(addr: number, data: Uint8Array): void {
    this.pieces(addr, data.length, (reg, at, n, done) => {
      const part = data.subarray(done, done + n);
      if (reg.fd !== null) writeSync(reg.fd, part, 0, n, reg.offset + (at - reg.address));
      else this.port?.write(at, part);
    });
  }

  override clear(): void {
    this.removeAll();
  }

  private pieces(addr: number, len: number, f: (reg: Region, at: number, n: number, done: number) => void): void {
    let done = 0;
    while (done < len) {
      const at = addr + done;
      const h = this.regions.find(at);
      if (h === null) return; // contains() was asked first; nothing to reach
      const n = Math.min(len - done, h.value.address + h.value.size - at);
      f(h.value, at, n, done);
      done += n;
    }
  }
}
