/**
 * The core every process opens from its Config: tensor backend, LMDB stores and caption embedder.
 * `run` wires it into the roles; one-shot commands (bootstrap, train, snapshot) and training jobs use it
 * alone. Kept apart from run.ts so that modules run.ts starts (the roles, training/) can name it without
 * an import cycle.
 */
import { noveltyThresholds } from '../src/cluster/novelty.js';
import type { Config } from '../src/config.js';
import { createEmbedder } from '../src/embed/embedder.js';
import type { CaptionEmbedder } from '../src/embed/embedder.js';
import type { Logger } from '../src/logger.js';
import { initBackend, type BackendInfo } from '../src/tensor/backend.js';
import { createCentroidStore, type CentroidStore } from '../state/centroids.js';
import { openStateEnv, type StateEnv } from '../state/env.js';
import { createModelStore, type ModelStore } from '../state/models.js';
import { createSeedSample, type SeedSample } from '../state/seed-sample.js';
import { createShardStore, type ShardStore } from '../state/shards.js';

/** Everything built from the config that both `run` and one-shot commands (bootstrap, status) need. */
export interface Core {
  env: StateEnv;
  store: ShardStore;
  centroids: CentroidStore;
  models: ModelStore;
  /** The seed's cluster-wide training sample (filled on trainer nodes from the sample topic). */
  seedSample: SeedSample;
  embedder: CaptionEmbedder;
  backend: BackendInfo;
  close(): Promise<void>;
}

export async function openCore(config: Config, logger: Logger): Promise<Core> {
  const backend = await initBackend(config.backend, logger);
  const env = openStateEnv({ dir: config.stateDir });
  const centroids = createCentroidStore({ env });
  const store = createShardStore({
    env,
    reservoirSize: config.clustering.sample,
    reservoirSeed: config.clustering.seed,
    noveltyThreshold: config.controller.drift.enabled ? noveltyThresholds(() => centroids.latest(), config.controller.drift) : undefined,
  });
  const models = createModelStore({ env });
  const seedSample = createSeedSample(env, { size: config.controller.seedSample.size, seed: config.clustering.seed });
  const embedder = await createEmbedder(config.embedder, { modelsDir: config.modelsDir });
  return {
    env,
    store,
    centroids,
    models,
    seedSample,
    embedder,
    backend,
    async close() {
      embedder.dispose();
      await env.close();
    },
  };
}
