/**
 * The novelty candidate buffer (drift detection): pair id -> embedding in the `novelty` DB, for routed
 * pairs farther from their fine center than its threshold, and the cumulative counts under ['novelty']
 * in `meta`. Writes run inside the caller's write transaction (state/shards.ts). One candidate means
 * little; the controller judges the buffer as a whole (src/cluster/novelty.ts).
 */
import { z } from 'zod';
import type { RoutedRecord } from '../../src/contract/routed.js';
import { bytesSchema, bytesToF32, f32ToBytes } from '../../src/codec/bytes.js';
import type { StateEnv } from '../env.js';
import { keyText, parseStored } from '../stored.js';

/** Cumulative novelty counters: routed pairs checked, candidates buffered, candidates dropped by judgement. */
const NoveltyStats = z.object({
  routed: z.number().int().nonnegative(),
  candidates: z.number().int().nonnegative(),
  dropped: z.number().int().nonnegative(),
});
export type NoveltyStats = z.infer<typeof NoveltyStats>;

const NOVELTY_KEY = ['novelty'];

/**
 * Novelty threshold (L2) of a fine cluster by id: a routed pair farther than this from its fine center
 * is a candidate; undefined: flag nothing (drift disabled, or an epoch without radii).
 */
export type NoveltyThreshold = (fine: number) => number | undefined;

export type NoveltyBuffer = ReturnType<typeof createNoveltyBuffer>;

export function createNoveltyBuffer({ meta, novelty }: Pick<StateEnv, 'meta' | 'novelty'>, threshold: NoveltyThreshold | undefined) {
  const stats = (): NoveltyStats => {
    const value = meta.get(NOVELTY_KEY);
    return value === undefined ? { routed: 0, candidates: 0, dropped: 0 } : parseStored(NoveltyStats, value, `novelty stats ${keyText(NOVELTY_KEY)}`);
  };

  return {
    /** Buffers the routed records beyond their fine cluster's threshold and counts what was checked. */
    flag(records: readonly RoutedRecord[]): void {
      if (!threshold) return;
      const s = stats();
      for (const r of records) {
        if (!r.route) continue;
        const limit = threshold(r.route.fine);
        if (limit === undefined) continue;
        s.routed++;
        if (Math.sqrt(r.route.dist2) > limit) {
          novelty.put(r.id, f32ToBytes(r.embedding));
          s.candidates++;
        }
      }
      meta.put(NOVELTY_KEY, s);
    },

    /** Removes judged candidates; `dropped` of them were judged not new (counted). */
    remove(ids: readonly string[], dropped: number): void {
      for (const id of ids) novelty.remove(id);
      if (dropped > 0) {
        const s = stats();
        meta.put(NOVELTY_KEY, { ...s, dropped: s.dropped + dropped });
      }
    },

    count(): number {
      return novelty.getCount();
    },

    /** The buffered candidates: ids and embeddings. */
    buffer(limit = Infinity): { ids: string[]; embeddings: Float32Array[] } {
      const ids: string[] = [];
      const embeddings: Float32Array[] = [];
      for (const { key, value } of novelty.getRange(Number.isFinite(limit) ? { limit } : {})) {
        ids.push(key);
        embeddings.push(bytesToF32(parseStored(bytesSchema, value, `novelty candidate ${keyText(key)}`)));
      }
      return { ids, embeddings };
    },

    /** Cumulative novelty counters (candidate rate = candidates / routed). */
    stats,
  };
}
