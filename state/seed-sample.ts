/**
 * The seed model's cluster-wide training data (ARCHITECTURE.md section 4): a reservoir (Algorithm R) of
 * routed records read from the sample topic, slot -> record bytes in `sample`, id -> slot in `sampleIds`
 * (a pair held is not stored twice when redelivered), and how many distinct pairs were offered under
 * ['seed-sample'] in `meta`. One write transaction per chunk.
 */
import { z } from 'zod';
import { reservoirSlot } from '../src/cluster/reservoir.js';
import { createRng } from '../src/cluster/rng.js';
import { decodeRouted, type RoutedRecord } from '../src/contract/routed.js';
import { StateError } from '../src/errors.js';
import type { StateEnv } from './env.js';
import { keyText, parseStored } from './stored.js';

const SampleState = z.object({ seen: z.number().int().nonnegative() });
const STATE_KEY = ['seed-sample'];

export type SeedSample = ReturnType<typeof createSeedSample>;

export function createSeedSample({ root, meta, sample, sampleIds }: Pick<StateEnv, 'root' | 'meta' | 'sample' | 'sampleIds'>, { size, seed }: { size: number; seed: number }) {
  const seen = (): number => {
    const value = meta.get(STATE_KEY);
    return value === undefined ? 0 : parseStored(SampleState, value, `seed sample state ${keyText(STATE_KEY)}`).seen;
  };

  return {
    /** Offers records (with their wire bytes); resolves once committed. The i-th distinct pair's draw is seeded by i. */
    async offer(records: readonly { id: string; bytes: Buffer }[]): Promise<void> {
      if (size <= 0 || records.length === 0) return;
      await root.transaction(() => {
        let n = seen();
        for (const { id, bytes } of records) {
          if (sampleIds.get(id) !== undefined) continue;
          const slot = reservoirSlot({ seen: n, capacity: size, rng: createRng(seed + n) });
          n++;
          if (slot < 0) continue;
          const replaced = sample.get(slot);
          if (replaced) {
            const old = decodeRouted(replaced);
            if (old.ok) sampleIds.remove(old.record.id);
          }
          sample.put(slot, bytes);
          sampleIds.put(id, slot);
        }
        meta.put(STATE_KEY, { seen: n });
      });
    },

    /** Records held (at most `size`). */
    size(): number {
      return sample.getCount();
    },

    /** Distinct pairs offered so far. */
    seen,

    get(slot: number): RoutedRecord | undefined {
      const bytes = sample.get(slot);
      if (!bytes) return undefined;
      const decoded = decodeRouted(bytes);
      if (!decoded.ok) throw new StateError(`corrupt seed sample record at slot ${slot}: ${decoded.detail}`);
      return decoded.record;
    },
  };
}
