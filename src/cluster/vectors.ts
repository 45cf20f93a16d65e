/**
 * Row-major float32 matrices as the clustering core passes them around (n rows of `dim` floats), and the
 * checks every entry point runs before any tensor work, so that bad input fails with a typed error
 * instead of NaN centers.
 */
import { ClusteringError } from './errors.js';

/** Number of rows; throws when the buffer is not a whole number of rows. */
export function rowCount(values: Float32Array, dim: number, what: string): number {
  if (!Number.isInteger(dim) || dim < 1) throw new ClusteringError('shape', `${what}: dim must be a positive integer, got ${dim}`);
  if (values.length % dim !== 0) {
    throw new ClusteringError('shape', `${what}: ${values.length} floats is not a whole number of ${dim}-d rows`);
  }
  return values.length / dim;
}

/** Index of the first NaN/Infinity row, or -1. */
export function firstNonFiniteRow(values: Float32Array, dim: number): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return Math.floor(i / dim);
  return -1;
}

export function assertFinite(values: Float32Array, dim: number, what: string): void {
  const row = firstNonFiniteRow(values, dim);
  if (row >= 0) throw new ClusteringError('non-finite', `${what}: row ${row} contains NaN or Infinity`);
}

/** Squared L2 norm of each row, accumulated in float64. */
export function squaredNorms(values: Float32Array, dim: number): Float64Array {
  const n = values.length / dim;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * dim;
    for (let j = 0; j < dim; j++) {
      const v = values[o + j]!;
      s += v * v;
    }
    out[i] = s;
  }
  return out;
}

/** True when every row already has unit norm (within float32 rounding): normalising would only copy. */
export function isRowNormalised(values: Float32Array, dim: number, tolerance = 1e-4): boolean {
  const norms = squaredNorms(values, dim);
  for (const s of norms) if (Math.abs(s - 1) > tolerance) return false;
  return true;
}

/**
 * L2-normalised copy. A zero row has no direction, so it is refused rather than silently mapped to an
 * arbitrary center.
 */
export function normaliseRows(values: Float32Array, dim: number, what: string): Float32Array {
  const n = values.length / dim;
  const out = new Float32Array(values.length);
  const norms = squaredNorms(values, dim);
  for (let i = 0; i < n; i++) {
    const s = norms[i]!;
    if (!(s > 0)) throw new ClusteringError('zero-vector', `${what}: row ${i} is a zero vector and cannot be L2-normalised`);
    const inv = 1 / Math.sqrt(s);
    const o = i * dim;
    for (let j = 0; j < dim; j++) out[o + j] = values[o + j]! * inv;
  }
  return out;
}

/** Normalises row `row` of `values` in place; returns false (leaving it untouched) for a zero row. */
export function normaliseRowInPlace(values: Float32Array | Float64Array, dim: number, row: number): boolean {
  const o = row * dim;
  let s = 0;
  for (let j = 0; j < dim; j++) s += values[o + j]! * values[o + j]!;
  if (!(s > 0)) return false;
  const inv = 1 / Math.sqrt(s);
  for (let j = 0; j < dim; j++) values[o + j] = values[o + j]! * inv;
  return true;
}

/** Squared L2 distance between row a of `x` and row b of `y`. */
export function rowDistance2(x: ArrayLike<number>, a: number, y: ArrayLike<number>, b: number, dim: number): number {
  let s = 0;
  const oa = a * dim;
  const ob = b * dim;
  for (let j = 0; j < dim; j++) {
    const d = x[oa + j]! - y[ob + j]!;
    s += d * d;
  }
  return s;
}
