import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { ClusteringError } from '../../src/cluster/errors.js';
import { kmeans, type KMeansProgress } from '../../src/cluster/kmeans.js';
import { adjustedRandIndex, clusterSizes } from '../../src/cluster/metrics.js';
import { createRng } from '../../src/cluster/rng.js';
import { kmeansPlusPlus } from '../../src/cluster/seeding.js';
import { initBackend } from '../../src/tensor/backend.js';
import { sphereBlobs } from './cluster-fixtures.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const dim = 16;
// Six blobs on the unit sphere, noise std 0.25/sqrt(16) per coordinate: well separated.
const blobs = sphereBlobs({ seed: 1, clusters: 6, perCluster: 150, dim, spread: 0.25 });
const base = { points: blobs.points, dim, k: 6, seed: 7, maxIterations: 50, tolerance: 1e-6 };

const reason = async (run: Promise<unknown>): Promise<string> => {
  try {
    await run;
  } catch (err) {
    expect(err).toBeInstanceOf(ClusteringError);
    return (err as ClusteringError).reason;
  }
  throw new Error('expected a ClusteringError');
};

describe('kmeans', () => {
  test('recovers well separated blobs (ARI > 0.98), plain and balanced, without leaking tensors', async () => {
    const before = tf.memory().numTensors;
    for (const assignment of ['plain', 'balanced'] as const) {
      const result = await kmeans({ ...base, assignment });
      expect(adjustedRandIndex(result.assignment, blobs.labels)).toBeGreaterThan(0.98);
      expect(result.converged).toBe(true);
      expect(result.iterations).toBeLessThan(50);
      expect(Array.from(result.sizes).reduce((a, b) => a + b, 0)).toBe(900);
      // Spherical by default: unit centers, and inertia is the sum of the reported distances.
      for (let c = 0; c < 6; c++) expect(Math.hypot(...result.centers.subarray(c * dim, (c + 1) * dim))).toBeCloseTo(1, 5);
      expect(result.inertia).toBeCloseTo(result.dist2.reduce((a, b) => a + b, 0), 6);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  test('balanced assignment holds clusters to ceil(n/k * (1 + tolerance)) on very unequal blobs', async () => {
    const uneven = sphereBlobs({ seed: 2, clusters: 3, perCluster: [500, 200, 100], dim, spread: 0.5 });
    const plain = await kmeans({ ...base, points: uneven.points, k: 4 });
    // Plain k-means follows the data: the big blob keeps far more than n/k.
    expect(Math.max(...plain.sizes)).toBeGreaterThan(220);
    for (const [tolerance, capacity] of [
      [0, 200],
      [0.1, 220],
    ] as const) {
      const result = await kmeans({ ...base, points: uneven.points, k: 4, assignment: 'balanced', balanceTolerance: tolerance });
      expect(Math.max(...result.sizes)).toBeLessThanOrEqual(capacity);
      expect(Array.from(clusterSizes(result.assignment, 4))).toEqual(Array.from(result.sizes));
    }
  });

  test('the same seed gives the same result; another seed other seeds', async () => {
    const a = await kmeans({ ...base, assignment: 'balanced', maxIterations: 3 });
    const b = await kmeans({ ...base, assignment: 'balanced', maxIterations: 3 });
    expect(Array.from(b.centers)).toEqual(Array.from(a.centers));
    expect(Array.from(b.assignment)).toEqual(Array.from(a.assignment));
    expect(b.inertia).toBe(a.inertia);
    const seedsA = await kmeansPlusPlus({ points: blobs.points, dim, k: 6, rng: createRng(1) });
    const seedsB = await kmeansPlusPlus({ points: blobs.points, dim, k: 6, rng: createRng(2) });
    expect(Array.from(seedsA)).not.toEqual(Array.from(seedsB));
  });

  test('k-means++ draws with probability proportional to D^2, also inside a block of centers', async () => {
    // 5 points on a line, k = 4: which point is left out. The exact law, by enumerating the 120 draw
    // sequences, is below. The 3rd and 4th centers are drawn in one block (rejection sampling); drawing
    // the 4th from the D^2 of the block start instead would give [0.000, 0.277, 0.287, 0.229, 0.207].
    const line = [0, 15, 16, 26, 29];
    const exact = [0.0001, 0.4304, 0.4699, 0.0565, 0.0431];
    const points = Float32Array.from(line);
    const trials = 1000;
    const left = [0, 0, 0, 0, 0];
    for (let t = 0; t < trials; t++) {
      const seeds = Array.from(await kmeansPlusPlus({ points, dim: 1, k: 4, rng: createRng(t) }));
      expect(new Set(seeds).size).toBe(4);
      left[line.findIndex((x) => !seeds.includes(x))]!++;
    }
    // Four standard errors (<= 0.065 at 1000 draws).
    left.forEach((count, i) => expect(Math.abs(count / trials - exact[i]!)).toBeLessThan(4 * Math.sqrt((exact[i]! * (1 - exact[i]!)) / trials) + 0.005));
  });

  test('k-means++ seeds are distinct input points, one in each well separated blob', async () => {
    // Tight blobs: a second seed in a covered blob has probability ~1% per draw.
    const tight = sphereBlobs({ seed: 1, clusters: 6, perCluster: 150, dim, spread: 0.05 });
    for (const seed of [1, 2, 3]) {
      const seeds = await kmeansPlusPlus({ points: tight.points, dim, k: 6, rng: createRng(seed) });
      const blobOf = new Set<number>();
      for (let c = 0; c < 6; c++) {
        const row = seeds.subarray(c * dim, (c + 1) * dim);
        let found = -1;
        for (let i = 0; i < 900 && found < 0; i++) if (row.every((v, j) => v === tight.points[i * dim + j])) found = i;
        expect(found).toBeGreaterThanOrEqual(0);
        blobOf.add(tight.labels[found]!);
      }
      expect(blobOf.size).toBe(6);
    }
  });

  test('plain (non-spherical) mode keeps centers at the exact means of their points', async () => {
    const rng = createRng(3);
    const points = Float32Array.from({ length: 300 * 4 }, () => 10 * rng.nextGaussian());
    const result = await kmeans({ points, dim: 4, k: 5, seed: 1, maxIterations: 100, tolerance: 0, normalize: false });
    for (let c = 0; c < 5; c++) {
      const mean = [0, 0, 0, 0];
      let count = 0;
      result.assignment.forEach((a, i) => {
        if (a !== c) return;
        count++;
        for (let j = 0; j < 4; j++) mean[j]! += points[i * 4 + j]!;
      });
      // Converged with tolerance 0 means no point moved: the centers are the means of the final clusters.
      expect(result.converged).toBe(true);
      for (let j = 0; j < 4; j++) expect(result.centers[c * 4 + j]).toBeCloseTo(mean[j]! / count, 3);
    }
  });

  test('empty clusters are re-seeded at the farthest points', async () => {
    // Two identical initial centers: one of them wins no point in the first E step.
    const init = blobs.centers.slice();
    init.set(blobs.centers.subarray(0, dim), dim);
    const progress: KMeansProgress[] = [];
    const result = await kmeans({ ...base, init, onIteration: (p) => progress.push(p) });
    expect(progress[0]!.reseeded).toBeGreaterThan(0);
    expect(Math.min(...result.sizes)).toBeGreaterThan(0);
    expect(adjustedRandIndex(result.assignment, blobs.labels)).toBeGreaterThan(0.98);
  });

  test('k = 1 gives the normalised mean; maxIterations 0 assigns to the seeds', async () => {
    const one = await kmeans({ ...base, k: 1 });
    const mean = new Float64Array(dim);
    for (let i = 0; i < 900; i++) for (let j = 0; j < dim; j++) mean[j]! += blobs.points[i * dim + j]!;
    const norm = Math.hypot(...mean);
    for (let j = 0; j < dim; j++) expect(one.centers[j]).toBeCloseTo(mean[j]! / norm, 4);
    expect(Array.from(one.sizes)).toEqual([900]);
    const oneBalanced = await kmeans({ ...base, k: 1, assignment: 'balanced' });
    expect(Array.from(oneBalanced.centers)).toEqual(Array.from(one.centers));
    const seedsOnly = await kmeans({ ...base, maxIterations: 0, init: blobs.centers });
    expect(seedsOnly.iterations).toBe(0);
    expect(Array.from(seedsOnly.centers)).toEqual(Array.from(blobs.centers));
  });

  test('degenerate input fails with a typed reason', async () => {
    expect(await reason(kmeans({ ...base, points: blobs.points.slice(0, 5 * dim), k: 6 }))).toBe('too-few-points');
    // 40 points but only 3 distinct ones.
    const few = new Float32Array(40 * dim);
    for (let i = 0; i < 40; i++) few.set(blobs.points.subarray((i % 3) * dim, (i % 3 + 1) * dim), i * dim);
    expect(await reason(kmeans({ ...base, points: few, k: 4 }))).toBe('too-few-distinct');
    // ...which is fine for k = 3: each distinct point is a center.
    const three = await kmeans({ ...base, points: few, k: 3 });
    expect(three.inertia).toBeLessThan(1e-5);
    const withZero = blobs.points.slice();
    withZero.fill(0, 10 * dim, 11 * dim);
    expect(await reason(kmeans({ ...base, points: withZero }))).toBe('zero-vector');
    // Without normalisation a zero vector is an ordinary point.
    await expect(kmeans({ ...base, points: withZero, normalize: false })).resolves.toBeDefined();
    const withNaN = blobs.points.slice();
    withNaN[5 * dim + 3] = Number.NaN;
    expect(await reason(kmeans({ ...base, points: withNaN }))).toBe('non-finite');
    expect(await reason(kmeans({ ...base, k: 0 }))).toBe('parameter');
    expect(await reason(kmeans({ ...base, maxIterations: -1 }))).toBe('parameter');
    expect(await reason(kmeans({ ...base, points: blobs.points.subarray(1) }))).toBe('shape');
    expect(await reason(kmeans({ ...base, init: new Float32Array(5 * dim) }))).toBe('shape');
  });
});
