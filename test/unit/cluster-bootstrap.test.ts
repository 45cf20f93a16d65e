import { beforeAll, describe, expect, test } from 'vitest';
import { clusterSample } from '../../src/cluster/bootstrap.js';
import { ConfigSchema } from '../../src/config.js';
import { initBackend } from '../../src/tensor/backend.js';
import { sphereBlobs } from './cluster-fixtures.js';

const settings = { ...ConfigSchema.parse({}).clustering, fine: 12, experts: 3, maxIterations: 15 };
const rows = (points: Float32Array, dim: number) => Array.from({ length: points.length / dim }, (_, i) => points.slice(i * dim, (i + 1) * dim));

beforeAll(async () => {
  await initBackend('wasm');
});

describe('clusterSample: from a sample to a centroid epoch', () => {
  const dim = 16;
  const blobs = sphereBlobs({ seed: 5, clusters: 3, perCluster: 120, dim, spread: 0.15 });
  const sample = rows(blobs.points, dim);

  test('a first epoch numbers fine clusters 0..m-1 and experts 0..n-1, experts follow the planted topics', async () => {
    const model = await clusterSample({ sample, epoch: 1, settings, embedder: 'test', now: 7 });
    expect(model.epoch).toBe(1);
    expect(Array.from(model.fineIds)).toEqual([...Array(12).keys()]);
    expect(Array.from(model.experts)).toEqual([0, 1, 2]);
    expect(model.createdAt).toBe(7);
    expect(model.embedder).toBe('test');
    expect(model.stats.sampleSize).toBe(360);
    // Each planted blob's fine clusters all belong to one expert.
    const byBlob = new Map<number, Set<number>>();
    const { index } = await import('../../src/cluster/nearest.js').then((m) => m.nearestCenters({ points: blobs.points, dim, centers: model.fine }));
    index.forEach((row, i) => {
      const blob = blobs.labels[i]!;
      if (!byBlob.has(blob)) byBlob.set(blob, new Set());
      byBlob.get(blob)!.add(model.fineToExpert[row]!);
    });
    for (const experts of byBlob.values()) expect(experts.size).toBe(1);
  });

  test('a recluster continues fine ids after the previous epoch and keeps expert ids by similarity', async () => {
    const first = await clusterSample({ sample, epoch: 1, settings, embedder: 'test' });
    // Relabel the previous experts so that keeping ids is visible: 10, 20, 30.
    const previous = { ...first, experts: Int32Array.from([10, 20, 30]), fineToExpert: Int32Array.from(first.fineToExpert, (e) => [10, 20, 30][e]!) };
    const second = await clusterSample({ sample, epoch: 2, settings: { ...settings, seed: 99 }, embedder: 'test', previous });
    expect(Math.min(...second.fineIds)).toBe(12);
    expect(new Set(second.experts)).toEqual(new Set([10, 20, 30]));
    // The expert that holds a given point keeps its id across the recluster.
    const { nearestCenters } = await import('../../src/cluster/nearest.js');
    const before = await nearestCenters({ points: blobs.points, dim, centers: previous.fine });
    const after = await nearestCenters({ points: blobs.points, dim, centers: second.fine });
    let same = 0;
    before.index.forEach((row, i) => (same += previous.fineToExpert[row] === second.fineToExpert[after.index[i]!] ? 1 : 0));
    expect(same / before.index.length).toBeGreaterThan(0.95);
  });

  test('one-stage: one fine cluster per expert', async () => {
    const model = await clusterSample({ sample, epoch: 1, settings: { ...settings, oneStage: true }, embedder: 'test' });
    expect(model.fineIds.length).toBe(3);
    expect(Array.from(model.fineToExpert)).toEqual([0, 1, 2]);
    expect(model.stats.oneStage).toBe(true);
  });

  test('an empty sample or rows of different dims are refused clearly', async () => {
    await expect(clusterSample({ sample: [], epoch: 1, settings, embedder: 'test' })).rejects.toThrow(/empty sample/);
    await expect(clusterSample({ sample: [new Float32Array(4), new Float32Array(3)], epoch: 1, settings, embedder: 'test' })).rejects.toThrow(/dim 3, expected 4/);
  });
});
