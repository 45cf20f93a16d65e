/**
 * Where captions route (`modestream route`): embeds them with the configured embedder and finds, per
 * caption, the nearest fine cluster of the newest centroid epoch, its expert, the squared L2 distance
 * (what routing minimises), and the next nearest fine clusters.
 *
 * Read-only: it opens the state directory read-only, so it is safe next to a running `modestream run`.
 * It refuses centers built with another embedder, as routing does: distances across spaces mean nothing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CentroidModel } from '../src/cluster/model.js';
import type { Config } from '../src/config.js';
import { createEmbedder } from '../src/embed/embedder.js';
import { ConfigError } from '../src/errors.js';
import { createCentroidStore } from '../state/centroids.js';
import { openStateEnv } from '../state/env.js';

/** The nearest fine cluster plus this many runners-up. */
const RUNNERS_UP = 2;

export interface FineHit {
  fine: number;
  expert: number;
  /** Squared L2 distance to the fine center, as routing computes it. */
  dist2: number;
}

export interface CaptionRoute extends FineHit {
  caption: string;
  epoch: number;
  next: FineHit[];
}

export async function routeCaptions(config: Config, captions: string[]): Promise<CaptionRoute[]> {
  const model = await readLatestEpoch(config.stateDir);
  const embedder = await createEmbedder(config.embedder, { modelsDir: config.modelsDir });
  try {
    if (embedder.fingerprint !== model.embedder) {
      throw new ConfigError(
        `centroid epoch ${model.epoch} in ${config.stateDir} was built with the embedder ${model.embedder}, ` +
          `but the configured one is ${embedder.fingerprint}: configure the embedder the epoch was built with, ` +
          'or run `modestream bootstrap` to recluster in the new space',
      );
    }
    const vectors = await embedder.embed(captions);
    return captions.map((caption, i) => routeOne(caption, vectors.subarray(i * embedder.dim, (i + 1) * embedder.dim), model));
  } finally {
    embedder.dispose();
  }
}

/** The newest epoch, copied out of LMDB; the environment is closed again before embedding starts. */
async function readLatestEpoch(stateDir: string): Promise<CentroidModel> {
  const noCenters = (why: string) =>
    new ConfigError(`no centroid epoch to route with: ${why} (run \`modestream run\` to sample captions, then \`modestream bootstrap\`; or set --state-dir)`);
  if (!existsSync(join(stateDir, 'lmdb'))) throw noCenters(`no modestream state in ${stateDir}`);
  const env = openStateEnv({ dir: stateDir, readOnly: true });
  try {
    const model = createCentroidStore({ env }).latest();
    if (!model) throw noCenters(`${stateDir} has no centers yet`);
    return model;
  } finally {
    await env.close();
  }
}

/** Distances to every fine center in float64; fine for the handful of captions a command line holds. */
export function routeOne(caption: string, v: Float32Array, model: CentroidModel): CaptionRoute {
  const { dim } = model;
  const m = model.fineIds.length;
  const hits: FineHit[] = [];
  for (let c = 0; c < m; c++) {
    let d = 0;
    for (let j = 0; j < dim; j++) {
      const diff = v[j]! - model.fine[c * dim + j]!;
      d += diff * diff;
    }
    hits.push({ fine: model.fineIds[c]!, expert: model.fineToExpert[c]!, dist2: d });
  }
  hits.sort((a, b) => a.dist2 - b.dist2);
  const [best, ...rest] = hits;
  return { caption, epoch: model.epoch, ...best!, next: rest.slice(0, RUNNERS_UP) };
}
