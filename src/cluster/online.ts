/**
 * Online refinement of the fine centers: mini-batch k-means (Sculley 2010) with per-center counts, so a
 * center's learning rate is 1/count and the centers converge to the running means of their points.
 * Centers stay on the unit sphere (the clustering is spherical, see kmeans.ts). The fine->expert map is
 * never touched here: only spawn/split logic may move fine clusters between experts.
 */
import type { CentroidModel } from './model.js';
import { normaliseRowInPlace } from './vectors.js';

export interface RefineResult {
  fine: Float32Array;
  counts: Float64Array;
  /** Points applied. */
  applied: number;
}

/**
 * Applies one mini-batch: each point moves the center of its row (`rows[i]`, the nearest fine row at
 * the time of the update) by (x - c) / count. Pure: returns new arrays.
 */
export function refineCenters(
  current: { fine: Float32Array; counts: Float64Array; dim: number },
  points: Float32Array,
  rows: ArrayLike<number>,
): RefineResult {
  const { dim } = current;
  const fine = current.fine.slice();
  const counts = current.counts.slice();
  const touched = new Set<number>();
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const eta = 1 / ++counts[row]!;
    const c = row * dim;
    const x = i * dim;
    for (let d = 0; d < dim; d++) fine[c + d]! += eta * (points[x + d]! - fine[c + d]!);
    touched.add(row);
  }
  for (const row of touched) normaliseRowInPlace(fine, dim, row);
  return { fine, counts, applied: rows.length };
}

/** Mean L2 distance between corresponding rows: how far the centers moved since an epoch. */
export function meanDisplacement(a: Float32Array, b: Float32Array, dim: number): number {
  const rows = a.length / dim;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let d = 0; d < dim; d++) sq += (a[r * dim + d]! - b[r * dim + d]!) ** 2;
    total += Math.sqrt(sq);
  }
  return rows === 0 ? 0 : total / rows;
}

/** The next epoch of a refined model: same ids and expert map, moved centers and counts. */
export function refinedEpoch(base: CentroidModel, refined: RefineResult, now = Date.now()): CentroidModel {
  return { ...base, epoch: base.epoch + 1, fine: refined.fine, counts: refined.counts, createdAt: now };
}
