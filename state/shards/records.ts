/**
 * The expert record logs: routed records by [expert, seq] in the `shards` DB (msgpack bytes exactly as
 * they came off the routed topic), and their counters in `meta`: ['expert', e] -> ExpertCounter and
 * ['fine', f] -> records in that fine cluster. Writes go through a `changes()` set that runs inside the
 * caller's write transaction (state/shards.ts); nothing here opens a transaction.
 */
import { z } from 'zod';
import { UNROUTED, decodeRouted, type EncodedRecord, type RoutedRecord } from '../../src/contract/routed.js';
import { StateError } from '../../src/errors.js';
import type { StateEnv } from '../env.js';
import { keyText, parseStored } from '../stored.js';

const ExpertCounter = z.object({
  records: z.number().int().nonnegative(),
  /** Next sequence number; never reused, even after records move out (reroute, split). */
  nextSeq: z.number().int().nonnegative(),
  firstRecordAt: z.number().optional(),
  lastRecordAt: z.number().optional(),
});
type ExpertCounter = z.infer<typeof ExpertCounter>;

const FineCount = z.number().int();
/** A counter's key in `meta`: the kind, then the expert or fine cluster id. */
const CounterKey = z.tuple([z.string(), z.number().int()]);

export interface StoredLocation {
  expert: number;
  seq: number;
}

export interface ExpertShardStats {
  expert: number;
  records: number;
  firstRecordAt?: number;
  lastRecordAt?: number;
}

const expertKey = (expert: number) => ['expert', expert];
const fineKey = (fine: number) => ['fine', fine];

/** The seq of a shard key [expert, seq]; a plain check, as it runs per record read. */
function seqOf(key: unknown): number {
  if (Array.isArray(key) && typeof key[1] === 'number') return key[1];
  throw new StateError(`corrupt shard key ${keyText(key)}: expected [expert, seq]`);
}

export type RecordLog = ReturnType<typeof createRecordLog>;

export function createRecordLog({ shards, meta }: Pick<StateEnv, 'shards' | 'meta'>) {
  const counter = (expert: number): ExpertCounter => {
    const key = expertKey(expert);
    const value = meta.get(key);
    return value === undefined ? { records: 0, nextSeq: 0 } : parseStored(ExpertCounter, value, `expert counter ${keyText(key)}`);
  };

  const fineCount = (fine: number): number => {
    const key = fineKey(fine);
    const value = meta.get(key);
    return value === undefined ? 0 : parseStored(FineCount, value, `fine counter ${keyText(key)}`);
  };

  /** Counters in `meta` under one kind, with their ids. */
  function* countersOf<T>(kind: string, schema: z.ZodType<T>): Generator<[number, T]> {
    for (const { key, value } of meta.getRange({ start: [kind], end: [kind, Number.MAX_SAFE_INTEGER] })) {
      const what = `${kind} counter ${keyText(key)}`;
      yield [parseStored(CounterKey, key, what)[1], parseStored(schema, value, what)];
    }
  }

  function expertStats(): ExpertShardStats[] {
    return [...countersOf('expert', ExpertCounter)].map(([expert, c]) => ({
      expert,
      records: c.records,
      ...(c.firstRecordAt !== undefined ? { firstRecordAt: c.firstRecordAt } : {}),
      ...(c.lastRecordAt !== undefined ? { lastRecordAt: c.lastRecordAt } : {}),
    }));
  }

  /** Reads records of one shard in seq order, starting at `fromSeq`. */
  function* read(expert: number, { fromSeq = 0, limit = Infinity }: { fromSeq?: number; limit?: number } = {}): Generator<{ seq: number; record: RoutedRecord }> {
    const range = shards.getRange({ start: [expert, fromSeq], end: [expert, Number.MAX_SAFE_INTEGER], limit: Number.isFinite(limit) ? limit : undefined });
    for (const { key, value } of range) {
      const decoded = decodeRouted(value);
      if (!decoded.ok) throw new StateError(`corrupt shard record at ${keyText(key)}: ${decoded.detail}`);
      yield { seq: seqOf(key), record: decoded.record };
    }
  }

  return {
    /**
     * Counter changes of one write transaction: each counter is read (and parsed) once, updated in
     * memory as records are put and removed, and written back by `save`.
     */
    changes() {
      const counters = new Map<number, ExpertCounter>();
      const fines = new Map<number, number>();
      const counterOf = (expert: number): ExpertCounter => {
        let c = counters.get(expert);
        if (!c) counters.set(expert, (c = { ...counter(expert) }));
        return c;
      };
      const addToFine = (fine: number, delta: number) => fines.set(fine, (fines.get(fine) ?? fineCount(fine)) + delta);
      return {
        /** Puts one record at the end of its expert's shard (unrouted: the UNROUTED shard); where it went. */
        put({ record, bytes }: EncodedRecord): StoredLocation {
          const expert = record.route?.expert ?? UNROUTED;
          const c = counterOf(expert);
          const seq = c.nextSeq++;
          c.records++;
          c.firstRecordAt = Math.min(c.firstRecordAt ?? record.ts, record.ts);
          c.lastRecordAt = Math.max(c.lastRecordAt ?? record.ts, record.ts);
          shards.put([expert, seq], bytes);
          if (record.route) addToFine(record.route.fine, 1);
          return { expert, seq };
        },
        /**
         * Replaces the bytes at a location (a new route within the same expert); the expert's counter is
         * unchanged, the fine counters follow a change of fine cluster (`fine`: the one it left and joined).
         */
        rewrite({ expert, seq }: StoredLocation, bytes: Buffer, fine?: { left: number | undefined; joined: number | undefined }): void {
          shards.put([expert, seq], bytes);
          if (!fine || fine.left === fine.joined) return;
          if (fine.left !== undefined) addToFine(fine.left, -1);
          if (fine.joined !== undefined) addToFine(fine.joined, 1);
        },
        /** Removes the record at a location (it moves to another shard); `fine`: the fine cluster it left. */
        remove({ expert, seq }: StoredLocation, fine: number | undefined): void {
          shards.remove([expert, seq]);
          counterOf(expert).records--;
          if (fine !== undefined) addToFine(fine, -1);
        },
        save(): void {
          for (const [expert, c] of counters) meta.put(expertKey(expert), c);
          for (const [fine, n] of fines) meta.put(fineKey(fine), n);
        },
      };
    },

    /** One record by its position, or undefined for a gap (moved away). */
    get(expert: number, seq: number): RoutedRecord | undefined {
      const bytes = shards.get([expert, seq]);
      if (!bytes) return undefined;
      const decoded = decodeRouted(bytes);
      if (!decoded.ok) throw new StateError(`corrupt shard record at [${expert}, ${seq}]: ${decoded.detail}`);
      return decoded.record;
    },

    read,

    /** The record at a location, or undefined when nothing decodable is there (moves skip such a record). */
    find({ expert, seq }: StoredLocation): RoutedRecord | undefined {
      const bytes = shards.get([expert, seq]);
      const decoded = bytes && decodeRouted(bytes);
      return decoded && decoded.ok ? decoded.record : undefined;
    },

    /** What a location holds, for the audit: undefined when nothing, else the record's id (undefined when undecodable). */
    holding({ expert, seq }: StoredLocation): { id: string | undefined } | undefined {
      const bytes = shards.get([expert, seq]);
      if (!bytes) return undefined;
      const decoded = decodeRouted(bytes);
      return { id: decoded.ok ? decoded.record.id : undefined };
    },

    /** Stored records in all shards, counted by LMDB (not by the counters). */
    storedCount(): number {
      return shards.getCount();
    },

    expertStats,

    fineCounts(): Map<number, number> {
      return new Map(countersOf('fine', FineCount));
    },

    totalRecords(): number {
      return expertStats().reduce((sum, s) => sum + s.records, 0);
    },

    /** Records in an expert's shard and the next sequence number (seqs below it may have gaps). */
    shardSize(expert: number): { records: number; nextSeq: number } {
      const { records, nextSeq } = counter(expert);
      return { records, nextSeq };
    },
  };
}
