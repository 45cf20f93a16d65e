/**
 * The routing model: m fine centers grouped into n experts (ARCHITECTURE.md section 2), versioned by epoch.
 * Fine ids are stable and never reused (spawned clusters get fresh ids), so a shard record's fine id
 * keeps its meaning across epochs.
 */
export interface ClusterSpread {
  min: number;
  max: number;
  mean: number;
  /** Coefficient of variation of the cluster sizes (std / mean). */
  cv: number;
}

export interface CentroidModel {
  epoch: number;
  dim: number;
  /** Fine centers, row-major m x dim, L2-normalised rows. */
  fine: Float32Array;
  /** Stable id of each fine row. */
  fineIds: Int32Array;
  /** Expert id of each fine row. */
  fineToExpert: Int32Array;
  /** Coarse centers, row-major n x dim. */
  coarse: Float32Array;
  /** Expert id of each coarse row. */
  experts: Int32Array;
  /** Points that have updated each fine center so far (mini-batch k-means learning rate 1/count). */
  counts: Float64Array;
  /**
   * Novelty radius of each fine row (L2): the drift `radiusQuantile` of its members' distances to the
   * center, from the bootstrap sample or, for clusters created by novelty, from the buffer (see
   * src/cluster/novelty.ts). Absent in epochs stored before radii existed: such an epoch flags no
   * candidates until the controller derives radii from the reservoir sample and publishes them.
   */
  radii?: Float32Array;
  /**
   * The novelty buffer ratio threshold calibrated for THIS model at bootstrap (src/cluster/novelty.ts,
   * calibrateMaxRatio): the ratio scale depends on how finely the centers cut the space. Absent when the
   * sample's tail was too small to calibrate on; then the per-space default applies.
   */
  maxRatio?: number;
  createdAt: number;
  /**
   * Per expert, the shard sequence number up to which records have refined these centers (online
   * mini-batch k-means). Stored with the epoch so that a restarted controller resumes where the
   * published centers left off, never applying a record twice.
   */
  refinedThrough: Record<number, number>;
  /**
   * Experts spawned or split off by drift handling: the model each is warm-started from ('seed' or
   * 'expert-<id>') until it has a version of its own.
   */
  origins: Record<number, string>;
  /** Fingerprint of the embedder whose space the centers live in; routing refuses a mismatch. */
  embedder: string;
  stats: {
    sampleSize: number;
    inertia: number;
    balanced: boolean;
    oneStage: boolean;
    fineSpread: ClusterSpread;
    expertSpread: ClusterSpread;
  };
}

export const fineCount = (m: CentroidModel): number => m.fineIds.length;
export const expertCount = (m: CentroidModel): number => m.experts.length;

export function spreadOf(sizes: ArrayLike<number>): ClusterSpread {
  const n = sizes.length;
  if (n === 0) return { min: 0, max: 0, mean: 0, cv: 0 };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const s = sizes[i]!;
    min = Math.min(min, s);
    max = Math.max(max, s);
    sum += s;
  }
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (sizes[i]! - mean) ** 2;
  return { min, max, mean, cv: mean === 0 ? 0 : Math.sqrt(sq / n) / mean };
}
