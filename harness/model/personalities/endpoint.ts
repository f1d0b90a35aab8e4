/**
 * The generic endpoint: configurable BARs, capabilities and scratch
 * registers, so that every route an access takes is visible in the value
 * it returns. Each BAR (memory or IO) is a register file:
 *   0x00  RO  identity: 0x15000000 | uid << 8 | region
 *   0x04  RW  doorbell: writing V requests interrupt vector V
 *   0x08  RW  INTx: reads the INTx request; any write withdraws it
 *   0x0c  RO  zero
 *   0x10+ RW  scratch, up to 4 KiB into the BAR
 * The MSI-X table and PBA sit at 0x1000 and 0x1800 of the first memory
 * BAR of 8 KiB or more. The ROM holds 0x55 0xAA then a pattern of uid.
 */
import { PciFunction } from '../function.ts';
import { ROM_REGION, installBar, layoutBars, type BarDef } from '../bar.ts';
import { installCaps } from '../capabilities.ts';
import { initType0 } from '../header-init.ts';
import { ROM_TYPE0 } from '../header.ts';
import { msixBar } from '../../topology/validate.ts';
import type { DeviceSpec } from '../../topology/types.ts';

export const ENDPOINT_VENDOR = 0x1b36;
export const ENDPOINT_DEVICE = 0x1100;
const FILE = 0x1000;

export class Endpoint extends PciFunction {
  private files: (Uint8Array | undefined)[] = [];

  constructor(spec: DeviceSpec, root: number, uid: number, multifunction: boolean) {
    const caps = spec.caps ?? [];
    super(spec, root, caps.includes('pcie'), multifunction);
    this.uid = uid;
    if (!this.templated) this.layOut(spec, caps, multifunction);
    this.seal();
  }

  private layOut(spec: DeviceSpec, caps: readonly string[], multifunction: boolean): void {
    initType0(this.cfg, { vendor: ENDPOINT_VENDOR, device: ENDPOINT_DEVICE, classCode: 0xff0000, revision: 1, pin: 1, multifunction });
    const defs = layoutBars(spec.bars ?? []);
    for (const b of defs) {
      installBar(this.cfg, b);
      this.bars[b.region] = b;
    }
    if (spec.rom !== undefined) {
      const rom: BarDef = { region: ROM_REGION, kind: 'rom', size: spec.rom, prefetch: false, reg: ROM_TYPE0 };
      installBar(this.cfg, rom);
      this.bars[ROM_REGION] = rom;
    }
    const xi = msixBar(spec.bars ?? []);
    this.caps = installCaps(this.cfg, {
      pm: caps.includes('pm'),
      msi: caps.includes('msi') ? { vectors: spec.msiVectors ?? 1, is64: true, pvm: true } : undefined,
      msix: caps.includes('msix') ? { vectors: spec.msixVectors ?? 8, bar: defs[xi].region } : undefined,
      pcie: caps.includes('pcie') ? { type: 'endpoint', flr: true } : undefined,
      pasid: caps.includes('pasid') ? { width: 20 } : undefined,
      ats: caps.includes('ats'),
      acs: caps.includes('acs'),
    });
  }

  private file(region: number): Uint8Array {
    let f = this.files[region];
    if (f === undefined) {
      f = new Uint8Array(Math.min(this.bars[region]!.size, FILE));
      const id = (0x15000000 | (this.uid << 8) | region) >>> 0;
      for (let i = 0; i < 4 && i < f.length; i++) f[i] = (id >>> (8 * i)) & 0xff;
      this.files[region] = f;
    }
    return f;
  }

  protected read(region: number, off: number, size: number): bigint {
    if (region === ROM_REGION) {
      let v = 0n;
      for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(romByte(this.uid, off + i));
      return v;
    }
    const f = this.file(region);
    if (off + size > f.length) return 0n;
    if (off < 0x0c && off + size > 0x08) {
      // INTx request bit appears at 0x08.
      f[8] = this.intxRequested ? 1 : 0;
    }
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(f[off + i]);
    return v;
  }

  protected write(region: number, off: number, size: number, value: bigint): void {
    if (region === ROM_REGION) return;
    const f = this.file(region);
    if (off + size > f.length) return;
    let doorbell = false;
    let ack = false;
    for (let i = 0; i < size; i++) {
      const o = off + i;
      if (o < 4 || (o >= 0x0c && o < 0x10)) continue; // read-only
      if (o >= 8 && o < 0x0c) {
        ack = true;
        continue;
      }
      f[o] = Number((value >> BigInt(8 * i)) & 0xffn);
      if (o >= 4 && o < 8) doorbell = true;
    }
    if (ack) this.lowerIntx();
    if (doorbell) this.signal((f[4] | (f[5] << 8) | (f[6] << 16) | (f[7] << 24)) >>> 0);
  }

  protected override resetState(): void {
    this.files = [];
  }

  protected override snapshotState(): unknown {
    return this.files.map((f) => (f === undefined ? null : f.slice()));
  }

  protected override restoreState(s: unknown): void {
    this.files = (s as (Uint8Array | null)[]).map((f) => (f === null ? undefined : f.slice()));
  }
}

export const romByte = (uid: number, off: number): number => (off === 0 ? 0x55 : off === 1 ? 0xaa : (uid * 7 + off) & 0xff);
