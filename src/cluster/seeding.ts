/**
 * k-means++ seeding (Arthur & Vassilvitskii 2007): each next center is drawn with probability
 * proportional to D(x)^2, the squared distance to the nearest center chosen so far.
 *
 * Done naively that is k sequential passes over the data (at 20k x 768 x 1024 about 15 s of
 * memory-bound mat-vecs on wasm). Instead centers are chosen in blocks of up to 64: within a block the
 * draw is exact by rejection sampling (propose x proportional to the D at block start, accept with
 * probability D'(x)/D(x), where D' also counts the centers already picked in this block: O(block x dim)
 * per proposal), and D is refreshed once per block with one matMul of the sample against the block's
 * centers. Same distribution as sequential k-means++, ~k/64 passes.
 */
import { ClusteringError } from './errors.js';
import { createNearestCenters } from './nearest.js';
import type { Rng } from './rng.js';
import { rowDistance2, squaredNorms } from './vectors.js';

export interface SeedingOptions {
  /** Row-major points (already normalised if the caller clusters on the sphere). */
  points: Float32Array;
  dim: number;
  k: number;
  rng: Rng;
  /** Seed from a uniform sample of this many points (k-means++ on a sample is standard for large n). */
  sampleSize?: number;
}

const MAX_BLOCK = 64;
/** Proposals per center before the block is closed early and D refreshed (acceptance became low). */
const MAX_PROPOSALS = 64;
/** Squared distances below this fraction of ||x||^2 + ||c||^2 are recomputed exactly in JS. */
const NEAR_ZERO = 1e-5;

export function defaultSeedingSample(n: number, k: number): number {
  return Math.min(n, Math.max(10_000, 20 * k));
}

/** Returns k x dim centers, each a copy of a distinct input point. */
export async function kmeansPlusPlus(options: SeedingOptions): Promise<Float32Array> {
  const { points, dim, k, rng } = options;
  const n = points.length / dim;
  if (k > n) throw new ClusteringError('too-few-points', `k-means++ needs at least k=${k} points, got ${n}`);
  const size = Math.min(n, Math.max(k, options.sampleSize ?? defaultSeedingSample(n, k)));
  const first = await seedFromSample(points, dim, k, rng, sampleRows(n, size, rng));
  if (first) return first;
  // The sample ran out of distinct points; the full data may still have enough.
  if (size < n) {
    const all = await seedFromSample(points, dim, k, rng, null);
    if (all) return all;
  }
  throw new ClusteringError('too-few-distinct', `fewer than k=${k} distinct points among ${n}: cannot place ${k} distinct centers`);
}

/** Uniform sample of `size` row ids (partial Fisher-Yates), or null for all rows. */
function sampleRows(n: number, size: number, rng: Rng): Int32Array | null {
  if (size >= n) return null;
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  for (let i = 0; i < size; i++) {
    const j = i + rng.nextInt(n - i);
    const t = ids[i]!;
    ids[i] = ids[j]!;
    ids[j] = t;
  }
  return ids.slice(0, size).sort();
}

/** k centers from the sampled rows, or null when the sample has fewer than k distinct points. */
async function seedFromSample(points: Float32Array, dim: number, k: number, rng: Rng, rows: Int32Array | null): Promise<Float32Array | null> {
  const sample = rows ? gather(points, dim, rows) : points;
  const s = sample.length / dim;
  const centers = new Float32Array(k * dim);
  const norms = squaredNorms(sample, dim);
  // Sample row of each chosen center.
  const picks = new Int32Array(k);
  const first = rng.nextInt(s);
  centers.set(sample.subarray(first * dim, (first + 1) * dim), 0);
  picks[0] = first;
  let chosen = 1;
  const d2 = new Float64Array(s);
  for (let i = 0; i < s; i++) d2[i] = rowDistance2(sample, i, centers, 0, dim);
  const prefix = new Float64Array(s);

  while (chosen < k) {
    let total = 0;
    for (let i = 0; i < s; i++) prefix[i] = total += d2[i]!;
    if (!(total > 0)) return null;
    // Early centers cut D a lot (low acceptance), later ones barely: grow the block with progress.
    const want = Math.min(k - chosen, MAX_BLOCK, chosen);
    const blockStart = chosen;
    for (let b = 0; b < want; b++) {
      let picked = -1;
      for (let attempt = 0; attempt < MAX_PROPOSALS && picked < 0; attempt++) {
        const x = searchPrefix(prefix, rng.next() * total);
        let dx = d2[x]!;
        for (let c = blockStart; c < chosen && dx > 0; c++) dx = Math.min(dx, rowDistance2(sample, x, centers, c, dim));
        if (rng.next() * d2[x]! < dx) picked = x;
      }
      if (picked < 0) break;
      centers.set(sample.subarray(picked * dim, (picked + 1) * dim), chosen * dim);
      picks[chosen] = picked;
      chosen++;
    }
    const block = centers.slice(blockStart * dim, chosen * dim);
    const set = createNearestCenters({ centers: block, dim });
    try {
      const { index, dist2 } = await set.assign(sample);
      for (let i = 0; i < s; i++) {
        let d = dist2[i]!;
        // The matMul expansion leaves ~1e-7 of rounding on a point's distance to itself or to its exact
        // duplicate; recompute near-zero distances exactly so chosen points can never be drawn again.
        if (d < NEAR_ZERO * (norms[i]! + norms[picks[blockStart + index[i]!]!]!)) d = rowDistance2(sample, i, block, index[i]!, dim);
        if (d < d2[i]!) d2[i] = d;
      }
    } finally {
      set.dispose();
    }
  }
  return centers;
}

/** First index whose inclusive prefix sum exceeds u (weights are >= 0, so zero-weight rows are skipped). */
function searchPrefix(prefix: Float64Array, u: number): number {
  let lo = 0;
  let hi = prefix.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (prefix[mid]! > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function gather(points: Float32Array, dim: number, rows: Int32Array): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let r = 0; r < rows.length; r++) out.set(points.subarray(rows[r]! * dim, (rows[r]! + 1) * dim), r * dim);
  return out;
}
