/**
 * The reservoir sample of caption embeddings that bootstraps the centers: slot -> { id, emb } in the
 * `reservoir` DB, and how many records the sampler has seen under ['reservoir'] in `meta`. `sample`
 * runs inside the append's write transaction (state/shards.ts), so the slots move with the records.
 */
import { z } from 'zod';
import type { RoutedRecord } from '../../src/contract/routed.js';
import { reservoirSlot } from '../../src/cluster/reservoir.js';
import { createRng } from '../../src/cluster/rng.js';
import { bytesSchema, bytesToF32, f32ToBytes } from '../../src/codec/bytes.js';
import type { StateEnv } from '../env.js';
import { keyText, parseStored } from '../stored.js';

const ReservoirState = z.object({ seen: z.number().int().nonnegative() });
type ReservoirState = z.infer<typeof ReservoirState>;
const ReservoirSlot = z.object({ id: z.string(), emb: bytesSchema });

const RESERVOIR_KEY = ['reservoir'];

export interface ReservoirOptions {
  /** Capacity (clustering.sample); 0 disables sampling. */
  size: number;
  seed: number;
}

export type Reservoir = ReturnType<typeof createReservoir>;

export function createReservoir({ meta, reservoir }: Pick<StateEnv, 'meta' | 'reservoir'>, { size, seed }: ReservoirOptions) {
  const state = (): ReservoirState => {
    const value = meta.get(RESERVOIR_KEY);
    return value === undefined ? { seen: 0 } : parseStored(ReservoirState, value, `reservoir state ${keyText(RESERVOIR_KEY)}`);
  };

  return {
    /** Algorithm R; the draw for the i-th record is seeded by i, so a restart draws the same slots. */
    sample(records: readonly RoutedRecord[]): void {
      if (size <= 0 || records.length === 0) return;
      const s = state();
      for (const r of records) {
        const seen = s.seen++;
        const slot = reservoirSlot({ seen, capacity: size, rng: createRng(seed + seen) });
        if (slot >= 0) reservoir.put(slot, { id: r.id, emb: f32ToBytes(r.embedding) });
      }
      meta.put(RESERVOIR_KEY, s);
    },

    /** Records the sampler has seen. */
    seen(): number {
      return state().seen;
    },

    /** The sampled embeddings, by slot. */
    embeddings(): Float32Array[] {
      return [...reservoir.getRange()].map(({ key, value }) => bytesToF32(parseStored(ReservoirSlot, value, `reservoir slot ${keyText(key)}`).emb));
    },
  };
}
