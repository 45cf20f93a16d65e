/**
 * From a sample of caption embeddings to a publishable centroid epoch. A recluster (epoch > 1) keeps
 * identities stable: fine ids continue after the previous epoch's (never reused), and each new expert
 * takes the id of the most similar previous expert that is still free (greedy on coarse-center cosine),
 * so a shard keeps meaning roughly the same data; experts beyond the previous count get new ids.
 */
import type { ClusteringSettings, ControllerSettings } from '../config.js';
import { ClusteringError } from './errors.js';
import { kmeans } from './kmeans.js';
import type { CentroidModel } from './model.js';
import { nearestCenters } from './nearest.js';
import { clusterRadii, judgeClusters, quantile } from './novelty.js';
import { createRng } from './rng.js';
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

type NoveltySettings = Pick<ControllerSettings['drift'], 'radiusQuantile' | 'minRadiusMembers' | 'radiusMargin' | 'bufferSize' | 'newClusters' | 'minClusterSize' | 'ratioFactor'>;

/**
 * The model with a novelty radius per fine cluster (src/cluster/novelty.ts), measured on `sample` (the
 * caption embeddings it was clustered from) routed as the router routes: nearest fine center; and the
 * buffer ratio threshold calibrated on the same sample (`calibrateMaxRatio`) when its tail is big enough.
 */
export async function withRadii(model: CentroidModel, sample: readonly Float32Array[], settings: NoveltySettings): Promise<CentroidModel> {
  const { dim } = model;
  const points = new Float32Array(sample.length * dim);
  sample.forEach((row, i) => points.set(row, i * dim));
  const routed = await nearestCenters({ points, dim, centers: model.fine });
  const distances = Float32Array.from(routed.dist2, Math.sqrt);
  const { radii } = clusterRadii({ rows: routed.index, distances, count: model.fineIds.length, quantile: settings.radiusQuantile, minMembers: settings.minRadiusMembers });
  const tail = [...distances.keys()].filter((i) => distances[i]! > radii[routed.index[i]!]! * settings.radiusMargin);
  const maxRatio = await calibrateMaxRatio({ points, tail, fine: model.fine, dim, settings, seed: model.epoch });
  const { maxRatio: _previous, ...rest } = model;
  return { ...rest, radii, ...(maxRatio !== undefined ? { maxRatio } : {}) };
}

/**
 * Buffers judged per calibration: ~200 cluster ratios, so that their 5th percentile is stable (with 10,
 * the threshold of one setting varied 0.914-0.944 between runs); ms each.
 */
const CALIBRATION_BUFFERS = 30;

/**
 * The buffer ratio threshold for one model: `ratioFactor` x the 5th percentile of the ratios of the
 * clusters of buffers drawn from the sample's own tail (its candidates, rows `tail` of `points`), judged
 * as the controller judges a stationary buffer. Why: the ratio's scale follows how finely the centers
 * cut the space (MiniLM, Fashion-MNIST feed, after online refinement: stationary tails >= 0.93 with 256
 * fine centers, >= 1.07 with 1024; a new family's low clusters 0.83 / 0.95), so no one constant fits
 * both. Undefined when the tail holds less than one buffer (small samples: the per-space default applies).
 */
export async function calibrateMaxRatio({ points, tail, fine, dim, settings, seed }: { points: Float32Array; tail: readonly number[]; fine: Float32Array; dim: number; settings: NoveltySettings; seed: number }): Promise<number | undefined> {
  const size = settings.bufferSize;
  const k = Math.min(settings.newClusters, Math.floor(size / settings.minClusterSize));
  if (tail.length < size || k < 1) return undefined;
  const rng = createRng(seed);
  const ratios: number[] = [];
  for (let b = 0; b < CALIBRATION_BUFFERS; b++) {
    const pick = [...tail];
    for (let i = 0; i < size; i++) {
      const j = i + rng.nextInt(pick.length - i);
      [pick[i], pick[j]] = [pick[j]!, pick[i]!];
    }
    const buffer = new Float32Array(size * dim);
    pick.slice(0, size).forEach((r, i) => buffer.set(points.subarray(r * dim, (r + 1) * dim), i * dim));
    const fit = await kmeans({ points: buffer, dim, k, seed: seed + b, maxIterations: 20, tolerance: 1e-4 });
    const judged = judgeClusters({ points: buffer, dim, centers: fit.centers, assignment: fit.assignment, fine, minSize: settings.minClusterSize, maxRatio: 0, radiusQuantile: settings.radiusQuantile });
    for (const j of judged) if (j.size >= settings.minClusterSize && Number.isFinite(j.ratio)) ratios.push(j.ratio);
  }
  return ratios.length > 0 ? quantile(ratios, 0.05) * settings.ratioFactor : undefined;
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
