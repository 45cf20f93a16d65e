import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { auction, type AuctionProblem } from '../../src/cluster/auction.js';
import { balancedAssign, balancedCapacity } from '../../src/cluster/balanced.js';
import { nearestCenters } from '../../src/cluster/nearest.js';
import { createRng } from '../../src/cluster/rng.js';
import { initBackend } from '../../src/tensor/backend.js';
import { sphereBlobs } from './cluster-fixtures.js';

beforeAll(async () => {
  await initBackend('wasm');
});

/** An auction over a dense cost matrix, each point seeing only its K cheapest clusters at a time. */
function problemFromCosts(costs: Float64Array[], options: { capacity: number; K: number; mode: 'sync' | 'batch'; eps?: number }): AuctionProblem {
  const n = costs.length;
  const k = costs[0]!.length;
  const { K } = options;
  const index = new Int32Array(n * K);
  const cost = new Float32Array(n * K);
  const bound = new Float64Array(n);
  const rank = (i: number, prices: Float64Array): void => {
    const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => costs[i]![a]! + prices[a]! - (costs[i]![b]! + prices[b]!) || a - b);
    for (let c = 0; c < K; c++) {
      index[i * K + c] = order[c]!;
      cost[i * K + c] = costs[i]![order[c]!]!;
    }
    bound[i] = K < k ? -(costs[i]![order[K]!]! + prices[order[K]!]!) : -Infinity;
  };
  for (let i = 0; i < n; i++) rank(i, new Float64Array(k));
  const eps = options.eps ?? 1e-4;
  return {
    points: n,
    clusters: k,
    capacity: options.capacity,
    candidates: K,
    index,
    cost,
    bound,
    epsilon: { start: 0.05, end: eps, factor: 4 },
    refresh:
      options.mode === 'sync'
        ? { sync: (row, prices) => rank(row, prices) }
        : { batch: async (rows, prices) => rows.forEach((row) => rank(row, prices)) },
  };
}

/** Minimum total cost over all assignments with at most `capacity` points per cluster. */
function bruteOptimum(costs: Float64Array[], capacity: number): number {
  const n = costs.length;
  const k = costs[0]!.length;
  const load = new Int32Array(k);
  let best = Infinity;
  const visit = (i: number, total: number): void => {
    if (total >= best) return;
    if (i === n) {
      best = total;
      return;
    }
    for (let j = 0; j < k; j++) {
      if (load[j]! >= capacity) continue;
      load[j]!++;
      visit(i + 1, total + costs[i]![j]!);
      load[j]!--;
    }
  };
  visit(0, 0);
  return best;
}

/**
 * The same optimum by the Hungarian method (shortest augmenting paths with potentials) on the
 * expanded problem where each cluster is `capacity` identical slots: exact for sizes brute force cannot reach.
 */
function hungarianOptimum(costs: Float64Array[], capacity: number): number {
  const n = costs.length;
  const k = costs[0]!.length;
  const m = k * capacity;
  const a = (i: number, s: number): number => costs[i - 1]![Math.floor((s - 1) / capacity)]!;
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const owner = new Int32Array(m + 1);
  const way = new Int32Array(m + 1);
  for (let i = 1; i <= n; i++) {
    owner[0] = i;
    let s0 = 0;
    const minv = new Float64Array(m + 1).fill(Infinity);
    const used = new Uint8Array(m + 1);
    do {
      used[s0] = 1;
      const i0 = owner[s0]!;
      let delta = Infinity;
      let s1 = 0;
      for (let s = 1; s <= m; s++) {
        if (used[s]) continue;
        const cur = a(i0, s) - u[i0]! - v[s]!;
        if (cur < minv[s]!) {
          minv[s] = cur;
          way[s] = s0;
        }
        if (minv[s]! < delta) {
          delta = minv[s]!;
          s1 = s;
        }
      }
      for (let s = 0; s <= m; s++) {
        if (used[s]) {
          u[owner[s]!]! += delta;
          v[s]! -= delta;
        } else minv[s]! -= delta;
      }
      s0 = s1;
    } while (owner[s0] !== 0);
    do {
      const s1 = way[s0]!;
      owner[s0] = owner[s1]!;
      s0 = s1;
    } while (s0 !== 0);
  }
  let best = 0;
  for (let s = 1; s <= m; s++) if (owner[s]! > 0) best += a(owner[s]!, s);
  return best;
}

const total = (costs: Float64Array[], assignment: Int32Array): number => costs.reduce((s, row, i) => s + row[assignment[i]!]!, 0);

describe('auction (capacitated assignment)', () => {
  test('matches the brute-force optimum within its reported gap bound, on 300 random instances', async () => {
    const rng = createRng(11);
    let exactChecks = 0;
    for (let trial = 0; trial < 300; trial++) {
      const n = 4 + rng.nextInt(5);
      const k = 2 + rng.nextInt(3);
      // Tight (n/k rounded up) or loose capacity, with few candidates so refreshes happen.
      const capacity = Math.ceil(n / k) + (trial % 3 === 0 ? 1 : 0);
      const costs = Array.from({ length: n }, () => Float64Array.from({ length: k }, () => Math.round(rng.next() * 1000) / 1000));
      const mode = trial % 2 === 0 ? 'sync' : 'batch';
      const result = await auction(problemFromCosts(costs, { capacity, K: 1 + rng.nextInt(2), mode }));
      const loads = new Int32Array(k);
      for (const j of result.assignment) loads[j]!++;
      expect(Math.max(...loads)).toBeLessThanOrEqual(capacity);
      const optimum = bruteOptimum(costs, capacity);
      const got = total(costs, result.assignment);
      expect(got).toBeGreaterThanOrEqual(optimum - 1e-9);
      expect(got).toBeLessThanOrEqual(optimum + result.gapBound + 1e-6);
      // Costs are on a 1e-3 grid and n * eps < 1e-3: a tight symmetric instance must be exactly optimal.
      if (n === k * capacity) {
        expect(got).toBeCloseTo(optimum, 6);
        exactChecks++;
      }
    }
    expect(exactChecks).toBeGreaterThan(30);
  });

  test('matches the Hungarian optimum on larger instances with few candidates per point', async () => {
    const rng = createRng(12);
    for (let trial = 0; trial < 30; trial++) {
      const n = 20 + rng.nextInt(40);
      const k = 3 + rng.nextInt(6);
      const capacity = Math.ceil(n / k) + (trial % 2);
      // Clustered preferences (most points like the same few clusters) force long chains of evictions.
      const costs = Array.from({ length: n }, () => Float64Array.from({ length: k }, (_, j) => Math.round((rng.next() + (j < 2 ? 0 : 0.8)) * 1000) / 1000));
      const result = await auction(problemFromCosts(costs, { capacity, K: 2, mode: trial % 2 === 0 ? 'sync' : 'batch' }));
      const loads = new Int32Array(k);
      for (const j of result.assignment) loads[j]!++;
      expect(Math.max(...loads)).toBeLessThanOrEqual(capacity);
      const optimum = hungarianOptimum(costs, capacity);
      const got = total(costs, result.assignment);
      expect(got).toBeGreaterThanOrEqual(optimum - 1e-9);
      expect(got).toBeLessThanOrEqual(optimum + result.gapBound + 1e-6);
      if (n === k * capacity) expect(got).toBeCloseTo(optimum, 6);
      expect(hungarianOptimum(costs.slice(0, 8), capacity)).toBeCloseTo(bruteOptimum(costs.slice(0, 8), capacity), 9);
    }
  });

  test('identical points split evenly (a price war among equals terminates)', async () => {
    const costs = Array.from({ length: 12 }, () => Float64Array.from([0.5, 0.5, 0.5, 0.5]));
    const result = await auction(problemFromCosts(costs, { capacity: 3, K: 2, mode: 'sync' }));
    const loads = new Int32Array(4);
    for (const j of result.assignment) loads[j]!++;
    expect(Array.from(loads)).toEqual([3, 3, 3, 3]);
  });

  test('refuses a capacity that cannot hold every point', async () => {
    const costs = Array.from({ length: 5 }, () => Float64Array.from([0, 1]));
    await expect(auction(problemFromCosts(costs, { capacity: 2, K: 2, mode: 'sync' }))).rejects.toThrow(/cannot hold/);
  });
});

describe('balancedAssign', () => {
  // Very unequal blobs: nearest-center assignment would put 600 points on one center.
  const dim = 8;
  const data = sphereBlobs({ seed: 3, clusters: 3, perCluster: [600, 150, 50], dim, spread: 0.3 });

  test('capacity is ceil(n/k * (1 + tolerance))', () => {
    expect(balancedCapacity(800, 3, 0)).toBe(267);
    expect(balancedCapacity(800, 4, 0)).toBe(200);
    expect(balancedCapacity(800, 4, 0.1)).toBe(220);
    expect(() => balancedCapacity(800, 4, -1)).toThrow();
  });

  test('holds every cluster to its capacity, dense and batched refresh alike, without leaking tensors', async () => {
    const before = tf.memory().numTensors;
    const dense = await balancedAssign({ points: data.points, dim, centers: data.centers, candidates: 2 });
    const batched = await balancedAssign({ points: data.points, dim, centers: data.centers, candidates: 2, denseBudgetBytes: 0 });
    expect(tf.memory().numTensors).toBe(before);
    expect(dense.stats.dense).toBe(true);
    expect(batched.stats.dense).toBe(false);
    for (const result of [dense, batched]) {
      expect(result.capacity).toBe(267);
      const loads = new Int32Array(3);
      for (const j of result.index) loads[j]!++;
      // 800 points into 3 x 267 slots: at least 266 each.
      for (const l of loads) expect(l).toBeGreaterThanOrEqual(266);
      expect(Math.max(...loads)).toBeLessThanOrEqual(267);
      expect(result.stats.refreshed).toBeGreaterThan(0);
    }
    const cost = (r: { dist2: Float32Array }) => r.dist2.reduce((a, b) => a + b, 0);
    // Both solve the same problem: each within the other's optimality gap.
    expect(Math.abs(cost(dense) - cost(batched))).toBeLessThanOrEqual(Math.max(dense.stats.gapBound, batched.stats.gapBound) + 1e-3);
  });

  test('reported distances are the distances to the assigned centers', async () => {
    const result = await balancedAssign({ points: data.points, dim, centers: data.centers, tolerance: 0.2 });
    for (let i = 0; i < 800; i += 37) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += (data.points[i * dim + j]! - data.centers[result.index[i]! * dim + j]!) ** 2;
      expect(result.dist2[i]).toBeCloseTo(s, 4);
    }
  });

  test('with a capacity that never binds it is the nearest-center assignment', async () => {
    const plain = await nearestCenters({ points: data.points, dim, centers: data.centers });
    const loose = await balancedAssign({ points: data.points, dim, centers: data.centers, tolerance: 5 });
    expect(Array.from(loose.index)).toEqual(Array.from(plain.index));
  });

  test('warm-started prices give the same balanced sizes', async () => {
    const first = await balancedAssign({ points: data.points, dim, centers: data.centers });
    const again = await balancedAssign({ points: data.points, dim, centers: data.centers, initialPrices: first.prices });
    const loads = new Int32Array(3);
    for (const j of again.index) loads[j]!++;
    expect(Math.max(...loads)).toBeLessThanOrEqual(267);
    const cost = (r: { dist2: Float32Array }) => r.dist2.reduce((a, b) => a + b, 0);
    expect(Math.abs(cost(first) - cost(again))).toBeLessThanOrEqual(Math.max(first.stats.gapBound, again.stats.gapBound) + 1e-3);
  });
});
