import { shorten } from './text.js';
import { CldpdError } from './errors.js';

const POD_NAME = /^[a-z0-9][a-z0-9._-]*$/;
const MAX_POD_NAME = 63;

/**
 * Throws `InvalidPodName` unless `name` matches `[a-z0-9][a-z0-9._-]*` and is at most 63
 * characters (it becomes part of image, container and volume names). Pure: it touches no
 * file, so a hostile name is refused before any path is built from it.
 */
export function assertPodName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new CldpdError('InvalidPodName', 'No pod name given. Name a pod directory, for example "cldpd start my-pod".');
  }
  const shown = JSON.stringify(name.length > 80 ? shorten(name, 81) : name);
  if (name.length > MAX_POD_NAME) {
    throw new CldpdError(
      'InvalidPodName',
      `Pod name ${shown} is ${name.length} characters long; the limit is ${MAX_POD_NAME}. Rename the pod directory.`,
    );
  }
  if (!POD_NAME.test(name) || name.includes('..')) {
    throw new CldpdError(
      'InvalidPodName',
      `Pod name ${shown} is not allowed: use lowercase letters, digits, ".", "_" and "-", starting with a letter or digit (no "..", no "/").`,
    );
  }
}
