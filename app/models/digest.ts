/** sha256 + size checks shared by wheel extraction and model-directory verification. */
import type { Digest } from '../../src/embed/model-dir.js';
import { StateError } from '../../src/errors.js';

/** A file whose bytes are not the ones the catalog lists; the message names it and both digests. */
export class DigestMismatchError extends StateError {}

export function checkDigest(label: string, actual: Digest, expected: Digest, remedy: string): void {
  if (actual.sha256 === expected.sha256 && actual.bytes === expected.bytes) return;
  throw new DigestMismatchError(
    `${label} is corrupt: sha256 ${actual.sha256} (${actual.bytes} bytes), expected ${expected.sha256} (${expected.bytes} bytes); ${remedy}`,
  );
}
