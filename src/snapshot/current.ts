/**
 * Reading the `CURRENT` pointer of a directory of atomically published versions (snapshots, model
 * versions, checkpoints; written by state/artifacts.ts). Here rather than in state/ because the
 * evaluators' client resolves a snapshots root with it and must not load LMDB.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const CURRENT_FILE = 'CURRENT';

/** The name `CURRENT` points at, if any. */
export async function readCurrent(parent: string): Promise<string | undefined> {
  try {
    const name = (await readFile(join(parent, CURRENT_FILE), 'utf8')).trim();
    return name === '' ? undefined : name;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
