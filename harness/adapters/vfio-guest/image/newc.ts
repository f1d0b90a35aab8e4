/**
 * An initramfs archive in cpio's "new ASCII" (newc) format, the one the
 * kernel unpacks at boot (Documentation/driver-api/early-userspace/
 * buffer-format.rst): a 110-byte header of 13 hex fields per entry, the
 * name, then the data, each padded to 4 bytes; "TRAILER!!!" ends it.
 */
import { gzipSync } from 'node:zlib';

export type NewcEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Uint8Array; mode?: number }
  | { kind: 'char'; path: string; major: number; minor: number; mode?: number }
  | { kind: 'symlink'; path: string; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;
const S_IFLNK = 0o120000;

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** The archive of `entries`, in order (parents before children), gzip-compressed when `gzip`. */
export function newcArchive(entries: readonly NewcEntry[], gzip = true): Uint8Array {
  const parts: Uint8Array[] = [];
  let ino = 1;
  const push = (name: string, mode: number, data: Uint8Array, rdev: [number, number] = [0, 0]): void => {
    const nameBytes = Buffer.from(name + '\0');
    // Fields: magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check.
    const fields = [ino++, mode, 0, 0, (mode & S_IFDIR) === S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
    const header = Buffer.from('070701' + fields.map(hex8).join(''));
    parts.push(header, nameBytes, new Uint8Array(pad4(header.length + nameBytes.length)), data, new Uint8Array(pad4(data.length)));
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (name === '' || name.split('/').includes('..')) throw new Error(`newc: path ${e.path} is not inside the archive`);
    switch (e.kind) {
      case 'dir':
        push(name, S_IFDIR | (e.mode ?? 0o755), new Uint8Array(0));
        break;
      case 'file':
        push(name, S_IFREG | (e.mode ?? 0o644), e.data);
        break;
      case 'char':
        push(name, S_IFCHR | (e.mode ?? 0o600), new Uint8Array(0), [e.major, e.minor]);
        break;
      case 'symlink':
        push(name, S_IFLNK | 0o777, Buffer.from(e.target));
        break;
    }
  }
  push('TRAILER!!!', 0, new Uint8Array(0));
  const raw = Buffer.concat(parts);
  return gzip ? gzipSync(raw, { level: 6 }) : raw;
}
