import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { ClusteringError } from '../../src/cluster/errors.js';
import { adjustedRandIndex, clusterSizes, purity } from '../../src/cluster/metrics.js';
import { nearestCenters } from '../../src/cluster/nearest.js';
import { buildCentroidModel, ensureEveryExpert, oneStageClustering, twoStageClustering } from '../../src/cluster/two-stage.js';
import { initBackend } from '../../src/tensor/backend.js';
import { hierarchicalBlobs } from './cluster-fixtures.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const dim = 16;
// 4 well separated topics, each made of 4 nearby sub-topics of 50 points.
const data = hierarchicalBlobs({ seed: 5, groups: 4, perGroup: 4, perCluster: 50, dim, subSpread: 0.6, spread: 0.15 });
const settings = { points: data.points, dim, fine: 16, experts: 4, balanced: true, seed: 3, maxIterations: 30, tolerance: 1e-5 };

describe('twoStageClustering', () => {
  test('fine clusters find the sub-topics, experts the topics (as routed: nearest fine center)', async () => {
    const before = tf.memory().numTensors;
    const result = await twoStageClustering(settings);
    expect(tf.memory().numTensors).toBe(before);
    const routed = await nearestCenters({ points: data.points, dim, centers: result.fineCenters });
    expect(adjustedRandIndex(routed.index, data.labels)).toBeGreaterThan(0.9);
    const expertOfPoint = Array.from(routed.index, (row) => result.fineToExpert[row]!);
    expect(adjustedRandIndex(expertOfPoint, data.groups)).toBeGreaterThan(0.95);
    expect(purity(expertOfPoint, data.groups)).toBeGreaterThan(0.98);
    // Sizes and stats describe that routing.
    expect(Array.from(result.fineSizes)).toEqual(Array.from(clusterSizes(routed.index, 16)));
    expect(Array.from(result.expertSizes)).toEqual(Array.from(clusterSizes(expertOfPoint, 4)));
    expect(result.inertia).toBeCloseTo(routed.dist2.reduce((a, b) => a + b, 0), 4);
    expect(result.expertSpread.mean).toBe(200);
    expect(result.expertSpread.cv).toBeLessThan(0.1);
    expect(result.sampleSize).toBe(800);
    expect(result.oneStage).toBe(false);
    expect(result.coarseCenters.length).toBe(4 * dim);
  });

  test("expertAssignment 'balanced' gives every expert m/n fine centers (the official code's predict)", async () => {
    const result = await twoStageClustering({ ...settings, expertAssignment: 'balanced' });
    expect(Array.from(clusterSizes(result.fineToExpert, 4))).toEqual([4, 4, 4, 4]);
  });

  test('an expert that no fine center is nearest to takes the closest fine center from a shared expert', () => {
    const fine = Float32Array.from([1, 0, 0.99, 0.14, 0, 1]);
    const coarse = Float32Array.from([1, 0, 0, 1, -1, 0]);
    // Nearest: fine 0 and 1 -> expert 0, fine 2 -> expert 1, expert 2 empty.
    const repaired = ensureEveryExpert({ fine, coarse, dim: 2, fineToExpert: Int32Array.from([0, 0, 1]) });
    expect(Array.from(repaired)).toEqual([0, 2, 1]);
  });

  test('more experts than fine centers is refused', async () => {
    await expect(twoStageClustering({ ...settings, fine: 3, experts: 4 })).rejects.toBeInstanceOf(ClusteringError);
  });

  test('is deterministic for a seed', async () => {
    const a = await twoStageClustering(settings);
    const b = await twoStageClustering(settings);
    expect(Array.from(b.fineCenters)).toEqual(Array.from(a.fineCenters));
    expect(Array.from(b.fineToExpert)).toEqual(Array.from(a.fineToExpert));
  });
});

describe('oneStageClustering', () => {
  test('clusters points straight into the experts: each expert is one cluster', async () => {
    const result = await oneStageClustering({ ...settings, balanced: false });
    expect(Array.from(result.fineToExpert)).toEqual([0, 1, 2, 3]);
    expect(Array.from(result.coarseCenters)).toEqual(Array.from(result.fineCenters));
    expect(result.oneStage).toBe(true);
    const routed = await nearestCenters({ points: data.points, dim, centers: result.fineCenters });
    expect(adjustedRandIndex(routed.index, data.groups)).toBeGreaterThan(0.95);
  });
});

describe('buildCentroidModel', () => {
  test('numbers fine ids and experts from 0 and starts the online counts at the routed sizes', async () => {
    const clustering = await twoStageClustering(settings);
    const model = buildCentroidModel({ clustering, epoch: 1, embedder: 'hashed:abc', createdAt: 42 });
    expect(Array.from(model.fineIds)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(Array.from(model.experts)).toEqual([0, 1, 2, 3]);
    expect(Array.from(model.counts)).toEqual(Array.from(clustering.fineSizes));
    expect(Array.from(model.fineToExpert)).toEqual(Array.from(clustering.fineToExpert));
    expect(model).toMatchObject({ epoch: 1, dim, embedder: 'hashed:abc', createdAt: 42, refinedThrough: {} });
    expect(model.stats).toEqual({
      sampleSize: 800,
      inertia: clustering.inertia,
      balanced: true,
      oneStage: false,
      fineSpread: clustering.fineSpread,
      expertSpread: clustering.expertSpread,
    });
  });
});
