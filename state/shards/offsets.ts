/**
 * The sharder's durable input positions in the `offsets` DB: [topic, partition] -> the next offset to
 * read. `advance` runs inside the append's write transaction (state/shards.ts), so a chunk's records and
 * its partition's offset become durable together.
 */
import { z } from 'zod';
import type { StateEnv } from '../env.js';
import { keyText, parseStored } from '../stored.js';

const NextOffset = z.number().int().nonnegative();
const OffsetKey = z.tuple([z.string(), z.number().int().nonnegative()]);

export interface PartitionProgress {
  topic: string;
  partition: number;
  /** Offset of the message after the last one in this append. */
  nextOffset: number;
}

export type OffsetStore = ReturnType<typeof createOffsetStore>;

export function createOffsetStore({ offsets }: Pick<StateEnv, 'offsets'>) {
  const next = (topic: string, partition: number): number | undefined => {
    const key = [topic, partition];
    const value = offsets.get(key);
    return value === undefined ? undefined : parseStored(NextOffset, value, `input offset ${keyText(key)}`);
  };

  return {
    /** The next offset to consume for a partition, as last made durable here. */
    next,

    /** Moves a partition's offset to `nextOffset`, never back: a zombie member finishing an old batch must not rewind it. */
    advance({ topic, partition, nextOffset }: PartitionProgress): void {
      if (nextOffset > (next(topic, partition) ?? -1)) offsets.put([topic, partition], nextOffset);
    },

    stored(): PartitionProgress[] {
      return [...offsets.getRange()].map(({ key, value }) => {
        const what = `input offset ${keyText(key)}`;
        const [topic, partition] = parseStored(OffsetKey, key, what);
        return { topic, partition, nextOffset: parseStored(NextOffset, value, what) };
      });
    },
  };
}
