/**
 * Novelty maths, in whatever space the embedder puts captions (ARCHITECTURE.md section 3). Pure functions.
 *
 * Why not a fixed distance: a fixed L2 threshold is a property of one embedder. Tuned for the hashed
 * embedder (1.25) it flags nothing in all-MiniLM-L6-v2's space, where known captions sit at most ~1.14
 * from their nearest fine center. So every fine cluster carries a RADIUS, the `radiusQuantile` of its own
 * members' distances to its center (the bootstrap sample, or the novelty buffer for clusters created from
 * it), and a routed pair is a novelty CANDIDATE when it lies beyond its cluster's radius x `radiusMargin`.
 *
 * Why judge per buffer: one caption's distance says little (AUC ~0.7 known vs new family in MiniLM
 * space), and a stationary stream keeps producing ~(1 - quantile) candidates: the tail of every cluster.
 * A genuinely new family is different as a GROUP: its candidates form dense clusters of their own, whose
 * members are much closer to their new center than to any existing fine center, while a clustered tail is
 * a loose mix of points from many old clusters' fringes, no closer to its k-means center than to the old
 * centers. `judgeClusters` keeps a new cluster only when that ratio is below `maxRatio`.
 *
 * Measured (bench/novelty.ts, MiniLM, 20,000-caption bootstrap into 1024 fine / 4 experts, Fashion-MNIST
 * feed): per-caption novelty is weak (AUC known vs footwear 0.73 on the raw distance, 0.61 on distance /
 * radius; bags 0.80 / 0.66), and the candidate RATE barely moves (held-out stationary 18.5% - radii from
 * ~20 members per cluster are tight out of sample -, footwear 29%, bags 38%), so neither decides alone.
 * The buffer ratio does: stationary tail clusters score 1.05-1.09 at the lowest (median 1.21, 0 of 60
 * buffers kept anything), footwear buffers contain clusters down to 0.92-0.95 (median 1.07). maxRatio 0.97
 * sits between; with 300-candidate buffers footwear was detected in 20/20 runs, 17 within 3,000 pairs.
 * In hashed space the scale differs (tail >= 0.82, new family <= 0.80): the threshold is not universal.
 * Nor within one space: with 256 fine centers (6,000 captions) MiniLM tails reach down to 0.93, and once
 * (a CI run) a stationary buffer held a cluster under 0.97 that spawned an expert. So each model gets its
 * own threshold at bootstrap, calibrated on its sample's tail (bootstrap.ts, calibrateMaxRatio: 0.927
 * with 256 fine centers, 0.991 with 1024); `maxRatioFor` is the fall-back when that tail is too small.
 */
import type { CentroidModel } from './model.js';

/**
 * The buffer ratio threshold measured for each kind of embedding space (above), from the fingerprint of
 * the space the centers live in (it starts with the embedder's kind): hashed n-grams, or a sentence
 * encoder's (MiniLM). Used when the config sets none.
 */
export function maxRatioFor(embedderFingerprint: string): number {
  return embedderFingerprint.startsWith('hashed') ? 0.8 : 0.97;
}

/** The buffer ratio threshold in force for `model`: configured, else calibrated for it, else per space. */
export function noveltyMaxRatio(model: Pick<CentroidModel, 'maxRatio' | 'embedder'>, settings: { maxRatio?: number | undefined }): number {
  return settings.maxRatio ?? model.maxRatio ?? maxRatioFor(model.embedder);
}

/** The q-quantile (linear interpolation between order statistics) of `values`; NaN when empty. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const n = values.length;
  if (n === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const pos = Math.min(1, Math.max(0, q)) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
}

export interface RadiiOptions {
  /** Fine row of each member point (the router's nearest-center assignment). */
  rows: ArrayLike<number>;
  /** L2 distance of each member to its row's center. */
  distances: ArrayLike<number>;
  /** Number of fine rows. */
  count: number;
  quantile: number;
  /**
   * Rows with fewer members than this get the GLOBAL quantile (all members' distances): a quantile of
   * two or three distances is mostly noise, and an empty row has none. So do rows whose quantile is 0.
   */
  minMembers: number;
}

/** Per fine row, the quantile of its members' distances to its center; see RadiiOptions for sparse rows. */
export function clusterRadii({ rows, distances, count, quantile: q, minMembers }: RadiiOptions): { radii: Float32Array; global: number; fallbackRows: number } {
  const members: number[][] = Array.from({ length: count }, () => []);
  for (let i = 0; i < rows.length; i++) members[rows[i]!]!.push(distances[i]!);
  const global = quantile(distances, q);
  const radii = new Float32Array(count);
  let fallbackRows = 0;
  members.forEach((d, r) => {
    const own = d.length >= minMembers ? quantile(d, q) : 0;
    // A radius of 0 means identical members (the same boilerplate caption many times over): any other
    // caption routed there would be a candidate, so such a row takes the global quantile too.
    if (own > 1e-6) radii[r] = own;
    else {
      radii[r] = global;
      fallbackRows++;
    }
  });
  return { radii, global, fallbackRows };
}

const unitDistance = (cos: number) => Math.sqrt(Math.max(0, 2 - 2 * cos));

/** Dot product of row ai of a and row bi of b. */
export function rowDot(a: Float32Array, ai: number, b: Float32Array, bi: number, dim: number): number {
  let s = 0;
  const ao = ai * dim;
  const bo = bi * dim;
  for (let d = 0; d < dim; d++) s += a[ao + d]! * b[bo + d]!;
  return s;
}

/** Nearest row of `centers` to row `i` of `points` (unit rows), and its L2 distance. */
export function nearestUnitRow(points: Float32Array, i: number, centers: Float32Array, dim: number): { row: number; distance: number } {
  let best = -1;
  let bestCos = -Infinity;
  for (let r = 0; r < centers.length / dim; r++) {
    const c = rowDot(points, i, centers, r, dim);
    if (c > bestCos) [best, bestCos] = [r, c];
  }
  return { row: best, distance: unitDistance(bestCos) };
}

export interface ClusterJudgement {
  /** Cluster index in the fit. */
  cluster: number;
  size: number;
  /** Median member distance to the new center / median member distance to its nearest existing fine center. */
  ratio: number;
  /** The radiusQuantile of the distances to the new center of the members it wins: the new cluster's radius. */
  radius: number;
  keep: boolean;
  /** Why it was rejected, for the log. */
  reason?: 'small' | 'explained';
}

/**
 * Judges the clusters of one full novelty buffer. A cluster is kept when it has at least `minSize`
 * members and ratio <= `maxRatio`: its members are markedly closer to their own new center than to the
 * existing fine centers, i.e. a dense group the current centers do not explain. Medians, not means, so a
 * few stray candidates swept into a real group do not decide for it.
 */
export function judgeClusters(options: {
  /** The buffered candidates, unit rows. */
  points: Float32Array;
  dim: number;
  /** k-means of the buffer: its centers (unit rows) and each point's cluster. */
  centers: Float32Array;
  assignment: ArrayLike<number>;
  /** Existing fine centers (unit rows). */
  fine: Float32Array;
  minSize: number;
  maxRatio: number;
  radiusQuantile: number;
}): ClusterJudgement[] {
  const { points, dim, centers, assignment, fine } = options;
  const k = centers.length / dim;
  const toNew: number[][] = Array.from({ length: k }, () => []);
  const toOld: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < assignment.length; i++) {
    const c = assignment[i]!;
    toNew[c]!.push(unitDistance(rowDot(points, i, centers, c, dim)));
    toOld[c]!.push(nearestUnitRow(points, i, fine, dim).distance);
  }
  return toNew.map((d, c) => {
    const size = d.length;
    const old = quantile(toOld[c]!, 0.5);
    const ratio = size === 0 || !(old > 0) ? Infinity : quantile(d, 0.5) / old;
    // The radius from the members the new center will actually win in routing (nearer than every old
    // center): k-means sweeps some stray tail candidates into a real group, and their distances would
    // inflate its radius until the new cluster flags nothing.
    const claimed = d.filter((x, i) => x < toOld[c]![i]!);
    const radius = size === 0 ? NaN : quantile(claimed.length > 0 ? claimed : d, options.radiusQuantile);
    if (size < options.minSize) return { cluster: c, size, ratio, radius, keep: false, reason: 'small' as const };
    if (!(ratio <= options.maxRatio)) return { cluster: c, size, ratio, radius, keep: false, reason: 'explained' as const };
    return { cluster: c, size, ratio, radius, keep: true };
  });
}

/**
 * Distance from a new fine center to the nearest coarse center beyond which it spawns a new expert
 * instead of joining: the `q`-quantile of the existing fine centers' distances to their own expert's
 * coarse center, times `factor`. Relative to the model itself, so it holds in any embedding space (a
 * fixed 0.9 was a hashed-space number: there, fine centers sit ~0.6-0.8 from their coarse center; in
 * MiniLM space the scale differs).
 */
export function spawnThreshold(model: Pick<CentroidModel, 'fine' | 'fineToExpert' | 'coarse' | 'experts' | 'dim'>, q: number, factor: number): number {
  const { dim } = model;
  const rowOfExpert = new Map(Array.from(model.experts, (e, row) => [e, row]));
  const d: number[] = [];
  for (let r = 0; r < model.fineToExpert.length; r++) {
    const row = rowOfExpert.get(model.fineToExpert[r]!);
    if (row !== undefined) d.push(unitDistance(rowDot(model.fine, r, model.coarse, row, dim)));
  }
  return quantile(d, q) * factor;
}

/**
 * The sharder's candidate test: the novelty threshold of a fine cluster by id, from whatever epoch
 * `latest` returns (rebuilt once per epoch): radius x `radiusMargin`, capped by the optional absolute
 * `noveltyDistance`. A fine cluster without a radius (an epoch stored before radii existed, until the
 * controller derives them) gets only the absolute cap, or flags nothing: undefined.
 */
export function noveltyThresholds(
  latest: () => Pick<CentroidModel, 'epoch' | 'fineIds' | 'radii'> | undefined,
  settings: { radiusMargin: number; noveltyDistance?: number | undefined },
): (fine: number) => number | undefined {
  let epoch = -1;
  let byFine = new Map<number, number>();
  const cap = settings.noveltyDistance ?? Infinity;
  return (fine) => {
    const model = latest();
    if (!model) return undefined;
    if (model.epoch !== epoch) {
      epoch = model.epoch;
      byFine = new Map(model.radii ? Array.from(model.fineIds, (id, row) => [id, Math.min(cap, model.radii![row]! * settings.radiusMargin)]) : []);
    }
    const threshold = byFine.get(fine) ?? cap;
    return Number.isFinite(threshold) ? threshold : undefined;
  };
}
