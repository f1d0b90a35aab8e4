/** Guest RAM of one memory space, sparse in 4 KiB pages (absent pages read zero). */
const PAGE = 0x1000;

export class Ram {
  private pages = new Map<number, Uint8Array>();
  constructor(readonly size: number) {}

  contains(addr: number, len: number): boolean {
    return addr >= 0 && addr + len <= this.size;
  }

  read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const pn = Math.floor(a / PAGE);
      const po = a - pn * PAGE;
      const n = Math.min(len - done, PAGE - po);
      const p = this.pages.get(pn);
      if (p !== undefined) out.set(p.subarray(po, po + n), done);
      done += n;
    }
    return out;
  }

  write(addr: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      const a = addr + done;
      const pn = Math.floor(a / PAGE);
      const po = a - pn * PAGE;
      const n = Math.min(data.length - done, PAGE - po);
      let p = this.pages.get(pn);
      if (p === undefined) this.pages.set(pn, (p = new Uint8Array(PAGE)));
      p.set(data.subarray(done, done + n), po);
      done += n;
    }
  }

  /** Little-endian value of 1..8 bytes. */
  readValue(addr: number, size: number): bigint {
    const b = this.read(addr, size);
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  }

  writeValue(addr: number, size: number, value: bigint): void {
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = Number((value >> BigInt(8 * i)) & 0xffn);
    this.write(addr, b);
  }

  clear(): void {
    this.pages.clear();
  }

  snapshot(): [number, Uint8Array][] {
    return [...this.pages].map(([k, v]) => [k, v.slice()]);
  }

  restore(s: [number, Uint8Array][]): void {
    this.pages = new Map(s.map(([k, v]) => [k, v.slice()]));
  }
}
