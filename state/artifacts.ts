/**
 * Directories of files published atomically: a reader sees either the previous complete version or the
 * new complete one, never a half-written one, even across kill -9 or power loss.
 *
 * How: files are written into a temporary sibling directory and fsynced, the directory is renamed to its
 * final (never reused) name, the parent is fsynced, and only then does a small pointer file
 * (`CURRENT`, replaced by rename) name it. Used for training checkpoints, published expert versions and
 * ensemble snapshots.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateError, errorMessage } from '../src/errors.js';
import { CURRENT_FILE, readCurrent } from '../src/snapshot/current.js';

// Writers and readers of CURRENT stay one API here; the reader itself is shared with the client.
export { readCurrent };

export type Files = Record<string, Uint8Array | string>;

/** fsync a file or directory (a rename is durable only once its directory is synced). */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `files` as directory `parent/name` atomically; `name` must not exist yet. */
export async function writeDirectoryAtomically(parent: string, name: string, files: Files): Promise<string> {
  await mkdir(parent, { recursive: true });
  const final = join(parent, name);
  if (existsSync(final)) throw new StateError(`${final} exists already; published directories are never overwritten`);
  const temp = join(parent, `.tmp-${name}-${randomBytes(4).toString('hex')}`);
  await mkdir(temp);
  try {
    for (const [file, content] of Object.entries(files)) {
      if (file.includes('/') || file.startsWith('.')) throw new StateError(`invalid artifact file name "${file}"`);
      const path = join(temp, file);
      await writeFile(path, content);
      await fsyncPath(path);
    }
    await fsyncPath(temp);
    await rename(temp, final);
    await fsyncPath(parent);
    return final;
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Replaces the file `dir/name` atomically: written under a temporary name (`.tmp-<name>-<random>`),
 * fsynced, renamed over it, then the directory fsynced; a failed write leaves no temporary file.
 */
export async function writeFileAtomically(dir: string, name: string, content: Uint8Array | string): Promise<void> {
  const temp = join(dir, `.tmp-${name}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(temp, content);
    await fsyncPath(temp);
    await rename(temp, join(dir, name));
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await fsyncPath(dir);
}

/** Points `parent/CURRENT` at `name` (atomic). */
export async function setCurrent(parent: string, name: string): Promise<void> {
  await writeFileAtomically(parent, CURRENT_FILE, `${name}\n`);
}

/**
 * Removes published directories other than the newest `keep` (by name order) and the current one, plus
 * temporary leftovers of crashed writers.
 */
export async function pruneDirectories(parent: string, { keep, prefix }: { keep: number; prefix: string }): Promise<string[]> {
  if (!existsSync(parent)) return [];
  const current = await readCurrent(parent);
  const entries = await readdir(parent, { withFileTypes: true });
  const published = entries.filter((e) => e.isDirectory() && e.name.startsWith(prefix)).map((e) => e.name).sort();
  const doomed = [
    ...published.slice(0, Math.max(0, published.length - keep)).filter((n) => n !== current),
    ...entries.filter((e) => e.name.startsWith('.tmp-') || e.name.startsWith('.CURRENT-')).map((e) => e.name),
  ];
  for (const name of doomed) await rm(join(parent, name), { recursive: true, force: true });
  return doomed;
}

/** A small document's text, undefined when the file does not exist; any other failure is a StateError naming it. */
export async function readOptionalText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new StateError(`cannot read ${path}: ${code ?? errorMessage(err)}`, { cause: err });
  }
}

/** Reads named files of a published directory; a missing one is a StateError naming it. */
export async function readFiles(dir: string, names: readonly string[]): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const name of names) {
    try {
      out[name] = await readFile(join(dir, name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new StateError(code === 'ENOENT' ? `${join(dir, name)} is missing` : `cannot read ${join(dir, name)}: ${code}`);
    }
  }
  return out;
}
