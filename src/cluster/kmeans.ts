/**
 * Lloyd's k-means with squared L2, plain (nearest center) or balanced (capacitated auction, as the
 * official MoDE code) assignment.
 *
 * Spherical by default (`normalize: true`): points are L2-normalised and every updated center is
 * re-normalised. MoDE clusters L2-normalised SimCSE caption embeddings and routes by squared L2 to the
 * fine centers; on unit vectors ||x - c||^2 = 2 - 2 x.c, so keeping centers on the sphere makes the
 * clustering, the routing distance and the cosine used by the ensemble weights agree.
 *
 * Each iteration is one M step (means) followed by one E step (assignment), after an initial E step on
 * the seeds, so the returned assignment and inertia always belong to the returned centers (as
 * scikit-learn does). Deterministic for the same seed, input and tfjs backend.
 *
 * Degenerate input is refused with a ClusteringError whose `reason` says why: fewer points than k
 * ('too-few-points'), fewer distinct points than k ('too-few-distinct': from k-means++, or when an empty
 * cluster finds no point to re-seed at), a zero row when spherical ('zero-vector'), NaN/Infinity
 * ('non-finite'), ragged buffers ('shape'), bad k/iterations/tolerance ('parameter'). With explicit
 * seeds and balanced assignment, duplicate points may share clusters (balanced never leaves one empty).
 */
import { balancedAssign } from './balanced.js';
import { ClusteringError } from './errors.js';
import { createNearestCenters } from './nearest.js';
import { clusterSizes } from './metrics.js';
import { createRng } from './rng.js';
import { kmeansPlusPlus } from './seeding.js';
import { assertFinite, isRowNormalised, normaliseRowInPlace, normaliseRows, rowCount, rowDistance2 } from './vectors.js';

export type KMeansInit = 'k-means++' | Float32Array;
export type AssignmentKind = 'plain' | 'balanced';

export interface KMeansProgress {
  iteration: number;
  inertia: number;
  /** Points whose cluster changed in this iteration's E step. */
  changed: number;
  /** Mean L2 distance the centers moved in this iteration's M step. */
  meanShift: number;
  /** Empty clusters re-seeded at the farthest points in this M step. */
  reseeded: number;
}

export interface KMeansOptions {
  /** Row-major n x dim. */
  points: Float32Array;
  dim: number;
  k: number;
  seed: number;
  /** M+E steps after the seeding (0 = assign to the seeds only). */
  maxIterations: number;
  /** Stop when the relative inertia change of an iteration is at most this (or nothing moved). */
  tolerance: number;
  /** Default 'k-means++'. Explicit centers are k x dim and are copied (normalised when spherical). */
  init?: KMeansInit;
  /** Default 'plain'. */
  assignment?: AssignmentKind;
  /** Balanced only: clusters may exceed n/k by this fraction (capacity ceil(n/k * (1 + t))). Default 0. */
  balanceTolerance?: number;
  /** Default true: spherical k-means on L2-normalised points (see the module comment). */
  normalize?: boolean;
  /** k-means++ seeds from a uniform sample of this many points; default min(n, max(10 000, 20 k)). */
  initSampleSize?: number;
  onIteration?: (progress: KMeansProgress) => void;
}

export interface KMeansResult {
  /** k x dim; unit rows when spherical. */
  centers: Float32Array;
  /** Cluster of each point (balanced or nearest, as requested). */
  assignment: Int32Array;
  /** Squared distance of each point to its cluster's center. */
  dist2: Float32Array;
  sizes: Int32Array;
  /** Sum of dist2. */
  inertia: number;
  /** M steps run. */
  iterations: number;
  converged: boolean;
}

export async function kmeans(options: KMeansOptions): Promise<KMeansResult> {
  const { dim, k, maxIterations, tolerance } = options;
  const n = rowCount(options.points, dim, 'points');
  checkParameters(options);
  if (n < k) throw new ClusteringError('too-few-points', `k-means into k=${k} clusters needs at least ${k} points, got ${n}`);
  assertFinite(options.points, dim, 'points');
  const spherical = options.normalize ?? true;
  const points = spherical && !isRowNormalised(options.points, dim) ? normaliseRows(options.points, dim, 'points') : options.points;
  const rng = createRng(options.seed);

  let centers = await initialCenters(options, points, spherical, rng);
  const balanced = (options.assignment ?? 'plain') === 'balanced';
  let prices: Float64Array | undefined;

  const assign = async (at: Float32Array): Promise<{ index: Int32Array; dist2: Float32Array }> => {
    const set = createNearestCenters({ centers: at, dim });
    try {
      if (!balanced) return await set.assign(points);
      const result = await balancedAssign({
        points,
        dim,
        centers: set,
        tolerance: options.balanceTolerance ?? 0,
        ...(prices ? { initialPrices: prices } : {}),
      });
      prices = result.prices;
      return result;
    } finally {
      set.dispose();
    }
  };

  let current = await assign(centers);
  let inertia = sum(current.dist2);
  let iterations = 0;
  let converged = false;
  while (iterations < maxIterations && !converged) {
    const update = updateCenters({ points, dim, k, assignment: current.index, dist2: current.dist2, previous: centers, spherical });
    iterations++;
    const next = await assign(update.centers);
    let changed = 0;
    for (let i = 0; i < n; i++) if (next.index[i] !== current.index[i]) changed++;
    const nextInertia = sum(next.dist2);
    converged = changed === 0 || Math.abs(inertia - nextInertia) <= tolerance * Math.max(inertia, Number.MIN_VALUE);
    centers = update.centers;
    current = next;
    inertia = nextInertia;
    options.onIteration?.({ iteration: iterations, inertia, changed, meanShift: update.meanShift, reseeded: update.reseeded });
  }
  // Converged also when no iteration was asked for but the seeds already explain the data exactly.
  if (maxIterations === 0) converged = inertia === 0;
  return { centers, assignment: current.index, dist2: current.dist2, sizes: clusterSizes(current.index, k), inertia, iterations, converged };
}

function checkParameters(options: KMeansOptions): void {
  const { k, maxIterations, tolerance, seed } = options;
  const bad = (what: string): never => {
    throw new ClusteringError('parameter', what);
  };
  if (!(Number.isInteger(k) && k >= 1)) bad(`k must be a positive integer, got ${k}`);
  if (!(Number.isInteger(maxIterations) && maxIterations >= 0)) bad(`maxIterations must be a non-negative integer, got ${maxIterations}`);
  if (!(tolerance >= 0)) bad(`tolerance must be >= 0, got ${tolerance}`);
  if (!Number.isInteger(seed)) bad(`seed must be an integer, got ${seed}`);
  if (options.balanceTolerance !== undefined && !(options.balanceTolerance >= 0)) bad(`balanceTolerance must be >= 0, got ${options.balanceTolerance}`);
}

async function initialCenters(options: KMeansOptions, points: Float32Array, spherical: boolean, rng: ReturnType<typeof createRng>): Promise<Float32Array> {
  const { dim, k } = options;
  const init = options.init ?? 'k-means++';
  if (init === 'k-means++') {
    return kmeansPlusPlus({ points, dim, k, rng, ...(options.initSampleSize ? { sampleSize: options.initSampleSize } : {}) });
  }
  if (rowCount(init, dim, 'init') !== k) throw new ClusteringError('shape', `init: expected ${k} centers of dim ${dim}, got ${init.length / dim}`);
  assertFinite(init, dim, 'init');
  return spherical ? normaliseRows(init, dim, 'init') : init.slice();
}

/**
 * M step: each center becomes the mean of its points (re-normalised when spherical). Clusters left
 * empty (or, on the sphere, whose points cancel out) are re-seeded at the points farthest from their
 * centers, one distinct point each, so k stays k.
 */
export function updateCenters(options: {
  points: Float32Array;
  dim: number;
  k: number;
  assignment: Int32Array;
  dist2: Float32Array;
  previous: Float32Array;
  spherical: boolean;
}): { centers: Float32Array; meanShift: number; reseeded: number } {
  const { points, dim, k, assignment, dist2, previous, spherical } = options;
  const n = assignment.length;
  const sums = new Float64Array(k * dim);
  const counts = new Int32Array(k);
  for (let i = 0; i < n; i++) {
    const c = assignment[i]!;
    counts[c]!++;
    const o = i * dim;
    const base = c * dim;
    for (let j = 0; j < dim; j++) sums[base + j]! += points[o + j]!;
  }
  const empty: number[] = [];
  for (let c = 0; c < k; c++) {
    const count = counts[c]!;
    if (count === 0) {
      empty.push(c);
      continue;
    }
    const base = c * dim;
    for (let j = 0; j < dim; j++) sums[base + j] = sums[base + j]! / count;
    if (spherical && !normaliseRowInPlace(sums, dim, c)) empty.push(c);
  }
  const centers = Float32Array.from(sums);
  if (empty.length > 0) reseed({ points, dim, centers, empty, dist2, assignment, previous });
  let shift = 0;
  for (let c = 0; c < k; c++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += (centers[c * dim + j]! - previous[c * dim + j]!) ** 2;
    shift += Math.sqrt(s);
  }
  return { centers, meanShift: shift / k, reseeded: empty.length };
}

function reseed(options: {
  points: Float32Array;
  dim: number;
  centers: Float32Array;
  empty: number[];
  dist2: Float32Array;
  assignment: Int32Array;
  previous: Float32Array;
}): void {
  const { points, dim, centers, empty, dist2, assignment, previous } = options;
  // Farthest first; ties by index keep it deterministic.
  const order = Array.from(dist2.keys()).sort((a, b) => dist2[b]! - dist2[a]! || a - b);
  const used: number[] = [];
  for (const p of order) {
    if (used.length === empty.length) break;
    // dist2 comes from the matMul expansion (~1e-7 of rounding): confirm exactly that p is not a
    // copy of its own center or of a point already used.
    if (!(rowDistance2(points, p, previous, assignment[p]!, dim) > 0)) continue;
    if (used.some((q) => !(rowDistance2(points, p, points, q, dim) > 0))) continue;
    used.push(p);
  }
  if (used.length < empty.length) {
    throw new ClusteringError(
      'too-few-distinct',
      `${empty.length} clusters are empty and only ${used.length} points lie away from their centers: the data has fewer distinct points than k`,
    );
  }
  for (let e = 0; e < empty.length; e++) centers.set(points.subarray(used[e]! * dim, (used[e]! + 1) * dim), empty[e]! * dim);
}

function sum(values: Float32Array): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}
