/**
 * Nearest-center search on the active tfjs backend. Squared L2 is expanded as
 * ||x||^2 - 2 x.c + ||c||^2 so that each batch of points costs one (fused) matMul against the resident,
 * pre-transposed centers. Pre-transposing matters: tfjs-backend-wasm runs matMul with transposeB
 * ~10x slower than on an explicitly transposed operand (measured 1.2 vs 17 GFLOP/s).
 * ||x||^2 is added in JS afterwards: argmin over centers does not need it.
 */
import * as tf from '@tensorflow/tfjs';
import { ClusteringError } from './errors.js';
import { rowCount, squaredNorms } from './vectors.js';

export interface NearestResult {
  /** Row index of the nearest center of each point. */
  index: Int32Array;
  /** Squared L2 distance to it (clamped at 0: the expansion can round slightly negative). */
  dist2: Float32Array;
}

export interface CandidateResult {
  /** Candidates per point. */
  count: number;
  /** n x count center rows, best first by dist2 + offset. */
  index: Int32Array;
  /** n x count raw squared distances (offsets not included). */
  dist2: Float32Array;
}

export interface CandidateQuery {
  /** How many centers to return per point (at most the number of centers). */
  count: number;
  /** Per-center additive cost used for ranking only (the balanced auction passes its prices). */
  offsets?: ArrayLike<number>;
}

export interface CenterSet {
  readonly count: number;
  readonly dim: number;
  /** The centers as given (not copied: callers must not mutate them while the set is in use). */
  readonly centers: Float32Array;
  assign(points: Float32Array): Promise<NearestResult>;
  candidates(points: Float32Array, query: CandidateQuery): Promise<CandidateResult>;
  /** Every squared distance, n x count row-major (clamped at 0); the caller owns the memory. */
  distances(points: Float32Array): Promise<Float32Array>;
  /** Frees the resident tensors; the set is unusable afterwards. */
  dispose(): void;
}

export interface CenterSetOptions {
  /** Row-major centers, count x dim. */
  centers: Float32Array;
  dim: number;
  /** Points per matMul; by default derived from memoryBudgetBytes. */
  batchSize?: number;
  /** Upper bound for the per-batch tensors (points batch + batch x centers scores). Default 64 MiB. */
  memoryBudgetBytes?: number;
}

const DEFAULT_BUDGET = 64 * 1024 * 1024;

/** Rows per batch so that the batch (rows x dim) plus its scores (rows x centers) fit the budget. */
export function batchRows(options: { dim: number; centers: number; extraPerRow?: number; budgetBytes?: number }): number {
  const perRow = 4 * (options.dim + options.centers + (options.extraPerRow ?? 0));
  return Math.max(1, Math.floor((options.budgetBytes ?? DEFAULT_BUDGET) / perRow));
}

/**
 * Keeps the centers on the backend for repeated queries (the router assigns every ~1000-point chunk
 * against the same centers).
 */
export function createNearestCenters(options: CenterSetOptions): CenterSet {
  const { centers, dim } = options;
  const k = rowCount(centers, dim, 'centers');
  if (k < 1) throw new ClusteringError('shape', 'centers: at least one center is needed');
  if (options.batchSize !== undefined && !(Number.isInteger(options.batchSize) && options.batchSize >= 1)) {
    throw new ClusteringError('parameter', `batchSize must be a positive integer, got ${options.batchSize}`);
  }
  const centerNorms = squaredNorms(centers, dim);
  // -2 C^T: the fused matMul then yields ||c||^2 - 2 x.c with the norms as bias in one kernel.
  const minus2T = tf.tidy(() => tf.transpose(tf.mul(tf.tensor2d(centers, [k, dim]), -2)));
  const normsT = tf.tensor1d(Float32Array.from(centerNorms));
  let plus2T: tf.Tensor | undefined;
  let disposed = false;

  const rowsFor = (extraPerRow: number): number =>
    options.batchSize ??
    batchRows({ dim, centers: k, extraPerRow, ...(options.memoryBudgetBytes ? { budgetBytes: options.memoryBudgetBytes } : {}) });

  const check = (points: Float32Array): number => {
    if (disposed) throw new ClusteringError('parameter', 'center set used after dispose()');
    return rowCount(points, dim, 'points');
  };

  return {
    count: k,
    dim,
    centers,

    async assign(points) {
      const n = check(points);
      const index = new Int32Array(n);
      const dist2 = new Float32Array(n);
      const pointNorms = squaredNorms(points, dim);
      const rows = rowsFor(0);
      for (let start = 0; start < n; start += rows) {
        const end = Math.min(n, start + rows);
        const [argmin, min] = tf.tidy(() => {
          const x = tf.tensor2d(points.subarray(start * dim, end * dim), [end - start, dim]);
          const partial = tf.fused.matMul({ a: x, b: minus2T, bias: normsT });
          return [tf.argMin(partial, 1), tf.min(partial, 1)] as const;
        });
        try {
          const [idx, val] = await Promise.all([argmin.data(), min.data()]);
          index.set(idx as Int32Array, start);
          for (let i = start; i < end; i++) dist2[i] = Math.max(0, pointNorms[i]! + val[i - start]!);
        } finally {
          argmin.dispose();
          min.dispose();
        }
      }
      return { index, dist2 };
    },

    async candidates(points, query) {
      const n = check(points);
      const count = query.count;
      if (!(Number.isInteger(count) && count >= 1 && count <= k)) {
        throw new ClusteringError('parameter', `candidate count must be an integer in [1, ${k}], got ${count}`);
      }
      if (query.offsets && query.offsets.length !== k) {
        throw new ClusteringError('shape', `offsets: expected ${k} values, got ${query.offsets.length}`);
      }
      plus2T ??= tf.tidy(() => tf.neg(minus2T));
      const offsets = query.offsets;
      // topk takes the largest, so rank by the negated cost 2 x.c - ||c||^2 - offset.
      const bias = tf.tidy(() => {
        const base = tf.neg(normsT);
        return offsets ? tf.sub(base, tf.tensor1d(Float32Array.from(offsets))) : base;
      });
      const index = new Int32Array(n * count);
      const dist2 = new Float32Array(n * count);
      const pointNorms = squaredNorms(points, dim);
      const rows = rowsFor(2 * count);
      try {
        for (let start = 0; start < n; start += rows) {
          const end = Math.min(n, start + rows);
          const { values, indices } = tf.tidy(() => {
            const x = tf.tensor2d(points.subarray(start * dim, end * dim), [end - start, dim]);
            const score = tf.fused.matMul({ a: x, b: plus2T!, bias });
            return tf.topk(score, count, true);
          });
          try {
            const [val, idx] = await Promise.all([values.data(), indices.data()]);
            index.set(idx as Int32Array, start * count);
            for (let i = start; i < end; i++) {
              const xn = pointNorms[i]!;
              for (let c = 0; c < count; c++) {
                const at = i * count + c;
                const local = (i - start) * count + c;
                const off = offsets ? offsets[idx[local]!]! : 0;
                dist2[at] = Math.max(0, xn - val[local]! - off);
              }
            }
          } finally {
            values.dispose();
            indices.dispose();
          }
        }
      } finally {
        bias.dispose();
      }
      return { count, index, dist2 };
    },

    async distances(points) {
      const n = check(points);
      const out = new Float32Array(n * k);
      const pointNorms = squaredNorms(points, dim);
      const rows = rowsFor(0);
      for (let start = 0; start < n; start += rows) {
        const end = Math.min(n, start + rows);
        const partial = tf.tidy(() => {
          const x = tf.tensor2d(points.subarray(start * dim, end * dim), [end - start, dim]);
          return tf.fused.matMul({ a: x, b: minus2T, bias: normsT });
        });
        try {
          const values = await partial.data();
          for (let i = start; i < end; i++) {
            const xn = pointNorms[i]!;
            const o = (i - start) * k;
            for (let j = 0; j < k; j++) out[i * k + j] = Math.max(0, xn + values[o + j]!);
          }
        } finally {
          partial.dispose();
        }
      }
      return out;
    },

    dispose() {
      if (disposed) return;
      disposed = true;
      minus2T.dispose();
      normsT.dispose();
      plus2T?.dispose();
    },
  };
}

/** One-off nearest-center assignment; uploads the centers, assigns, frees them. */
export async function nearestCenters(options: {
  points: Float32Array;
  dim: number;
  centers: Float32Array;
  batchSize?: number;
}): Promise<NearestResult> {
  const set = createNearestCenters({
    centers: options.centers,
    dim: options.dim,
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
  });
  try {
    return await set.assign(options.points);
  } finally {
    set.dispose();
  }
}
