/**
 * Building an ensemble snapshot from what the state directory holds now: the newest centroid epoch, the
 * seed, and each expert's newest version (an expert not trained yet serves with the seed, from which it
 * would branch), then publishing it atomically as the next version.
 */
import { snapshotsDirOf, type Config } from '../src/config.js';
import { EnvironmentError } from '../src/errors.js';
import { CODE_TEMPERATURE, PAPER_LAMBDA } from '../src/ensemble/weights.js';
import { CENTROIDS_FILE, SNAPSHOT_FORMAT, modelFiles, type SnapshotManifest } from '../src/snapshot/manifest.js';
import type { Files } from '../state/artifacts.js';
import { expertName, SEED, type ModelVersion } from '../state/models.js';
import { createSnapshotStore } from '../state/snapshots.js';
import type { Core } from '../app/core.js';

// One publication at a time per snapshot directory in this process: the trainer's and the assembler's
// (app/snapshot-assembler.ts) would otherwise take the same next version, and one's pruning would remove
// the other's half-written temporary directory.
const publishing = new Map<string, Promise<unknown>>();

export function publishSnapshot(deps: { config: Config; core: Core }): Promise<SnapshotManifest> {
  const dir = snapshotsDirOf(deps.config);
  const next = (publishing.get(dir) ?? Promise.resolve()).catch(() => undefined).then(() => publishNow(deps));
  publishing.set(dir, next);
  const forget = () => publishing.get(dir) === next && publishing.delete(dir);
  next.then(forget, forget);
  return next;
}

async function publishNow({ config, core }: { config: Config; core: Core }): Promise<SnapshotManifest> {
  const { centroids, models, embedder } = core;
  const model = centroids.latest();
  if (!model) throw new EnvironmentError('nothing to snapshot: no centroid epoch yet (the stream has not bootstrapped)');
  const seed = models.latest(SEED);
  if (!seed) throw new EnvironmentError('nothing to snapshot: no seed model yet (modestream train --seed)');
  const store = createSnapshotStore({ dir: snapshotsDirOf(config), keep: config.snapshots.keep });

  const files: Files = {};
  const addModel = async (name: string, version: ModelVersion) => {
    const names = modelFiles(`${name}-v${version.version}`);
    if (!files[names.json]) {
      const { modelJson, weights } = await models.readVersion(name, version.version);
      files[names.json] = modelJson;
      files[names.weights] = weights;
    }
    return {
      version: version.version,
      files: names,
      trainedAt: new Date(version.createdAt).toISOString(),
      steps: version.steps,
      loss: version.loss,
      records: version.records,
      backend: version.backend,
    };
  };

  files[CENTROIDS_FILE] = Buffer.from(model.fine.buffer, model.fine.byteOffset, model.fine.byteLength);
  const seedRef = await addModel(SEED, seed);
  const experts = [];
  for (const id of model.experts) {
    const own = models.latest(expertName(id));
    const ref = own ? await addModel(expertName(id), own) : seedRef;
    experts.push({ ...ref, id, fineClusters: model.fineToExpert.filter((e) => e === id).length });
  }

  const manifest: Omit<SnapshotManifest, 'files'> = {
    format: SNAPSHOT_FORMAT,
    formatVersion: 1,
    version: await store.nextVersion(),
    createdAt: new Date().toISOString(),
    embedder: { settings: config.embedder, fingerprint: embedder.fingerprint, dim: embedder.dim },
    centroids: { epoch: model.epoch, dim: model.dim, file: CENTROIDS_FILE, fineIds: Array.from(model.fineIds), fineToExpert: Array.from(model.fineToExpert) },
    routing: { formula: config.snapshots.formula, constants: { codeTemperature: CODE_TEMPERATURE, paperLambda: PAPER_LAMBDA } },
    seed: seedRef,
    experts,
  };
  return store.publish(manifest, files);
}
