import { describe, expect, test } from 'vitest';
import { adjustedRandIndex, classCohesion, clusterSizes, purity, sizeSpread } from '../../src/cluster/metrics.js';
import { reservoirSlot } from '../../src/cluster/reservoir.js';
import { createRng } from '../../src/cluster/rng.js';

describe('adjustedRandIndex', () => {
  test('matches scikit-learn on reference cases', () => {
    // sklearn.metrics.adjusted_rand_score on the same inputs.
    expect(adjustedRandIndex([0, 0, 1, 1], [0, 0, 1, 2])).toBeCloseTo(0.5714285714285714, 12);
    expect(adjustedRandIndex([0, 0, 1, 1], [0, 1, 0, 1])).toBeCloseTo(-0.5, 12);
    expect(adjustedRandIndex([0, 0, 0, 1, 1, 1, 2, 2, 2], [0, 0, 1, 1, 1, 2, 2, 2, 0])).toBeCloseTo(0.1111111111111111, 12);
    expect(adjustedRandIndex([0, 1, 2, 3], [0, 0, 0, 0])).toBe(0);
  });

  test('is 1 for the same partition under other label names, and symmetric', () => {
    expect(adjustedRandIndex([0, 0, 1, 1, 2], [7, 7, 3, 3, 9])).toBe(1);
    expect(adjustedRandIndex([5, 5, 5], [1, 1, 1])).toBe(1);
    const a = [0, 1, 1, 2, 2, 2, 0, 1];
    const b = [1, 1, 0, 2, 2, 0, 0, 1];
    expect(adjustedRandIndex(a, b)).toBeCloseTo(adjustedRandIndex(b, a), 12);
  });

  test('is near 0 for independent random labelings', () => {
    const rng = createRng(4);
    const a = Array.from({ length: 5000 }, () => rng.nextInt(5));
    const b = Array.from({ length: 5000 }, () => rng.nextInt(5));
    expect(Math.abs(adjustedRandIndex(a, b))).toBeLessThan(0.01);
    expect(() => adjustedRandIndex([0], [0, 1])).toThrow(RangeError);
  });
});

describe('purity and sizes', () => {
  test('purity counts the majority label of each predicted cluster', () => {
    // Cluster 0: labels a,a,b -> 2; cluster 1: b,b -> 2; cluster 2: c -> 1.
    expect(purity([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 2])).toBeCloseTo(5 / 6, 12);
    expect(purity([0, 0, 0, 0], [0, 1, 2, 3])).toBe(0.25);
    expect(purity([], [])).toBe(1);
  });

  test('classCohesion averages, per class, the share in its largest cluster', () => {
    // Class 0: 3 of 4 in cluster 1 -> 0.75; class 1: 2 of 2 in cluster 0 -> 1; mean 0.875, whatever the sizes.
    expect(classCohesion([1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1])).toBeCloseTo(0.875, 12);
    // One cluster per class is perfect cohesion even though no cluster is pure in the other direction.
    expect(classCohesion([0, 0, 0, 0], [0, 1, 2, 3])).toBe(1);
    expect(purity([0, 0, 0, 0], [0, 1, 2, 3])).toBe(0.25);
    // A class spread evenly over 4 clusters: 1/4.
    expect(classCohesion([0, 1, 2, 3], [5, 5, 5, 5])).toBe(0.25);
    expect(classCohesion([], [])).toBe(1);
    expect(() => classCohesion([0], [0, 1])).toThrow(RangeError);
  });

  test('a random split into n gives about 1/n cohesion', () => {
    const rng = createRng(11);
    const labels = Array.from({ length: 60_000 }, (_, i) => i % 10);
    const assignment = labels.map(() => rng.nextInt(4));
    const c = classCohesion(assignment, labels);
    // 1/4 plus the sampling excess of the largest of four shares of 6,000 points (about 0.006).
    expect(c).toBeGreaterThan(0.25);
    expect(c).toBeLessThan(0.265);
  });

  test('clusterSizes and sizeSpread', () => {
    expect(Array.from(clusterSizes([2, 0, 2, 2], 4))).toEqual([1, 0, 3, 0]);
    expect(() => clusterSizes([4], 4)).toThrow(RangeError);
    const spread = sizeSpread([0, 0, 1, 1, 1, 1], 2);
    expect(spread).toMatchObject({ min: 2, max: 4, mean: 3 });
    expect(spread.cv).toBeCloseTo(1 / 3, 12);
  });
});

describe('seedable rng and reservoir sampling', () => {
  test('the same seed replays the same stream; others differ; values stay in range', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xs = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(xs);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
    const rng = createRng(1);
    let mean = 0;
    let sq = 0;
    for (let i = 0; i < 20000; i++) {
      const g = rng.nextGaussian();
      mean += g / 20000;
      sq += (g * g) / 20000;
    }
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(sq - 1)).toBeLessThan(0.05);
  });

  test('Algorithm R fills the first slots, then keeps every item with probability capacity/seen', () => {
    const rng = createRng(9);
    expect([0, 1, 2].map((seen) => reservoirSlot({ seen, capacity: 3, rng }))).toEqual([0, 1, 2]);
    // 20-item streams into 5 slots, 4000 times: each item should survive 25% of the time.
    const kept = new Array<number>(20).fill(0);
    const trials = 4000;
    for (let t = 0; t < trials; t++) {
      const slots = new Array<number>(5).fill(-1);
      for (let item = 0; item < 20; item++) {
        const slot = reservoirSlot({ seen: item, capacity: 5, rng });
        if (slot >= 0) slots[slot] = item;
      }
      for (const item of slots) kept[item]!++;
    }
    // Standard error sqrt(0.25 * 0.75 / 4000) = 0.0068: four of them.
    for (const k of kept) expect(Math.abs(k / trials - 0.25)).toBeLessThan(0.028);
    expect(reservoirSlot({ seen: 10, capacity: 0, rng })).toBe(-1);
    expect(() => reservoirSlot({ seen: -1, capacity: 3, rng })).toThrow(RangeError);
  });
});
