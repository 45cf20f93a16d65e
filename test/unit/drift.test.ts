/** Drift planning on synthetic centers: new fine clusters join or spawn experts, big experts split. */
import { beforeAll, describe, expect, test } from 'vitest';
import { planNovelty, planSplit } from '../../src/cluster/drift.js';
import type { CentroidModel } from '../../src/cluster/model.js';
import { ConfigSchema } from '../../src/config.js';
import { initBackend } from '../../src/tensor/backend.js';
import { sphereBlobs } from './cluster-fixtures.js';

const drift = { ...ConfigSchema.parse({}).controller.drift, newClusters: 4, minClusterSize: 10, spawnDistance: 0.6 };
const dim = 16;
const spread = { min: 1, max: 1, mean: 1, cv: 0 };

/** Two experts over the first 4 axes: fine centers e0, e1 -> expert 0; e2, e3 -> expert 1. */
function baseModel(): CentroidModel {
  const axis = (i: number) => Float32Array.from({ length: dim }, (_, d) => (d === i ? 1 : 0));
  const unit = (a: Float32Array, b: Float32Array) => a.map((v, d) => (v + b[d]!) / Math.SQRT2);
  return {
    epoch: 3,
    dim,
    fine: Float32Array.from([...axis(0), ...axis(1), ...axis(2), ...axis(3)]),
    fineIds: Int32Array.from([10, 11, 12, 13]),
    fineToExpert: Int32Array.from([0, 0, 1, 1]),
    coarse: Float32Array.from([...unit(axis(0), axis(1)), ...unit(axis(2), axis(3))]),
    experts: Int32Array.from([0, 1]),
    counts: Float64Array.from([5, 5, 5, 5]),
    createdAt: 0,
    refinedThrough: {},
    origins: {},
    embedder: 'e',
    stats: { sampleSize: 20, inertia: 0, balanced: true, oneStage: false, fineSpread: spread, expertSpread: spread },
  };
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('novelty', () => {
  test('novel pairs near an expert join it; far ones spawn a new expert warm-started from the nearest', async () => {
    const axis = (i: number) => Float64Array.from({ length: dim }, (_, d) => (d === i ? 1 : 0));
    const nearExpert0 = Float64Array.from({ length: dim }, (_, d) => (d === 0 ? 0.9 : d === 1 ? 0.45 : 0));
    // Two far blobs (axes 8 and 9) and one near expert 0.
    const blobs = sphereBlobs({ seed: 1, clusters: 3, perCluster: 40, dim, spread: 0.05, centers: [axis(8), axis(9), nearExpert0] });
    const plan = (await planNovelty({ model: baseModel(), novel: blobs.points, settings: drift, seed: 1, now: 5 }))!;
    expect(plan.model.epoch).toBe(4);
    // New fine ids continue after the old ones, never reused.
    expect(Array.from(plan.model.fineIds).slice(0, 4)).toEqual([10, 11, 12, 13]);
    expect(Math.min(...Array.from(plan.model.fineIds).slice(4))).toBe(14);
    expect(plan.joined[0]?.length).toBeGreaterThanOrEqual(1);
    expect(Object.keys(plan.spawned)).toEqual(['2']);
    expect(plan.spawned[2]!.length).toBeGreaterThanOrEqual(2);
    expect(Array.from(plan.model.experts)).toEqual([0, 1, 2]);
    expect(plan.model.coarse.length).toBe(3 * dim);
    expect(plan.model.origins[2]).toMatch(/^expert-[01]$/);
    // Old fine clusters keep their experts.
    expect(Array.from(plan.model.fineToExpert).slice(0, 4)).toEqual([0, 0, 1, 1]);
    expect(plan.model.fine.length).toBe(plan.model.fineIds.length * dim);
  });

  test('too few novel pairs for one cluster of minClusterSize: nothing to do', async () => {
    const blobs = sphereBlobs({ seed: 2, clusters: 1, perCluster: 5, dim, spread: 0.05 });
    expect(await planNovelty({ model: baseModel(), novel: blobs.points, settings: drift, seed: 1 })).toBeUndefined();
  });
});

describe('split', () => {
  test('an expert far above its share is split by 2-means over its fine centers', async () => {
    const records = new Map([
      [0, 90_000],
      [1, 1_000],
    ]);
    const plan = (await planSplit({ model: baseModel(), records, settings: { ...drift, splitFactor: 1.5, minSplitRecords: 1000 }, seed: 1 }))!;
    expect(plan.expert).toBe(0);
    expect(plan.newExpert).toBe(2);
    expect(plan.moved).toHaveLength(1);
    expect([10, 11]).toContain(plan.moved[0]);
    expect(Array.from(plan.model.experts)).toEqual([0, 1, 2]);
    expect(plan.model.origins[2]).toBe('expert-0');
    const movedRow = Array.from(plan.model.fineIds).indexOf(plan.moved[0]!);
    expect(plan.model.fineToExpert[movedRow]).toBe(2);
  });

  test('balanced experts, small experts or single-cluster experts are not split', async () => {
    const even = new Map([
      [0, 50_000],
      [1, 50_000],
    ]);
    expect(await planSplit({ model: baseModel(), records: even, settings: { ...drift, splitFactor: 1.5, minSplitRecords: 1000 }, seed: 1 })).toBeUndefined();
    const small = new Map([
      [0, 900],
      [1, 10],
    ]);
    expect(await planSplit({ model: baseModel(), records: small, settings: { ...drift, splitFactor: 1.5, minSplitRecords: 1000 }, seed: 1 })).toBeUndefined();
  });
});
