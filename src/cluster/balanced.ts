/**
 * Balanced assignment for balanced k-means: every cluster takes at most
 * capacity = ceil(n / k * (1 + tolerance)) points (tolerance 0: the official MoDE setting, ~n/k each),
 * minimising the total squared distance with the auction of auction.ts.
 *
 * Each point bids over its K nearest centers (ranked at the current prices); a point whose candidates
 * all became too expensive is "starving" and gets new candidates. When the n x k distance matrix fits
 * `denseBudgetBytes` (100k x 1024 is 400 MB) it is read back once and starving points are re-ranked on
 * the spot from their row (O(k), no backend round trip); otherwise starving points are re-ranked in
 * batches on the backend, and the auction waits for each batch.
 */
import { auction, type AuctionProblem } from './auction.js';
import { ClusteringError } from './errors.js';
import { createNearestCenters, type CenterSet } from './nearest.js';
import { rowCount } from './vectors.js';

export interface BalancedAssignmentOptions {
  points: Float32Array;
  dim: number;
  /** Raw centers, or a resident center set owned by the caller (it is not disposed here). */
  centers: Float32Array | CenterSet;
  /** Allowed excess over n/k (0.1 = clusters may hold up to 10% more than the mean). Default 0. */
  tolerance?: number;
  /** Nearest centers each point bids on before its candidates are recomputed. Default 16. */
  candidates?: number;
  /** Final auction epsilon, absolute. Default 1e-4 of the cost range. */
  epsilon?: number;
  /**
   * Cluster prices from a previous call (`prices` of its result). Lloyd iterations move centers only a
   * little, so the previous prices are close to the new equilibrium and most points keep their first bid.
   */
  initialPrices?: Float64Array;
  /** Keep all n x k distances in memory up to this size. Default 1 GiB. */
  denseBudgetBytes?: number;
}

export interface BalancedAssignment {
  index: Int32Array;
  /** Squared distance of each point to its assigned center. */
  dist2: Float32Array;
  capacity: number;
  /** Final price of each cluster (its cheapest slot); pass as initialPrices to warm-start. */
  prices: Float64Array;
  stats: { bids: number; refreshed: number; phases: number; gapBound: number; dense: boolean };
}

const EPS_START_FRACTION = 1 / 50;
const EPS_END_FRACTION = 1e-4;
const EPS_FACTOR = 8;
const DEFAULT_DENSE_BUDGET = 1024 * 1024 * 1024;

export function balancedCapacity(n: number, k: number, tolerance: number): number {
  if (!(tolerance >= 0)) throw new ClusteringError('parameter', `balance tolerance must be >= 0, got ${tolerance}`);
  // The epsilon guards against n/k*(1+tol) landing a hair above an integer through rounding.
  return Math.max(1, Math.ceil((n / k) * (1 + tolerance) - 1e-9));
}

export async function balancedAssign(options: BalancedAssignmentOptions): Promise<BalancedAssignment> {
  const { points, dim } = options;
  const n = rowCount(points, dim, 'points');
  const owned = options.centers instanceof Float32Array;
  const set = options.centers instanceof Float32Array ? createNearestCenters({ centers: options.centers, dim }) : options.centers;
  try {
    const k = set.count;
    const capacity = balancedCapacity(n, k, options.tolerance ?? 0);
    const K = Math.min(k, options.candidates ?? 16);
    if (!(Number.isInteger(K) && K >= 1)) throw new ClusteringError('parameter', `candidates must be a positive integer, got ${options.candidates}`);
    const prices = options.initialPrices;
    if (prices && prices.length !== k) throw new ClusteringError('shape', `initialPrices: expected ${k} values, got ${prices.length}`);
    if (n === 0) {
      return { index: new Int32Array(0), dist2: new Float32Array(0), capacity, prices: new Float64Array(k), stats: { bids: 0, refreshed: 0, phases: 0, gapBound: 0, dense: false } };
    }

    const lists = new CandidateLists(n, k, K);
    const dense = n * k * 4 <= (options.denseBudgetBytes ?? DEFAULT_DENSE_BUDGET);
    let refresh: AuctionProblem['refresh'];
    if (dense) {
      const all = await set.distances(points);
      for (let i = 0; i < n; i++) lists.fromRow(i, all, i, prices);
      refresh = { sync: (row, current) => lists.fromRow(row, all, row, current) };
    } else {
      lists.absorb(null, await set.candidates(points, { count: lists.width, ...(prices ? { offsets: prices } : {}) }), prices ?? null);
      refresh = {
        async batch(rows, current) {
          const subset = new Float32Array(rows.length * dim);
          for (let r = 0; r < rows.length; r++) subset.set(points.subarray(rows[r]! * dim, (rows[r]! + 1) * dim), r * dim);
          lists.absorb(rows, await set.candidates(subset, { count: lists.width, offsets: current }), current);
        },
      };
    }
    const range = spread(lists.cost, lists.bound);
    const end = options.epsilon ?? range * EPS_END_FRACTION;
    if (!(end > 0)) throw new ClusteringError('parameter', `epsilon must be > 0, got ${options.epsilon}`);

    const result = await auction({
      points: n,
      clusters: k,
      capacity,
      candidates: K,
      index: lists.index,
      cost: lists.cost,
      bound: lists.bound,
      refresh,
      // Also from warm prices: a fine first epsilon would crawl towards prices that moved with the centers.
      epsilon: { start: Math.max(end, range * EPS_START_FRACTION), end, factor: EPS_FACTOR },
      ...(prices ? { initialPrices: prices } : {}),
    });
    return {
      index: result.assignment,
      dist2: result.cost,
      capacity,
      prices: result.prices,
      stats: { bids: result.bids, refreshed: result.refreshed, phases: result.phases, gapBound: result.gapBound, dense },
    };
  } finally {
    if (owned) set.dispose();
  }
}

/**
 * Per point, the K best clusters by cost + price (best first) and an upper bound on -cost - price
 * over all the others (the (K+1)-th best; -Infinity when K covers every cluster).
 */
class CandidateLists {
  readonly index: Int32Array;
  readonly cost: Float32Array;
  readonly bound: Float64Array;
  /** Columns fetched per point: one more than K gives the bound. */
  readonly width: number;
  private readonly keys: Float64Array;
  private readonly picks: Int32Array;

  constructor(
    n: number,
    private readonly k: number,
    private readonly K: number,
  ) {
    this.index = new Int32Array(n * K);
    this.cost = new Float32Array(n * K);
    this.bound = new Float64Array(n).fill(-Infinity);
    this.width = Math.min(k, K + 1);
    this.keys = new Float64Array(this.width);
    this.picks = new Int32Array(this.width);
  }

  /** Selects point i's candidates from its full distance row (row `r` of `all`). */
  fromRow(i: number, all: Float32Array, r: number, prices: Float64Array | undefined): void {
    const { k, K, width, keys, picks } = this;
    const o = r * k;
    let filled = 0;
    for (let j = 0; j < k; j++) {
      const key = all[o + j]! + (prices ? prices[j]! : 0);
      if (filled === width && key >= keys[width - 1]!) continue;
      // Insertion into the short sorted list (width ~17; most keys fail the test above).
      let p = filled < width ? filled++ : width - 1;
      while (p > 0 && keys[p - 1]! > key) {
        keys[p] = keys[p - 1]!;
        picks[p] = picks[p - 1]!;
        p--;
      }
      keys[p] = key;
      picks[p] = j;
    }
    for (let c = 0; c < K; c++) {
      this.index[i * K + c] = picks[c]!;
      this.cost[i * K + c] = all[o + picks[c]!]!;
    }
    this.bound[i] = width > K ? -keys[K]! : -Infinity;
  }

  /** Takes backend candidates (width columns, raw distances) for `rows` (null: all points in order). */
  absorb(rows: Int32Array | null, found: { index: Int32Array; dist2: Float32Array }, prices: Float64Array | null): void {
    const { K, width } = this;
    const m = rows ? rows.length : this.bound.length;
    for (let r = 0; r < m; r++) {
      const i = rows ? rows[r]! : r;
      for (let c = 0; c < K; c++) {
        this.index[i * K + c] = found.index[r * width + c]!;
        this.cost[i * K + c] = found.dist2[r * width + c]!;
      }
      if (width > K) {
        const j = found.index[r * width + K]!;
        this.bound[i] = -found.dist2[r * width + K]! - (prices ? prices[j]! : 0);
      }
    }
  }
}

/** Range of the costs (and of the negated finite bounds); epsilon is scaled to it. */
function spread(values: Float32Array, bounds?: Float64Array): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (bounds) for (const b of bounds) if (b > -Infinity && -b > hi) hi = -b;
  // Identical points and centers leave no range: any positive epsilon then works.
  return hi > lo ? hi - lo : Math.max(hi, 1);
}
