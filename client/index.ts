/**
 * The evaluators' TypeScript client: `loadSnapshot(urlOrDir)` fetches a snapshot (over HTTP from a
 * running modestream, or from a snapshot directory), verifies every file against the manifest's size and
 * SHA-256, and returns the MoDE ensemble ready for `classify(images, classNames)` and
 * `retrieve(images, texts)`.
 *
 *   const { ensemble, manifest } = await loadSnapshot('http://127.0.0.1:8080');        // latest
 *   const { ensemble } = await loadSnapshot('http://127.0.0.1:8080/snapshots/12');      // a version
 *   const { ensemble } = await loadSnapshot('.modestream/state/snapshots');            // latest in a dir
 *   await loadSnapshot('https://modestream.internal', { token: process.env.MODESTREAM_SNAPSHOT_TOKEN }); // http.token set
 *   const { predictions, weights } = await ensemble.classify(images, ['T-shirt', 'Trouser']);
 *
 * A tensor backend must be active (initBackend); the ensemble runs on it.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bytesToF32 } from '../src/codec/bytes.js';
import { ConfigSchema, type EmbedderSettings } from '../src/config.js';
import { createEmbedder } from '../src/embed/embedder.js';
import { createEnsemble, type Ensemble } from '../src/ensemble/ensemble.js';
import type { RoutingFormula } from '../src/ensemble/weights.js';
import { StateError } from '../src/errors.js';
import { deserializeModel } from '../src/expert/checkpoint.js';
import { disposeModel, type ExpertModel } from '../src/expert/model.js';
import { readCurrent } from '../src/snapshot/current.js';
import { MANIFEST_FILE, parseManifest, type SnapshotManifest } from '../src/snapshot/manifest.js';

export type { Ensemble } from '../src/ensemble/ensemble.js';
export type { SnapshotManifest } from '../src/snapshot/manifest.js';

export interface LoadOptions {
  /** For snapshots made with a model-backed embedder: the encoder's directory on this machine... */
  embedderDir?: string;
  /** ...or where `modestream models pull` put the models the snapshot names (default .modestream/models). */
  modelsDir?: string;
  /** Override the snapshot's routing formula. */
  formula?: RoutingFormula;
  /** Largest file accepted from a server (default 512 MiB). */
  maxFileBytes?: number;
  /** Bearer token for a server with `http.token` set (sent as `Authorization: Bearer <token>`). */
  token?: string;
}

export interface LoadedSnapshot {
  manifest: SnapshotManifest;
  ensemble: Ensemble;
  /** Where it came from (the resolved version URL or directory). */
  source: string;
  dispose(): void;
}

interface Source {
  where: string;
  read(name: string): Promise<Uint8Array>;
}

const isUrl = (s: string) => /^https?:\/\//.test(s);
const DEFAULT_MODELS_DIR = ConfigSchema.shape.modelsDir.parse(undefined);

async function httpSource(url: string, maxBytes: number, token: string | undefined): Promise<Source> {
  const base = url.replace(/\/+$/, '');
  // http://host:port -> latest; .../snapshots/latest or .../snapshots/<n> -> that version.
  const versionBase = /\/snapshots\/(latest|\d+)$/.test(base) ? base : `${base}/snapshots/latest`;
  const get = async (target: string): Promise<Uint8Array> => {
    let response: Response;
    try {
      response = await fetch(target, token ? { headers: { authorization: `Bearer ${token}` } } : undefined);
    } catch (err) {
      throw new StateError(`cannot reach ${target}: ${(err as Error).message}`, { cause: err, retriable: true });
    }
    if (response.status === 404) throw new GoneError(`${target}: not found (HTTP 404)`);
    if (response.status === 401) throw new StateError(`${target}: HTTP 401, ${token ? 'the token was refused' : 'the server wants a token (LoadOptions.token)'}`);
    if (!response.ok) throw new StateError(`${target}: HTTP ${response.status}`);
    const length = Number(response.headers.get('content-length') ?? 0);
    if (length > maxBytes) throw new StateError(`${target}: ${length} bytes is over the ${maxBytes}-byte limit`);
    return new Uint8Array(await response.arrayBuffer());
  };
  // Resolve "latest" once, so every file comes from the same version even if a new one is published.
  const manifestText = Buffer.from(await get(versionBase)).toString();
  const manifest = parseManifest(manifestText, versionBase);
  const versionUrl = versionBase.replace(/\/latest$/, `/${manifest.version}`);
  return {
    where: versionUrl,
    read: (name) => (name === MANIFEST_FILE ? Promise.resolve(Buffer.from(manifestText)) : get(`${versionUrl}/${encodeURIComponent(name)}`)),
  };
}

async function dirSource(path: string): Promise<Source> {
  if (!existsSync(path) || !statSync(path).isDirectory()) throw new StateError(`${path} is not a snapshot directory`);
  // A snapshots root (with CURRENT) resolves to its latest version directory.
  const current = existsSync(join(path, MANIFEST_FILE)) ? undefined : await readCurrent(path);
  const dir = current ? join(path, current) : path;
  if (!existsSync(join(dir, MANIFEST_FILE))) throw new StateError(`${dir} holds no ${MANIFEST_FILE} (and no CURRENT naming a snapshot)`);
  return {
    where: dir,
    read: async (name) => {
      try {
        return await readFile(join(dir, name));
      } catch {
        // The whole version directory gone means it was pruned under us; a lone missing file is damage.
        throw existsSync(dir) ? new StateError(`snapshot ${dir}: ${name} is missing`) : new GoneError(`snapshot ${dir} was removed while reading it`);
      }
    },
  };
}

/** Marks a read that failed because the version vanished (pruned meanwhile), not because it is bad. */
class GoneError extends StateError {}

export async function loadSnapshot(urlOrDir: string, options: LoadOptions = {}): Promise<LoadedSnapshot> {
  // "Latest" is resolved once per attempt; if that version is pruned while we read it (a new one was
  // published), resolve again. A pinned version is read once: its absence is an error.
  for (let attempt = 0; ; attempt++) {
    try {
      return await loadOnce(urlOrDir, options);
    } catch (err) {
      if (!(err instanceof GoneError) || attempt >= 3 || pinned(urlOrDir)) throw err;
    }
  }
}

const pinned = (urlOrDir: string) => (isUrl(urlOrDir) ? /\/snapshots\/\d+\/?$/.test(urlOrDir) : existsSync(join(urlOrDir, MANIFEST_FILE)));

async function loadOnce(urlOrDir: string, options: LoadOptions): Promise<LoadedSnapshot> {
  const source = isUrl(urlOrDir) ? await httpSource(urlOrDir, options.maxFileBytes ?? 512 * 2 ** 20, options.token) : await dirSource(urlOrDir);
  const manifest = parseManifest(Buffer.from(await source.read(MANIFEST_FILE)).toString(), source.where);
  const what = `snapshot v${manifest.version} (${source.where})`;

  const files = new Map<string, Uint8Array>();
  for (const entry of manifest.files) {
    const bytes = await source.read(entry.name);
    if (bytes.byteLength !== entry.bytes) throw new StateError(`${what}: ${entry.name} has ${bytes.byteLength} bytes, the manifest says ${entry.bytes}`);
    if (createHash('sha256').update(bytes).digest('hex') !== entry.sha256) throw new StateError(`${what}: ${entry.name} is corrupt (SHA-256 differs from the manifest)`);
    files.set(entry.name, bytes);
  }
  const file = (name: string) => {
    const bytes = files.get(name);
    if (!bytes) throw new StateError(`${what}: ${name} is referenced but not listed in the manifest`);
    return bytes;
  };

  const recorded = manifest.embedder.settings;
  // An explicit directory replaces the pulled model's name (the fingerprint still has to match).
  const settings = options.embedderDir && recorded.kind !== 'hashed' ? ({ ...recorded, model: undefined, dir: options.embedderDir } as EmbedderSettings) : recorded;
  const embedder = await createEmbedder(settings, { modelsDir: options.modelsDir ?? DEFAULT_MODELS_DIR });
  if (embedder.fingerprint !== manifest.embedder.fingerprint) {
    embedder.dispose();
    throw new StateError(`${what}: this machine's embedder (${embedder.fingerprint}) differs from the snapshot's (${manifest.embedder.fingerprint}); routing would be meaningless`);
  }

  const loaded = new Map<string, ExpertModel>();
  const modelOf = (json: string, weights: string): ExpertModel => {
    const key = `${json}|${weights}`;
    if (!loaded.has(key)) loaded.set(key, deserializeModel(Buffer.from(file(json)).toString(), file(weights), `${what}/${json}`).model);
    return loaded.get(key)!;
  };
  const experts = manifest.experts.map((e) => ({ id: e.id, model: modelOf(e.files.json, e.files.weights) }));
  const fine = bytesToF32(file(manifest.centroids.file));
  if (fine.length !== manifest.centroids.fineIds.length * manifest.centroids.dim) throw new StateError(`${what}: ${manifest.centroids.file} does not hold ${manifest.centroids.fineIds.length} centers of dim ${manifest.centroids.dim}`);

  const ensemble = createEnsemble({
    experts,
    fine,
    fineExperts: Int32Array.from(manifest.centroids.fineToExpert),
    dim: manifest.centroids.dim,
    embedder,
    formula: options.formula ?? manifest.routing.formula,
  });
  return {
    manifest,
    ensemble,
    source: source.where,
    dispose() {
      ensemble.dispose();
      embedder.dispose();
      for (const m of loaded.values()) disposeModel(m);
    },
  };
}
