/** `modestream models list`: every catalog entry and what is on disk for it (read-only, no hashing). */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { CatalogEntry } from '../../src/models/catalog.js';
import { readManifest } from './manifest.js';

export interface ModelListing {
  name: string;
  description: string;
  license: string;
  /** A complete pull is there (its manifest is); files are verified by `pull`, not here. */
  present: boolean;
  /** Absolute directory the model is (or would be) in. */
  dir: string;
  /** Bytes on disk under `dir` (0 when absent). */
  bytes: number;
  /** A static embedder was distilled into `dir/static`. */
  static: boolean;
  pulledAt?: string;
}

export async function listModels(catalog: readonly CatalogEntry[], modelsDir: string): Promise<ModelListing[]> {
  return Promise.all(
    catalog.map(async (entry) => {
      const dir = join(resolve(modelsDir), entry.name);
      const manifest = await readManifest(dir).catch(() => undefined);
      const listing: ModelListing = {
        name: entry.name,
        description: entry.description,
        license: entry.license,
        present: manifest !== undefined,
        dir,
        bytes: manifest ? await treeSize(dir) : 0,
        static: manifest?.static !== undefined,
      };
      if (manifest) listing.pulledAt = manifest.pulledAt;
      return listing;
    }),
  );
}

async function treeSize(dir: string): Promise<number> {
  let total = 0;
  for (const item of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, item.name);
    if (item.isDirectory()) total += await treeSize(path);
    else if (item.isFile()) total += (await stat(path)).size;
  }
  return total;
}
