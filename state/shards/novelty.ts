/**
 * The novelty candidate buffer (drift detection): routed pairs farther from their fine center than its
 * threshold, in the `novelty` DB under their arrival number (the candidates counter when flagged), and
 * the cumulative counts under ['novelty'] in `meta`. Writes run inside the caller's write transaction
 * (state/shards.ts). One candidate means little; the controller judges the buffer as a whole
 * (src/cluster/novelty.ts), oldest candidates first.
 *
 * Why arrival order and not pair id: ids can sort by anything a source puts in them (a label, a site, a
 * date). Judging the lowest ids fills a buffer with one kind of caption whenever more than one buffer
 * is waiting (the catch-up after a bootstrap flags hundreds at once), and one kind of caption's tail is
 * dense enough to pass for a new family.
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

const Candidate = z.object({ id: z.string(), embedding: bytesSchema });

/**
 * Novelty threshold (L2) of a fine cluster by id: a routed pair farther than this from its fine center
 * is a candidate; undefined: flag nothing (drift disabled, or an epoch without radii).
 */
export type NoveltyThreshold = (fine: number) => number | undefined;

export type NoveltyBuffer = ReturnType<typeof createNoveltyBuffer>;

export function createNoveltyBuffer({ meta, novelty, noveltyById }: Pick<StateEnv, 'meta' | 'novelty' | 'noveltyById'>, threshold: NoveltyThreshold | undefined) {
  const stats = (): NoveltyStats => {
    const value = meta.get(NOVELTY_KEY);
    return value === undefined ? { routed: 0, candidates: 0, dropped: 0 } : parseStored(NoveltyStats, value, `novelty stats ${keyText(NOVELTY_KEY)}`);
  };
  /**
   * Candidates buffered by id (before arrival numbers) move to the front of the queue, in the first
   * write transaction of a process that flags. Their numbers stay below every new one: each was counted in
   * `candidates` when it was flagged, so the counter is at least how many are waiting.
   */
  let legacyMoved = false;
  const moveLegacy = () => {
    if (legacyMoved) return;
    legacyMoved = true;
    let next = 0;
    for (const { key, value } of [...noveltyById.getRange()]) {
      novelty.put(next++, { id: key, embedding: parseStored(bytesSchema, value, `novelty candidate ${keyText(key)}`) });
      noveltyById.remove(key);
    }
  };

  return {
    /** Buffers the routed records beyond their fine cluster's threshold and counts what was checked. */
    flag(records: readonly RoutedRecord[]): void {
      if (!threshold) return;
      moveLegacy();
      const s = stats();
      for (const r of records) {
        if (!r.route) continue;
        const limit = threshold(r.route.fine);
        if (limit === undefined) continue;
        s.routed++;
        if (Math.sqrt(r.route.dist2) > limit) novelty.put(s.candidates++, { id: r.id, embedding: f32ToBytes(r.embedding) });
      }
      meta.put(NOVELTY_KEY, s);
    },

    /** Removes the judged candidates (arrival numbers up to `through`); `dropped` of them were judged not new (counted). */
    remove(through: number, dropped: number): void {
      for (const key of novelty.getKeys({ end: through + 1 })) novelty.remove(key);
      if (dropped > 0) {
        const s = stats();
        meta.put(NOVELTY_KEY, { ...s, dropped: s.dropped + dropped });
      }
    },

    count(): number {
      return novelty.getCount() + noveltyById.getCount();
    },

    /** The oldest `limit` candidates: ids, embeddings, and the arrival number of the last (what `remove` takes). */
    buffer(limit = Infinity): { ids: string[]; embeddings: Float32Array[]; through: number } {
      const ids: string[] = [];
      const embeddings: Float32Array[] = [];
      let through = -1;
      for (const { key, value } of novelty.getRange(Number.isFinite(limit) ? { limit } : {})) {
        const candidate = parseStored(Candidate, value, `novelty candidate ${keyText(key)}`);
        ids.push(candidate.id);
        embeddings.push(bytesToF32(candidate.embedding));
        through = key;
      }
      return { ids, embeddings, through };
    },

    /** Cumulative novelty counters (candidate rate = candidates / routed). */
    stats,
  };
}
