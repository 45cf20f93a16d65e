/**
 * MoDE's clustering (ARCHITECTURE.md section 2): fine k-means of the caption embeddings into m centers, then
 * coarse k-means of the m fine centers into n experts; each fine center belongs to the expert of its
 * nearest coarse center. The one-stage ablation clusters the points straight into n.
 */
import type { ClusteringSettings } from '../config.js';
import { ClusteringError } from './errors.js';
import { kmeans, type KMeansProgress } from './kmeans.js';
import { clusterSizes } from './metrics.js';
import { spreadOf, type CentroidModel, type ClusterSpread } from './model.js';
import { nearestCenters } from './nearest.js';
import { balancedAssign } from './balanced.js';
import { assertFinite, isRowNormalised, normaliseRows, rowCount, rowDistance2 } from './vectors.js';

export type ClusteringStage = 'fine' | 'coarse' | 'one-stage';

export type ClusteringOptions = Pick<ClusteringSettings, 'fine' | 'experts' | 'balanced' | 'seed' | 'maxIterations' | 'tolerance'> & {
  /** The sample D', row-major; L2-normalised here if it is not already (spherical k-means). */
  points: Float32Array;
  dim: number;
  /** Balanced runs: allowed excess over n/k per cluster. Default 0. */
  balanceTolerance?: number;
  /**
   * How fine centers join experts. 'nearest' (ARCHITECTURE.md section 2, the paper) or 'balanced' (the official
   * code's `predict`, which runs the auction again: n experts of m/n fine centers each). Default 'nearest'.
   */
  expertAssignment?: 'nearest' | 'balanced';
  onIteration?: (stage: ClusteringStage, progress: KMeansProgress) => void;
};

export type OneStageOptions = Omit<ClusteringOptions, 'fine' | 'expertAssignment'>;

export interface ClusteringResult {
  dim: number;
  /** m x dim unit rows. */
  fineCenters: Float32Array;
  /** n x dim unit rows (one-stage: the same rows as fineCenters). */
  coarseCenters: Float32Array;
  /** Expert (coarse row) of each fine row. */
  fineToExpert: Int32Array;
  /** Sample points routed (nearest fine center, as the router does) to each fine center. */
  fineSizes: Int32Array;
  /** Sample points per expert under that routing. */
  expertSizes: Int32Array;
  /** Routing inertia: sum over the sample of the squared distance to the nearest fine center. */
  inertia: number;
  fineSpread: ClusterSpread;
  expertSpread: ClusterSpread;
  sampleSize: number;
  balanced: boolean;
  oneStage: boolean;
  /** The fine (or one-stage) k-means run itself: its objective (balanced or plain), iterations. */
  fit: { inertia: number; iterations: number; converged: boolean };
}

export async function twoStageClustering(options: ClusteringOptions): Promise<ClusteringResult> {
  const { dim, fine: m, experts: n } = options;
  if (n > m) throw new ClusteringError('parameter', `experts (${n}) cannot exceed fine clusters (${m})`);
  const points = unitRows(options.points, dim);
  const fineFit = await kmeans({
    ...commonKMeans(options),
    points,
    k: m,
    onIteration: (p) => options.onIteration?.('fine', p),
  });
  // Coarse stage on the centers themselves, as the official code does (unweighted by cluster size).
  const coarseFit = await kmeans({
    ...commonKMeans(options),
    points: fineFit.centers,
    k: n,
    seed: options.seed + 1,
    onIteration: (p) => options.onIteration?.('coarse', p),
  });
  const fineToExpert =
    (options.expertAssignment ?? 'nearest') === 'balanced'
      ? (await balancedAssign({ points: fineFit.centers, dim, centers: coarseFit.centers })).index
      : ensureEveryExpert({ fine: fineFit.centers, coarse: coarseFit.centers, dim, fineToExpert: (await nearestCenters({ points: fineFit.centers, dim, centers: coarseFit.centers })).index });
  return summarise({ points, dim, fine: fineFit.centers, coarse: coarseFit.centers, fineToExpert, fit: fineFit, balanced: options.balanced, oneStage: false });
}

/** The ablation: points straight into n clusters; each expert is one cluster, fine == coarse. */
export async function oneStageClustering(options: OneStageOptions): Promise<ClusteringResult> {
  const { dim, experts: n } = options;
  const points = unitRows(options.points, dim);
  const fit = await kmeans({ ...commonKMeans(options), points, k: n, onIteration: (p) => options.onIteration?.('one-stage', p) });
  const identity = Int32Array.from({ length: n }, (_, i) => i);
  return summarise({ points, dim, fine: fit.centers, coarse: fit.centers.slice(), fineToExpert: identity, fit, balanced: options.balanced, oneStage: true });
}

/** The sample on the unit sphere (a copy only when needed), so routing stats see what k-means saw. */
function unitRows(points: Float32Array, dim: number): Float32Array {
  rowCount(points, dim, 'points');
  assertFinite(points, dim, 'points');
  return isRowNormalised(points, dim) ? points : normaliseRows(points, dim, 'points');
}

function commonKMeans(options: OneStageOptions): { dim: number; seed: number; maxIterations: number; tolerance: number; assignment: 'plain' | 'balanced'; balanceTolerance: number } {
  return {
    dim: options.dim,
    seed: options.seed,
    maxIterations: options.maxIterations,
    tolerance: options.tolerance,
    assignment: options.balanced ? 'balanced' : 'plain',
    balanceTolerance: options.balanceTolerance ?? 0,
  };
}

/**
 * Nearest-coarse assignment can leave an expert without fine centers (its coarse center won its
 * members only under the balanced assignment). An expert with no data is useless, so each empty expert
 * takes the fine center closest to it among experts that have more than one.
 */
export function ensureEveryExpert(options: { fine: Float32Array; coarse: Float32Array; dim: number; fineToExpert: Int32Array }): Int32Array {
  const { fine, coarse, dim } = options;
  const fineToExpert = options.fineToExpert.slice();
  const n = coarse.length / dim;
  const members = clusterSizes(fineToExpert, n);
  for (let e = 0; e < n; e++) {
    if (members[e]! > 0) continue;
    let bestRow = -1;
    let bestD = Infinity;
    for (let r = 0; r < fineToExpert.length; r++) {
      if (members[fineToExpert[r]!]! < 2) continue;
      const d = rowDistance2(fine, r, coarse, e, dim);
      if (d < bestD) {
        bestD = d;
        bestRow = r;
      }
    }
    if (bestRow < 0) break; // Only when experts > fine centers, refused earlier.
    members[fineToExpert[bestRow]!]!--;
    fineToExpert[bestRow] = e;
    members[e] = 1;
  }
  return fineToExpert;
}

async function summarise(options: {
  points: Float32Array;
  dim: number;
  fine: Float32Array;
  coarse: Float32Array;
  fineToExpert: Int32Array;
  fit: { inertia: number; iterations: number; converged: boolean };
  balanced: boolean;
  oneStage: boolean;
}): Promise<ClusteringResult> {
  const { points, dim, fine, coarse, fineToExpert } = options;
  const m = rowCount(fine, dim, 'fine');
  const n = rowCount(coarse, dim, 'coarse');
  // Routing is nearest-center even after balanced fitting: measure what the router will actually do.
  const routed = await nearestCenters({ points, dim, centers: fine });
  const fineSizes = clusterSizes(routed.index, m);
  const expertSizes = new Int32Array(n);
  for (let r = 0; r < m; r++) expertSizes[fineToExpert[r]!]! += fineSizes[r]!;
  let inertia = 0;
  for (const d of routed.dist2) inertia += d;
  return {
    dim,
    fineCenters: fine,
    coarseCenters: coarse,
    fineToExpert,
    fineSizes,
    expertSizes,
    inertia,
    fineSpread: spreadOf(fineSizes),
    expertSpread: spreadOf(expertSizes),
    sampleSize: points.length / dim,
    balanced: options.balanced,
    oneStage: options.oneStage,
    fit: { inertia: options.fit.inertia, iterations: options.fit.iterations, converged: options.fit.converged },
  };
}

/**
 * The routing model of a fresh clustering: fine ids 0..m-1, experts 0..n-1, counts = routed sample
 * sizes (online refinement continues the bootstrap's running means at learning rate 1/count).
 */
export function buildCentroidModel(options: {
  clustering: ClusteringResult;
  epoch: number;
  embedder: string;
  createdAt?: number;
  /** Id of the first fine center (a recluster continues after the previous ids: never reused). */
  firstFineId?: number;
  /** Expert id of each coarse row (default 0..n-1). */
  expertIds?: Int32Array;
}): CentroidModel {
  const { clustering: c, firstFineId = 0 } = options;
  const m = c.fineToExpert.length;
  const n = c.coarseCenters.length / c.dim;
  const expertIds = options.expertIds ?? Int32Array.from({ length: n }, (_, i) => i);
  return {
    epoch: options.epoch,
    dim: c.dim,
    fine: c.fineCenters,
    fineIds: Int32Array.from({ length: m }, (_, i) => firstFineId + i),
    fineToExpert: Int32Array.from(c.fineToExpert, (row) => expertIds[row]!),
    coarse: c.coarseCenters,
    experts: expertIds,
    counts: Float64Array.from(c.fineSizes),
    createdAt: options.createdAt ?? Date.now(),
    refinedThrough: {},
    origins: {},
    embedder: options.embedder,
    stats: {
      sampleSize: c.sampleSize,
      inertia: c.inertia,
      balanced: c.balanced,
      oneStage: c.oneStage,
      fineSpread: c.fineSpread,
      expertSpread: c.expertSpread,
    },
  };
}
