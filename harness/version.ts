/** isoroot's version, written into every trace header. Kept in step with package.json by a test. */
export const ISOROOT_VERSION = '0.1.0';
