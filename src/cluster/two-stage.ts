/**
 * MoDE's clustering (DESIGN.md section 2): fine k-means on the caption embeddings (m centers), coarse
 * balanced k-means on the fine centers (n experts), each fine center to its nearest coarse center.
 * The one-stage ablation clusters the data straight into n (fine == coarse, one fine cluster per expert).
 */
import { spreadOf, type ClusterSpread } from './model.js';
import { kmeans } from './kmeans.js';
import { nearestCenters } from './nearest.js';

export interface ClusteringOptions {
  /** Row-major count x dim caption embeddings. */
  points: Float32Array;
  dim: number;
  /** m */
  fine: number;
  /** n */
  experts: number;
  /** Balanced (auction) assignment for the fine clustering, as the official MoDE code. */
  balanced: boolean;
  seed: number;
  maxIterations: number;
  tolerance: number;
}

export interface ClusteringResult {
  fineCenters: Float32Array;
  coarseCenters: Float32Array;
  /** Coarse row (expert index) of each fine row. */
  fineToExpert: Int32Array;
  /** Points of the sample per fine cluster and per expert. */
  fineSizes: Int32Array;
  expertSizes: Int32Array;
  /** Sum of squared distances of the points to their fine centers. */
  inertia: number;
  fineSpread: ClusterSpread;
  expertSpread: ClusterSpread;
}

export async function twoStageClustering(o: ClusteringOptions): Promise<ClusteringResult> {
  const fine = await kmeans({
    points: o.points,
    dim: o.dim,
    k: o.fine,
    seed: o.seed,
    maxIterations: o.maxIterations,
    tolerance: o.tolerance,
    assignment: o.balanced ? 'balanced' : 'plain',
  });
  // Coarse: the experts are clusters of fine centers, balanced so no expert gets most of them.
  const coarse = await kmeans({
    points: fine.centers,
    dim: o.dim,
    k: o.experts,
    seed: o.seed + 1,
    maxIterations: o.maxIterations,
    tolerance: o.tolerance,
    assignment: 'balanced',
  });
  // Step 2 of the paper: each fine center maps to its nearest coarse center (not the balanced label).
  const { index: fineToExpert } = await nearestCenters({ points: fine.centers, dim: o.dim, centers: coarse.centers });
  const expertSizes = new Int32Array(o.experts);
  fine.sizes.forEach((size, f) => (expertSizes[fineToExpert[f]!]! += size));
  return {
    fineCenters: fine.centers,
    coarseCenters: coarse.centers,
    fineToExpert,
    fineSizes: fine.sizes,
    expertSizes,
    inertia: fine.inertia,
    fineSpread: spreadOf(fine.sizes),
    expertSpread: spreadOf(expertSizes),
  };
}

export async function oneStageClustering(o: ClusteringOptions): Promise<ClusteringResult> {
  const result = await kmeans({
    points: o.points,
    dim: o.dim,
    k: o.experts,
    seed: o.seed,
    maxIterations: o.maxIterations,
    tolerance: o.tolerance,
    assignment: o.balanced ? 'balanced' : 'plain',
  });
  const spread = spreadOf(result.sizes);
  return {
    fineCenters: result.centers,
    coarseCenters: result.centers.slice(),
    fineToExpert: Int32Array.from({ length: o.experts }, (_, i) => i),
    fineSizes: result.sizes,
    expertSizes: result.sizes.slice(),
    inertia: result.inertia,
    fineSpread: spread,
    expertSpread: spread,
  };
}
