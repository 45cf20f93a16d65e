/**
 * The pair-id index in the `dedup` DB: id -> [expert, seq], the record's one location and the key that
 * makes a redelivered pair a duplicate. `point` runs inside the caller's write transaction
 * (state/shards.ts); `has` there is a key test, so the per-record check decodes nothing.
 */
import type { StateEnv } from '../env.js';
import type { StoredLocation } from './records.js';

export type DedupIndex = ReturnType<typeof createDedupIndex>;

export function createDedupIndex({ dedup }: Pick<StateEnv, 'dedup'>) {
  return {
    has(id: string): boolean {
      return dedup.doesExist(id);
    },

    locate(id: string): StoredLocation | undefined {
      const loc = dedup.get(id);
      return loc && { expert: loc[0], seq: loc[1] };
    },

    /** Records where the pair is stored now (first write, or after it moved). */
    point(id: string, { expert, seq }: StoredLocation): void {
      dedup.put(id, [expert, seq]);
    },

    /** Every stored pair id once, with its location. */
    *ids(): Generator<{ id: string } & StoredLocation> {
      for (const { key, value } of dedup.getRange()) yield { id: key, expert: value[0], seq: value[1] };
    },
  };
}
