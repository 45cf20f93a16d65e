/**
 * A record's shard under a newer epoch (ARCHITECTURE.md section 3, "Fine ids are never reused"): its fine
 * id keeps its meaning, and only a split (or a recluster) maps a fine id to another expert. So a record
 * routed with an older epoch belongs to the CURRENT epoch's expert of its fine cluster, which is how a
 * shard restored from the routed topic after a split equals the shard live processing built.
 */
import type { Route } from '../contract/routed.js';
import type { CentroidModel } from './model.js';

/** Fine id -> expert id of one epoch. */
export type FineToExpert = ReadonlyMap<number, number>;

export function fineToExpertOf(model: Pick<CentroidModel, 'fineIds' | 'fineToExpert'>): FineToExpert {
  return new Map(Array.from(model.fineIds, (fine, row) => [fine, model.fineToExpert[row]!]));
}

/**
 * The route a record keeps under epoch `epoch` with map `map`: unchanged when its expert is still the
 * fine cluster's (or the fine id is unknown to the map: nothing to say about it), else the new expert
 * with the epoch that moved it.
 */
export function remapRoute(route: Route, map: FineToExpert, epoch: number): Route {
  const expert = map.get(route.fine);
  if (expert === undefined || expert === route.expert || route.epoch > epoch) return route;
  return { ...route, expert, epoch };
}

/**
 * The experts whose shards may hold records that must move from `before` to `after`: the old experts of
 * the fine clusters whose expert changed. Without `before` (a node that does not know what its shards
 * reflect, e.g. after a restart), every expert of `after` and every expert it lost.
 */
export function expertsToRescan(before: FineToExpert | undefined, after: FineToExpert, stored: Iterable<number>): number[] {
  if (!before) return [...new Set([...stored])].filter((e) => e >= 0).sort((a, b) => a - b);
  const experts = new Set<number>();
  for (const [fine, expert] of before) {
    const now = after.get(fine);
    if (now !== undefined && now !== expert) experts.add(expert);
  }
  return [...experts].sort((a, b) => a - b);
}
