/**
 * Capacitated auction assignment (Bertsekas' forward auction with epsilon scaling), the engine of the
 * balanced k-means step. Points bid for clusters; a cluster is `capacity` identical slots, each with its
 * own price, kept in a per-cluster min-heap so a bidder always takes the cheapest slot (evicting its
 * holder when the cluster is full).
 *
 * Why not the official MoDE/BASE-layers formulation (clusters bid on a dense N x k score matrix with
 * topk over N per cluster, eps = range/50, no scaling): at 100k x 1024 that matrix alone is 400 MB and a
 * price war costs a full pass per round. Here each point only sees its K nearest centers, plus an upper
 * bound on the value of every other center (value = -cost - price; prices only rise, so a bound taken at
 * some prices stays valid). A point whose best candidate falls below that bound is "starving": its
 * candidates are recomputed at the current prices (batched, on the tensor backend) by the caller.
 *
 * Guarantee: every point ends eps-complementary-slack (within eps of its best cluster at the final
 * prices), so the total cost is within n * eps + (sum of prices of slots left empty) of the optimum of
 * the capacitated problem; the run reports that bound as `gapBound`.
 */

export interface AuctionProblem {
  points: number;
  clusters: number;
  /** Slots per cluster; clusters * capacity must be >= points. */
  capacity: number;
  /** Candidates per point (K). */
  candidates: number;
  /** points x K candidate clusters (rewritten in place by `refresh`). */
  index: Int32Array;
  /** points x K costs (squared distances) of the candidates. */
  cost: Float32Array;
  /** Per point, an upper bound on -cost - price over all non-candidate clusters; -Infinity if none. */
  bound: Float64Array;
  /**
   * Rewrites the candidates and bound of unassigned points for the given per-cluster prices (the
   * cheapest slot of each cluster). `sync` refreshes one point on the spot (the caller holds every cost
   * in memory); otherwise `batch` is awaited for all starving points once the bidding queue is empty.
   */
  refresh:
    | { sync: (row: number, prices: Float64Array) => void }
    | { batch: (rows: Int32Array, prices: Float64Array) => Promise<void> };
  epsilon: { start: number; end: number; factor: number };
  /** Starting price of every slot of each cluster (warm start from the previous Lloyd iteration). */
  initialPrices?: Float64Array;
}

export interface AuctionResult {
  /** Cluster of each point. */
  assignment: Int32Array;
  /** Cost of each point's cluster. */
  cost: Float32Array;
  bids: number;
  /** Points whose candidates had to be recomputed (summed over rounds). */
  refreshed: number;
  phases: number;
  /** Upper bound on (total cost - optimal total cost). */
  gapBound: number;
  /**
   * Cheapest slot price of each cluster at the end, shifted so the cheapest is 0 and with clusters that
   * have spare room at 0 (a common shift changes no preference), for warm-starting the next call.
   */
  prices: Float64Array;
}

export async function auction(problem: AuctionProblem): Promise<AuctionResult> {
  const { points: n, clusters: k, capacity: cap, candidates: K, index, cost, bound } = problem;
  if (k * cap < n) throw new RangeError(`auction: ${k} clusters x ${cap} slots cannot hold ${n} points`);
  const { start, end, factor } = problem.epsilon;
  if (!(end > 0 && start >= end && factor > 1)) throw new RangeError('auction: need 0 < epsilon.end <= epsilon.start and factor > 1');

  const slotPrice = new Float64Array(k * cap);
  if (problem.initialPrices) for (let j = 0; j < k; j++) slotPrice.fill(problem.initialPrices[j]!, j * cap, (j + 1) * cap);
  // Cheapest slot of each cluster (the heap roots), mirrored for the bidders' scans and for refreshes.
  const clusterPrice = new Float64Array(k);
  for (let j = 0; j < k; j++) clusterPrice[j] = slotPrice[j * cap]!;
  const refreshSync = 'sync' in problem.refresh ? problem.refresh.sync : null;
  const slotHolder = new Int32Array(k * cap).fill(-1);
  const assignment = new Int32Array(n).fill(-1);
  const paid = new Float64Array(n);
  const assignedCost = new Float32Array(n);
  const queue = new RingQueue(n);
  let starving: number[] = [];
  let bids = 0;
  let refreshed = 0;
  let phases = 0;

  const siftDown = (cluster: number): void => {
    const base = cluster * cap;
    let i = 0;
    const price = slotPrice[base]!;
    const holder = slotHolder[base]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= cap) break;
      const r = l + 1;
      const c = r < cap && slotPrice[base + r]! < slotPrice[base + l]! ? r : l;
      if (slotPrice[base + c]! >= price) break;
      slotPrice[base + i] = slotPrice[base + c]!;
      slotHolder[base + i] = slotHolder[base + c]!;
      i = c;
    }
    slotPrice[base + i] = price;
    slotHolder[base + i] = holder;
    clusterPrice[cluster] = slotPrice[base]!;
  };

  /** Best candidate value of point i at current prices, and the column it is in. */
  const best = (i: number): { v1: number; v2: number; column: number } => {
    let v1 = -Infinity;
    let v2 = -Infinity;
    let column = -1;
    const o = i * K;
    for (let c = 0; c < K; c++) {
      const v = -cost[o + c]! - clusterPrice[index[o + c]!]!;
      if (v > v1) {
        v2 = v1;
        v1 = v;
        column = c;
      } else if (v > v2) v2 = v;
    }
    return { v1, v2, column };
  };

  const bid = (i: number, eps: number): void => {
    let { v1, v2: candidateSecond, column } = best(i);
    // Half an epsilon of slack: a point that bids anyway still ends eps-complementary-slack (its value
    // after the bid is max(runner-up, bound) - eps), and far fewer points need a refresh.
    if (v1 < bound[i]! - eps / 2) {
      if (!refreshSync) {
        starving.push(i);
        return;
      }
      refreshed++;
      refreshSync(i, clusterPrice);
      ({ v1, v2: candidateSecond, column } = best(i));
    }
    const b = bound[i]!;
    const cluster = index[i * K + column]!;
    const root = cluster * cap;
    // The runner-up may be another slot of the same cluster (slots are distinct objects), or a
    // non-candidate, for which the bound stands in: an over-estimate only shrinks the increment.
    const sameCluster = cap > 1 ? -cost[i * K + column]! - Math.min(slotPrice[root + 1]!, cap > 2 ? slotPrice[root + 2]! : Infinity) : -Infinity;
    let v2 = Math.max(candidateSecond, b, sameCluster);
    if (v2 === -Infinity) v2 = v1;
    const price = slotPrice[root]! + (v1 - v2) + eps;
    const evicted = slotHolder[root]!;
    slotPrice[root] = price;
    slotHolder[root] = i;
    siftDown(cluster);
    assignment[i] = cluster;
    paid[i] = price;
    assignedCost[i] = cost[i * K + column]!;
    bids++;
    if (evicted >= 0) {
      assignment[evicted] = -1;
      queue.push(evicted);
    }
  };

  for (let i = 0; i < n; i++) queue.push(i);
  let eps = start;
  for (;;) {
    phases++;
    for (;;) {
      while (queue.size > 0) bid(queue.shift(), eps);
      if (starving.length === 0) break;
      const rows = Int32Array.from(starving);
      starving = [];
      refreshed += rows.length;
      if ('batch' in problem.refresh) await problem.refresh.batch(rows, clusterPrice.slice());
      for (const r of rows) queue.push(r);
    }
    if (eps <= end) break;
    eps = Math.max(end, eps / factor);
    // Epsilon scaling: keep prices, release only the points that violate the tighter slackness.
    for (let s = 0; s < slotHolder.length; s++) {
      const h = slotHolder[s]!;
      if (h < 0) continue;
      const { v1 } = best(h);
      if (-assignedCost[h]! - paid[h]! < Math.max(v1, bound[h]!) - eps) {
        slotHolder[s] = -1;
        assignment[h] = -1;
        queue.push(h);
      }
    }
  }

  let emptyPrice = 0;
  const warmPrices = clusterPrice.slice();
  let floor = Infinity;
  for (const p of warmPrices) floor = Math.min(floor, p);
  for (let j = 0; j < k; j++) warmPrices[j] = warmPrices[j]! - floor;
  for (let s = 0; s < slotHolder.length; s++) {
    if (slotHolder[s]! >= 0) continue;
    emptyPrice += slotPrice[s]!;
    // A cluster with spare room has price 0 at the optimum (its capacity constraint is slack).
    warmPrices[Math.floor(s / cap)] = 0;
  }
  return { assignment, cost: assignedCost, bids, refreshed, phases, gapBound: n * eps + emptyPrice, prices: warmPrices };
}

/** FIFO of point ids; each point is queued at most once at a time, so n slots suffice. */
class RingQueue {
  private readonly items: Int32Array;
  private head = 0;
  size = 0;
  constructor(capacity: number) {
    this.items = new Int32Array(Math.max(1, capacity));
  }
  push(v: number): void {
    this.items[(this.head + this.size) % this.items.length] = v;
    this.size++;
  }
  shift(): number {
    const v = this.items[this.head]!;
    this.head = (this.head + 1) % this.items.length;
    this.size--;
    return v;
  }
}
