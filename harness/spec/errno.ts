/**
 * Linux errno numbers and names (include/uapi/asm-generic/errno-base.h,
 * errno.h): how a refusal reads on the wire of VFIO and vfio-user. One
 * table for everything that turns a number into a name or back.
 */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENOTBLK: 15,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENOMSG: 42,
  ENODATA: 61,
  ETIME: 62,
  EPROTO: 71,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EILSEQ: 84,
  EMSGSIZE: 90,
  EPROTONOSUPPORT: 93,
  ENOTSUP: 95,
  EADDRINUSE: 98,
  ECONNRESET: 104,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
  EALREADY: 114,
  EINPROGRESS: 115,
  ECANCELED: 125,
} as const;

export type ErrnoName = keyof typeof ERRNO;

const NAMES = new Map<number, string>(Object.entries(ERRNO).map(([k, v]) => [v, k]));

/** The name of an errno number, or "errno N" for one not in the table. */
export const errnoName = (n: number): string => NAMES.get(n) ?? `errno ${n}`;

/** The number of an errno name (as errnoName gives it), or null. */
export function errnoNumber(name: string): number | null {
  if (Object.prototype.hasOwnProperty.call(ERRNO, name)) return ERRNO[name as ErrnoName];
  const m = /^errno ([0-9]{1,4})$/.exec(name);
  return m === null ? null : Number(m[1]);
}

/** An errno as logs and summaries show it: "EINVAL(22)", "errno(200)". */
export function errnoLabel(n: number): string {
  const name = NAMES.get(n);
  return `${name ?? 'errno'}(${n})`;
}
