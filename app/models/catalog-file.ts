/** Reads a user catalog file (`--catalog FILE`, a JSON array of entries) on top of the built-in one. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError, errorMessage } from '../../src/errors.js';
import { BUILTIN_CATALOG, extendCatalog, type CatalogEntry } from '../../src/models/catalog.js';

export async function loadCatalog(file?: string): Promise<CatalogEntry[]> {
  if (file === undefined) return [...BUILTIN_CATALOG];
  const full = resolve(file);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(full, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read model catalog ${full}: ${errorMessage(err)}`, { cause: err });
  }
  return extendCatalog(BUILTIN_CATALOG, json, full);
}
