import { describe, expect, test } from 'vitest';
import type { CentroidModel } from '../../src/cluster/model.js';
import { meanDisplacement, refineCenters, refinedEpoch } from '../../src/cluster/online.js';

const unit = (...v: number[]) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};

describe('online refinement (mini-batch k-means)', () => {
  test('moves each center to the running mean of its points, learning rate 1/count, on the unit sphere', () => {
    const fine = Float32Array.from([...unit(1, 0), ...unit(0, 1)]);
    const counts = Float64Array.from([1, 3]);
    const points = Float32Array.from([...unit(1, 1), ...unit(-1, 1)]);
    const out = refineCenters({ fine, counts, dim: 2 }, points, [0, 1]);
    // Center 0: count 1 -> 2, moves halfway to (0.707, 0.707) = (0.854, 0.354), renormalised.
    const c0 = unit(1 + Math.SQRT1_2, Math.SQRT1_2);
    expect(out.fine[0]).toBeCloseTo(c0[0]!, 5);
    expect(out.fine[1]).toBeCloseTo(c0[1]!, 5);
    // Center 1: count 3 -> 4, moves a quarter of the way to (-0.707, 0.707).
    const c1 = unit(-Math.SQRT1_2 / 4, 1 + (Math.SQRT1_2 - 1) / 4);
    expect(out.fine[2]).toBeCloseTo(c1[0]!, 5);
    expect(out.fine[3]).toBeCloseTo(c1[1]!, 5);
    expect(Array.from(out.counts)).toEqual([2, 4]);
    expect(out.applied).toBe(2);
    // Pure: the inputs are untouched.
    expect(Array.from(fine)).toEqual(Array.from(Float32Array.from([...unit(1, 0), ...unit(0, 1)])));
    expect(Array.from(counts)).toEqual([1, 3]);
  });

  test('many points drawn around a direction pull a stale center onto it', () => {
    const dim = 3;
    const target = unit(0.2, 0.9, 0.4);
    const n = 2000;
    const points = new Float32Array(n * dim);
    let s = 7;
    const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.1;
    for (let i = 0; i < n; i++) {
      const p = unit(target[0]! + rand(), target[1]! + rand(), target[2]! + rand());
      points.set(p, i * dim);
    }
    const start = Float32Array.from(unit(1, 0, 0));
    const out = refineCenters({ fine: start, counts: Float64Array.from([1]), dim }, points, new Int32Array(n));
    expect(meanDisplacement(out.fine, Float32Array.from(target), dim)).toBeLessThan(0.01);
  });

  test('meanDisplacement is the mean row distance', () => {
    const a = Float32Array.from([0, 0, 1, 1]);
    const b = Float32Array.from([3, 4, 1, 1]);
    expect(meanDisplacement(a, b, 2)).toBeCloseTo(2.5);
  });

  test('a refined epoch keeps ids and the fine->expert map, and bumps the epoch', () => {
    const base = {
      epoch: 4,
      dim: 2,
      fine: Float32Array.from([1, 0, 0, 1]),
      fineIds: Int32Array.from([10, 11]),
      fineToExpert: Int32Array.from([0, 1]),
      coarse: Float32Array.from([1, 0, 0, 1]),
      experts: Int32Array.from([0, 1]),
      counts: Float64Array.from([5, 5]),
      createdAt: 1,
      refinedThrough: {},
      origins: {},
      embedder: 'e',
      stats: { sampleSize: 10, inertia: 1, balanced: true, oneStage: false, fineSpread: { min: 5, max: 5, mean: 5, cv: 0 }, expertSpread: { min: 5, max: 5, mean: 5, cv: 0 } },
    } satisfies CentroidModel;
    const refined = refineCenters(base, Float32Array.from([0.6, 0.8]), [1]);
    const next = refinedEpoch(base, refined, 99);
    expect(next.epoch).toBe(5);
    expect(next.fineIds).toBe(base.fineIds);
    expect(next.fineToExpert).toBe(base.fineToExpert);
    expect(next.fine).not.toBe(base.fine);
    expect(next.createdAt).toBe(99);
  });
});
