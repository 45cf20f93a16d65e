/**
 * From a sample of caption embeddings to a publishable centroid epoch. A recluster (epoch > 1) keeps
 * identities stable: fine ids continue after the previous epoch's (never reused), and each new expert
 * takes the id of the most similar previous expert that is still free (greedy on coarse-center cosine),
 * so a shard keeps meaning roughly the same data; experts beyond the previous count get new ids.
 */
import type { ClusteringSettings } from '../config.js';
import { ClusteringError } from './errors.js';
import type { CentroidModel } from './model.js';
import { nearestCenters } from './nearest.js';
import { clusterRadii } from './novelty.js';
import { buildCentroidModel, oneStageClustering, twoStageClustering } from './two-stage.js';

export interface ClusterSampleOptions {
  sample: readonly Float32Array[];
  epoch: number;
  settings: ClusteringSettings;
  /** Fingerprint of the embedder that produced the sample. */
  embedder: string;
  previous?: CentroidModel;
  now?: number;
}

export async function clusterSample({ sample, epoch, settings, embedder, previous, now = Date.now() }: ClusterSampleOptions): Promise<CentroidModel> {
  const dim = sample[0]?.length ?? 0;
  if (dim === 0) throw new ClusteringError('too-few-points', 'cannot bootstrap centers from an empty sample');
  const points = new Float32Array(sample.length * dim);
  sample.forEach((row, i) => {
    if (row.length !== dim) throw new ClusteringError('shape', `sample row ${i} has dim ${row.length}, expected ${dim}`);
    points.set(row, i * dim);
  });
  const options = { ...settings, points, dim };
  const clustering = settings.oneStage ? await oneStageClustering(options) : await twoStageClustering(options);
  return buildCentroidModel({
    clustering,
    epoch,
    embedder,
    createdAt: now,
    firstFineId: previous ? Math.max(...previous.fineIds) + 1 : 0,
    expertIds: previous ? matchExperts(clustering.coarseCenters, previous, dim, settings.experts) : undefined,
  });
}

/**
 * The model with a novelty radius per fine cluster (src/cluster/novelty.ts), measured on `sample` (the
 * caption embeddings it was clustered from) routed as the router routes: nearest fine center.
 */
export async function withRadii(model: CentroidModel, sample: readonly Float32Array[], settings: { radiusQuantile: number; minRadiusMembers: number }): Promise<CentroidModel> {
  const { dim } = model;
  const points = new Float32Array(sample.length * dim);
  sample.forEach((row, i) => points.set(row, i * dim));
  const routed = await nearestCenters({ points, dim, centers: model.fine });
  const { radii } = clusterRadii({
    rows: routed.index,
    distances: Float32Array.from(routed.dist2, Math.sqrt),
    count: model.fineIds.length,
    quantile: settings.radiusQuantile,
    minMembers: settings.minRadiusMembers,
  });
  return { ...model, radii };
}

/** Greedy matching of new coarse centers to previous experts by cosine, best pairs first. */
function matchExperts(coarse: Float32Array, previous: CentroidModel, dim: number, n: number): Int32Array {
  const pairs: { row: number; prev: number; sim: number }[] = [];
  for (let row = 0; row < n; row++) {
    for (let p = 0; p < previous.experts.length; p++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += coarse[row * dim + d]! * previous.coarse[p * dim + d]!;
      pairs.push({ row, prev: p, sim: dot });
    }
  }
  pairs.sort((a, b) => b.sim - a.sim);
  const ids = new Int32Array(n).fill(-1);
  const taken = new Set<number>();
  for (const { row, prev } of pairs) {
    if (ids[row] !== -1 || taken.has(prev)) continue;
    ids[row] = previous.experts[prev]!;
    taken.add(prev);
  }
  let next = Math.max(...previous.experts) + 1;
  for (let row = 0; row < n; row++) if (ids[row] === -1) ids[row] = next++;
  return ids;
}
