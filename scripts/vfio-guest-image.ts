/**
 * Builds the vfio-guest target's guest (harness/adapters/vfio-guest/image)
 * from Debian's packages, or finds it in the cache, and prints where it is.
 * Usage: node --import ./bin/register.mjs scripts/vfio-guest-image.ts [--kernel PATH --modules DIR]
 */
import { guestImage } from '../harness/adapters/vfio-guest/image/image.ts';
import { InputError } from '../harness/util/errors.ts';

const a = process.argv.slice(2);
const opt = (n: string): string | undefined => (a.indexOf(n) >= 0 ? a[a.indexOf(n) + 1] : undefined);
const kernel = opt('--kernel');
const modules = opt('--modules');
try {
  if ((kernel === undefined) !== (modules === undefined)) throw new InputError('vfio-guest-image', '--kernel and --modules together');
  const img = guestImage(kernel !== undefined ? { kernel, modules: modules! } : undefined, (m) => process.stderr.write(m + '\n'));
  process.stderr.write(`vfio-guest image: ${img.parts.join(', ')}; modules ${img.modules.join(' ')}\n`);
  process.stdout.write(img.dir + '\n');
} catch (e) {
  if (e instanceof InputError) {
    process.stderr.write(`vfio-guest-image: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
