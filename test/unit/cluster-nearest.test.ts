import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { ClusteringError } from '../../src/cluster/errors.js';
import { batchRows, createNearestCenters, nearestCenters } from '../../src/cluster/nearest.js';
import { createRng } from '../../src/cluster/rng.js';
import { initBackend } from '../../src/tensor/backend.js';

beforeAll(async () => {
  await initBackend('wasm');
});

function randomMatrix(seed: number, rows: number, dim: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: rows * dim }, () => scale * rng.nextGaussian());
}

/** Every squared distance by the definition, in float64. */
function bruteDistances(points: Float32Array, centers: Float32Array, dim: number): Float64Array[] {
  const n = points.length / dim;
  const k = centers.length / dim;
  return Array.from({ length: n }, (_, i) => {
    const row = new Float64Array(k);
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += (points[i * dim + j]! - centers[c * dim + j]!) ** 2;
      row[c] = s;
    }
    return row;
  });
}

describe('nearestCenters', () => {
  test('agrees with a brute-force loop (index up to float ties, distance to 1e-4)', async () => {
    const dim = 24;
    const points = randomMatrix(1, 700, dim);
    const centers = randomMatrix(2, 37, dim);
    // batchSize 64 forces 11 batches, the last one partial.
    const { index, dist2 } = await nearestCenters({ points, dim, centers, batchSize: 64 });
    const brute = bruteDistances(points, centers, dim);
    brute.forEach((row, i) => {
      const best = Math.min(...row);
      // The chosen center is the nearest, or tied with it within float32 rounding of the expansion.
      expect(row[index[i]!]! - best).toBeLessThan(1e-3);
      expect(dist2[i]).toBeCloseTo(row[index[i]!]!, 3);
    });
    const exact = brute.filter((row, i) => row.indexOf(Math.min(...row)) === index[i]).length;
    expect(exact).toBeGreaterThanOrEqual(698);
  });

  test('distances are never negative, even for a point equal to a center', async () => {
    const dim = 8;
    const centers = randomMatrix(3, 5, dim, 10);
    const { index, dist2 } = await nearestCenters({ points: centers.slice(), dim, centers });
    expect(Array.from(index)).toEqual([0, 1, 2, 3, 4]);
    for (const d of dist2) expect(d).toBeGreaterThanOrEqual(0);
  });

  test('refuses ragged input with a typed error', async () => {
    await expect(nearestCenters({ points: new Float32Array(7), dim: 3, centers: new Float32Array(6) })).rejects.toBeInstanceOf(ClusteringError);
    await expect(nearestCenters({ points: new Float32Array(6), dim: 3, centers: new Float32Array(0) })).rejects.toThrow(/at least one center/);
  });

  test('batch size follows the memory budget', () => {
    // 100k x 768 against 1024 centers: each batch (rows x (dim + centers) floats) stays within 64 MiB.
    const rows = batchRows({ dim: 768, centers: 1024 });
    expect(rows * (768 + 1024) * 4).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(rows).toBeGreaterThan(1000);
    expect(batchRows({ dim: 768, centers: 1024, budgetBytes: 1 })).toBe(1);
  });
});

describe('createNearestCenters', () => {
  test('keeps centers resident across calls and frees every tensor on dispose', async () => {
    const dim = 16;
    const centers = randomMatrix(4, 20, dim);
    const before = tf.memory().numTensors;
    const set = createNearestCenters({ centers, dim, batchSize: 50 });
    const a = await set.assign(randomMatrix(5, 120, dim));
    const b = await set.assign(randomMatrix(5, 120, dim));
    expect(Array.from(a.index)).toEqual(Array.from(b.index));
    await set.candidates(randomMatrix(6, 30, dim), { count: 4, offsets: new Float64Array(20) });
    await set.distances(randomMatrix(7, 30, dim));
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    set.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(set.assign(randomMatrix(5, 1, dim))).rejects.toThrow(/dispose/);
  });

  test('candidates are the centers with the lowest distance + offset, best first, with raw distances', async () => {
    const dim = 12;
    const points = randomMatrix(8, 90, dim);
    const centers = randomMatrix(9, 25, dim);
    const rng = createRng(10);
    const offsets = Float64Array.from({ length: 25 }, () => rng.next() * 5);
    const set = createNearestCenters({ centers, dim, batchSize: 32 });
    try {
      const found = await set.candidates(points, { count: 5, offsets });
      const brute = bruteDistances(points, centers, dim);
      brute.forEach((row, i) => {
        const ranked = Array.from(row, (d, c) => ({ c, key: d + offsets[c]! })).sort((x, y) => x.key - y.key);
        for (let r = 0; r < 5; r++) {
          const c = found.index[i * 5 + r]!;
          // Same rank up to float32 ties; raw distance without the offset.
          expect(row[c]! + offsets[c]!).toBeCloseTo(ranked[r]!.key, 3);
          expect(found.dist2[i * 5 + r]).toBeCloseTo(row[c]!, 3);
        }
      });
      const all = await set.distances(points);
      brute.forEach((row, i) => row.forEach((d, c) => expect(all[i * 25 + c]).toBeCloseTo(d, 3)));
      await expect(set.candidates(points, { count: 26 })).rejects.toBeInstanceOf(ClusteringError);
    } finally {
      set.dispose();
    }
  });
});
