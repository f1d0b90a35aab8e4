/**
 * A kernel module's own metadata: the NUL-separated key=value strings of
 * its ELF ".modinfo" section (name=, depends=), read without kmod, so that
 * set-up needs no tool beyond Node to order the modules it loads.
 */
import { InputError } from '../../../util/errors.ts';

export interface ModInfo {
  name: string;
  depends: string[];
}

/** The .modinfo of an ELF64 little-endian relocatable object (a .ko); `file` names it in errors. */
export function readModInfo(elf: Uint8Array, file: string): ModInfo {
  const b = Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) throw new InputError(`${file}: byte 0`, 'an ELF object (a kernel module)');
  if (b[4] !== 2 || b[5] !== 1) throw new InputError(`${file}: byte 4`, 'a 64-bit little-endian ELF object');
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  if (shoff + shnum * shentsize > b.length || shstrndx >= shnum) throw new InputError(`${file}: byte 0x28`, 'section headers inside the file');
  const section = (i: number): { name: number; off: number; size: number } => {
    const h = shoff + i * shentsize;
    return { name: b.readUInt32LE(h), off: Number(b.readBigUInt64LE(h + 0x18)), size: Number(b.readBigUInt64LE(h + 0x20)) };
  };
  const strtab = section(shstrndx);
  const nameAt = (off: number): string => {
    const start = strtab.off + off;
    return b.toString('latin1', start, b.indexOf(0, start));
  };
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (nameAt(s.name) !== '.modinfo') continue;
    const kv = new Map<string, string>();
    for (const entry of b.toString('latin1', s.off, s.off + s.size).split('\0')) {
      const eq = entry.indexOf('=');
      if (eq > 0 && !kv.has(entry.slice(0, eq))) kv.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
    const name = kv.get('name');
    if (name === undefined) throw new InputError(`${file}: .modinfo`, 'a name= entry');
    const deps = kv.get('depends') ?? '';
    return { name, depends: deps === '' ? [] : deps.split(',') };
  }
  throw new InputError(`${file}: section headers`, 'a .modinfo section');
}

/** Module names with '-' and '_' taken as one, as the kernel does. */
export const moduleKey = (name: string): string => name.replace(/-/g, '_');

/**
 * The modules `wanted` need, dependencies first (each before whoever
 * depends on it), from `infos` keyed by moduleKey. A missing module is an
 * input error naming who wanted it.
 */
export function loadOrder(wanted: readonly string[], infos: ReadonlyMap<string, ModInfo>, where: string): string[] {
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, by: string): void => {
    const k = moduleKey(name);
    if (state.get(k) === 'done') return;
    if (state.get(k) === 'visiting') throw new InputError(where, `modules without a dependency cycle (${k} again, from ${by})`);
    const info = infos.get(k);
    if (info === undefined) throw new InputError(where, `module ${name} (wanted by ${by})`);
    state.set(k, 'visiting');
    for (const d of info.depends) visit(d, k);
    state.set(k, 'done');
    out.push(k);
  };
  for (const w of wanted) visit(w, 'isoroot');
  return out;
}
