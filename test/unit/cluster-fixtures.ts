/** Synthetic data with known structure for the clustering tests (not a test file itself). */
import { createRng, type Rng } from '../../src/cluster/rng.js';

export interface Blobs {
  points: Float32Array;
  labels: Int32Array;
  centers: Float32Array;
}

function unitRow(values: Float64Array | number[]): Float64Array {
  const v = Float64Array.from(values);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

function randomDirection(rng: Rng, dim: number): Float64Array {
  return unitRow(Array.from({ length: dim }, () => rng.nextGaussian()));
}

/**
 * `clusters` blobs of `perCluster` points on the unit sphere: a random direction plus Gaussian noise of
 * per-coordinate std spread / sqrt(dim), renormalised. Points are shuffled so cluster order says nothing.
 */
export function sphereBlobs(options: { seed: number; clusters: number; perCluster: number | number[]; dim: number; spread: number; centers?: Float64Array[] }): Blobs {
  const { clusters, dim, spread } = options;
  const rng = createRng(options.seed);
  const dirs = options.centers ?? Array.from({ length: clusters }, () => randomDirection(rng, dim));
  const sizes = Array.from({ length: clusters }, (_, c) => (Array.isArray(options.perCluster) ? options.perCluster[c]! : options.perCluster));
  const n = sizes.reduce((a, b) => a + b, 0);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const points = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  let next = 0;
  for (let c = 0; c < clusters; c++) {
    for (let p = 0; p < sizes[c]!; p++) {
      const row = order[next++]!;
      const v = unitRow(Array.from({ length: dim }, (_, j) => dirs[c]![j]! + (spread / Math.sqrt(dim)) * rng.nextGaussian()));
      points.set(v, row * dim);
      labels[row] = c;
    }
  }
  const centers = new Float32Array(clusters * dim);
  dirs.forEach((d, c) => centers.set(d, c * dim));
  return { points, labels, centers };
}

/**
 * Two-level structure: `groups` well separated directions, each with `perGroup` sub-directions close to
 * it. Returns blobs labelled by sub-cluster and the group of each point.
 */
export function hierarchicalBlobs(options: { seed: number; groups: number; perGroup: number; perCluster: number; dim: number; subSpread: number; spread: number }): Blobs & { groups: Int32Array } {
  const { groups, perGroup, dim } = options;
  const rng = createRng(options.seed + 1000);
  const centers: Float64Array[] = [];
  for (let g = 0; g < groups; g++) {
    const top = randomDirection(rng, dim);
    for (let s = 0; s < perGroup; s++) centers.push(unitRow(Array.from(top, (x) => x + (options.subSpread / Math.sqrt(dim)) * rng.nextGaussian())));
  }
  const blobs = sphereBlobs({ seed: options.seed, clusters: groups * perGroup, perCluster: options.perCluster, dim, spread: options.spread, centers });
  return { ...blobs, groups: blobs.labels.map((l) => Math.floor(l / perGroup)) };
}
