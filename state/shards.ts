/**
 * Expert shards: routed records by [expert, seq], the pair-id dedup index, per-expert and per-fine
 * counters, the reservoir sample and the sharder's input offsets.
 *
 * Guarantee: `append` writes records, their dedup keys, counters, reservoir slots and the partition's
 * next offset in ONE transaction and resolves only once it is flushed to disk, so a caller that commits
 * the Kafka offset afterwards can never lose a record, and a redelivered record is recognised by its id
 * (written once, whatever the process, crash or rebalance). Reads are synchronous.
 */
import { UNROUTED, decodeRouted, encodeRouted, type EncodedRecord, type Route, type RoutedRecord } from '../src/contract/routed.js';
import { reservoirSlot } from '../src/cluster/reservoir.js';
import { createRng } from '../src/cluster/rng.js';
import { bytesToF32, f32ToBytes } from '../src/codec/bytes.js';
import { StateError } from '../src/errors.js';
import type { StateEnv } from './env.js';

export type { EncodedRecord } from '../src/contract/routed.js';

export interface PartitionProgress {
  topic: string;
  partition: number;
  /** Offset of the message after the last one in this append. */
  nextOffset: number;
}

export interface AppendResult {
  written: number;
  duplicates: number;
}

export interface ExpertShardStats {
  expert: number;
  records: number;
  firstRecordAt?: number;
  lastRecordAt?: number;
}

interface ExpertCounter {
  records: number;
  /** Next sequence number; never reused, even after records move out (reroute, split). */
  nextSeq: number;
  firstRecordAt?: number;
  lastRecordAt?: number;
}

interface ReservoirState {
  seen: number;
}

export interface StoredLocation {
  expert: number;
  seq: number;
}

export interface ShardStoreOptions {
  env: StateEnv;
  /** Reservoir capacity (clustering.sample); 0 disables sampling. */
  reservoirSize: number;
  reservoirSeed?: number;
  /**
   * Novelty threshold (L2) of a fine cluster by id: a routed pair farther than this from its fine center
   * is a novelty candidate and goes to the novelty buffer; undefined: flag nothing (drift disabled, or an
   * epoch without radii). See src/cluster/novelty.ts.
   */
  noveltyThreshold?: (fine: number) => number | undefined;
}

/** Cumulative novelty counters: routed pairs checked, candidates buffered, candidates dropped by judgement. */
export interface NoveltyStats {
  routed: number;
  candidates: number;
  dropped: number;
}

const expertKey = (expert: number) => ['expert', expert];
const fineKey = (fine: number) => ['fine', fine];
const RESERVOIR_KEY = ['reservoir'];
const NOVELTY_KEY = ['novelty'];

export type ShardStore = ReturnType<typeof createShardStore>;

export function createShardStore({ env, reservoirSize, reservoirSeed = 1, noveltyThreshold }: ShardStoreOptions) {
  const { root, shards, dedup, offsets, meta, reservoir, novelty } = env;

  const noveltyStats = (): NoveltyStats => (meta.get(NOVELTY_KEY) as NoveltyStats | undefined) ?? { routed: 0, candidates: 0, dropped: 0 };

  const counter = (expert: number): ExpertCounter =>
    (meta.get(expertKey(expert)) as ExpertCounter | undefined) ?? { records: 0, nextSeq: 0 };

  /** Puts one record at the end of its expert's shard; caller holds the write transaction. */
  function putRecord({ record, bytes }: EncodedRecord, counters: Map<number, ExpertCounter>, fines: Map<number, number>): StoredLocation {
    const expert = record.route?.expert ?? UNROUTED;
    let c = counters.get(expert);
    if (!c) counters.set(expert, (c = { ...counter(expert) }));
    const seq = c.nextSeq++;
    c.records++;
    c.firstRecordAt = Math.min(c.firstRecordAt ?? record.ts, record.ts);
    c.lastRecordAt = Math.max(c.lastRecordAt ?? record.ts, record.ts);
    shards.put([expert, seq], bytes);
    dedup.put(record.id, [expert, seq]);
    if (record.route) fines.set(record.route.fine, (fines.get(record.route.fine) ?? (meta.get(fineKey(record.route.fine)) as number | undefined) ?? 0) + 1);
    return { expert, seq };
  }

  function saveCounters(counters: Map<number, ExpertCounter>, fines: Map<number, number>): void {
    for (const [expert, c] of counters) meta.put(expertKey(expert), c);
    for (const [fine, n] of fines) meta.put(fineKey(fine), n);
  }

  /**
   * Drift detection, inside the caller's write transaction: beyond its fine cluster's radius, a routed
   * pair is in the tail of what the centers describe and goes to the novelty buffer. One such pair means
   * little; the controller judges the buffer as a whole (src/cluster/novelty.ts).
   */
  function flagNovelty(records: readonly RoutedRecord[]): void {
    if (!noveltyThreshold) return;
    const stats = noveltyStats();
    for (const r of records) {
      if (!r.route) continue;
      const threshold = noveltyThreshold(r.route.fine);
      if (threshold === undefined) continue;
      stats.routed++;
      if (Math.sqrt(r.route.dist2) > threshold) {
        novelty.put(r.id, f32ToBytes(r.embedding));
        stats.candidates++;
      }
    }
    meta.put(NOVELTY_KEY, stats);
  }

  /** Algorithm R; the draw for the i-th record is seeded by i, so a restart draws the same slots. */
  function sampleIntoReservoir(records: readonly RoutedRecord[]): void {
    if (reservoirSize <= 0 || records.length === 0) return;
    const state = (meta.get(RESERVOIR_KEY) as ReservoirState | undefined) ?? { seen: 0 };
    for (const r of records) {
      const seen = state.seen++;
      const slot = reservoirSlot({ seen, capacity: reservoirSize, rng: createRng(reservoirSeed + seen) });
      if (slot >= 0) reservoir.put(slot, { id: r.id, emb: f32ToBytes(r.embedding) });
    }
    meta.put(RESERVOIR_KEY, state);
  }

  return {
    /** Appends a chunk from one partition; duplicates (by pair id) are skipped. Durable on resolve. */
    async append(records: readonly EncodedRecord[], progress: PartitionProgress): Promise<AppendResult> {
      let result: AppendResult = { written: 0, duplicates: 0 };
      await root.transaction(() => {
        const counters = new Map<number, ExpertCounter>();
        const fines = new Map<number, number>();
        const fresh: RoutedRecord[] = [];
        // Checked inside the write transaction: another process sharing this environment cannot slip
        // the same id in between the check and the put.
        const seenHere = new Set<string>();
        for (const item of records) {
          const { id } = item.record;
          if (seenHere.has(id) || dedup.get(id) !== undefined) continue;
          seenHere.add(id);
          putRecord(item, counters, fines);
          fresh.push(item.record);
        }
        saveCounters(counters, fines);
        sampleIntoReservoir(fresh);
        flagNovelty(fresh);
        const key = [progress.topic, progress.partition];
        // Offsets only move forward: a zombie member finishing an old batch must not rewind them.
        if (progress.nextOffset > (offsets.get(key) ?? -1)) offsets.put(key, progress.nextOffset);
        result = { written: fresh.length, duplicates: records.length - fresh.length };
      });
      await root.flushed;
      return result;
    },

    /** The next offset to consume for a partition of the routed topic, as last made durable here. */
    nextOffset(topic: string, partition: number): number | undefined {
      return offsets.get([topic, partition]);
    },

    storedOffsets(): { topic: string; partition: number; nextOffset: number }[] {
      return [...offsets.getRange()].map(({ key, value }) => {
        const [topic, partition] = key as [string, number];
        return { topic, partition, nextOffset: value };
      });
    },

    expertStats(): ExpertShardStats[] {
      const out: ExpertShardStats[] = [];
      for (const { key, value } of meta.getRange({ start: ['expert'], end: ['expert', Number.MAX_SAFE_INTEGER] })) {
        const c = value as ExpertCounter;
        const stats: ExpertShardStats = { expert: (key as [string, number])[1], records: c.records };
        if (c.firstRecordAt !== undefined) stats.firstRecordAt = c.firstRecordAt;
        if (c.lastRecordAt !== undefined) stats.lastRecordAt = c.lastRecordAt;
        out.push(stats);
      }
      return out;
    },

    fineCounts(): Map<number, number> {
      const out = new Map<number, number>();
      for (const { key, value } of meta.getRange({ start: ['fine'], end: ['fine', Number.MAX_SAFE_INTEGER] })) {
        out.set((key as [string, number])[1], value as number);
      }
      return out;
    },

    totalRecords(): number {
      return this.expertStats().reduce((sum, s) => sum + s.records, 0);
    },

    unroutedCount(): number {
      return counter(UNROUTED).records;
    },

    /** Records in an expert's shard and the next sequence number (seqs below it may have gaps). */
    shardSize(expert: number): { records: number; nextSeq: number } {
      const { records, nextSeq } = counter(expert);
      return { records, nextSeq };
    },

    /** One record by its position, or undefined for a gap (moved away). */
    get(expert: number, seq: number): RoutedRecord | undefined {
      const bytes = shards.get([expert, seq]);
      if (!bytes) return undefined;
      const decoded = decodeRouted(bytes);
      if (!decoded.ok) throw new StateError(`corrupt shard record at [${expert}, ${seq}]: ${decoded.detail}`);
      return decoded.record;
    },

    locate(id: string): StoredLocation | undefined {
      const loc = dedup.get(id);
      return loc && { expert: loc[0], seq: loc[1] };
    },

    /** Reads records of one shard in seq order, starting at `fromSeq`. */
    *read(expert: number, { fromSeq = 0, limit = Infinity }: { fromSeq?: number; limit?: number } = {}): Generator<{ seq: number; record: RoutedRecord }> {
      const range = shards.getRange({ start: [expert, fromSeq], end: [expert, Number.MAX_SAFE_INTEGER], limit: Number.isFinite(limit) ? limit : undefined });
      for (const { key, value } of range) {
        const decoded = decodeRouted(value);
        if (!decoded.ok) throw new StateError(`corrupt shard record at ${JSON.stringify(key)}: ${decoded.detail}`);
        yield { seq: (key as [number, number])[1], record: decoded.record };
      }
    },

    /** Every stored pair id once, with its location: the exactly-once audit used by tests and `status --verify`. */
    *ids(): Generator<{ id: string; expert: number; seq: number }> {
      for (const { key, value } of dedup.getRange()) yield { id: key, expert: value[0], seq: value[1] };
    },

    noveltyCount(): number {
      return novelty.getCount();
    },

    /** The buffered novel pairs: ids and embeddings (row-major). */
    noveltyBuffer(limit = Infinity): { ids: string[]; embeddings: Float32Array[] } {
      const ids: string[] = [];
      const embeddings: Float32Array[] = [];
      for (const { key, value } of novelty.getRange(Number.isFinite(limit) ? { limit } : {})) {
        ids.push(key);
        embeddings.push(bytesToF32(value as Uint8Array));
      }
      return { ids, embeddings };
    },

    /** Removes judged candidates from the buffer; `dropped` of them were judged not new (counted). */
    async clearNovelty(ids: readonly string[], dropped = 0): Promise<void> {
      await root.transaction(() => {
        for (const id of ids) novelty.remove(id);
        if (dropped > 0) {
          const stats = noveltyStats();
          meta.put(NOVELTY_KEY, { ...stats, dropped: stats.dropped + dropped });
        }
      });
    },

    /** Cumulative novelty counters (candidate rate = candidates / routed). */
    noveltyStats,

    /**
     * Moves records to the shards of their new routes (a new expert spawned or split off). Each record is
     * looked up by id inside the write transaction; one whose expert does not change only gets its new
     * route written in place. Durable on resolve. Returns how many changed shard.
     */
    async relocate(entries: readonly { id: string; route: Route }[]): Promise<number> {
      let moved = 0;
      await root.transaction(() => {
        const counters = new Map<number, ExpertCounter>();
        const fines = new Map<number, number>();
        for (const { id, route } of entries) {
          const loc = dedup.get(id);
          if (!loc) continue;
          const bytes = shards.get(loc);
          const decoded = bytes ? decodeRouted(bytes) : undefined;
          if (!decoded?.ok) continue;
          const record = { ...decoded.record, route };
          if (loc[0] === route.expert) {
            shards.put(loc, encodeRouted(record));
            continue;
          }
          shards.remove(loc);
          const from = counters.get(loc[0]) ?? { ...counter(loc[0]) };
          from.records--;
          counters.set(loc[0], from);
          const oldFine = decoded.record.route?.fine;
          if (oldFine !== undefined) fines.set(oldFine, (fines.get(oldFine) ?? (meta.get(fineKey(oldFine)) as number | undefined) ?? 0) - 1);
          putRecord({ record, bytes: encodeRouted(record) }, counters, fines);
          moved++;
        }
        saveCounters(counters, fines);
      });
      await root.flushed;
      return moved;
    },

    /**
     * Exactly-once audit: every dedup entry points at a stored record with that id, and there are as
     * many stored records as dedup entries (no record stored twice, none without its key).
     */
    audit(): { records: number; ids: number; problems: string[] } {
      const problems: string[] = [];
      let ids = 0;
      for (const { key, value } of dedup.getRange()) {
        ids++;
        const bytes = shards.get(value);
        const decoded = bytes ? decodeRouted(bytes) : undefined;
        const storedId = decoded?.ok ? decoded.record.id : undefined;
        if (storedId !== key && problems.length < 20) problems.push(`id ${key}: dedup points at [${value.join(', ')}] holding ${bytes ? (storedId ?? 'an undecodable record') : 'nothing'}`);
      }
      const records = shards.getCount();
      if (records !== ids) problems.push(`${records} stored records but ${ids} distinct ids`);
      return { records, ids, problems };
    },

    /** Sampled caption embeddings (the bootstrap sample) and how many records the sampler has seen. */
    reservoirSample(): { seen: number; embeddings: Float32Array[] } {
      const state = (meta.get(RESERVOIR_KEY) as ReservoirState | undefined) ?? { seen: 0 };
      const embeddings: Float32Array[] = [];
      for (const { value } of reservoir.getRange()) embeddings.push(bytesToF32((value as { emb: Uint8Array }).emb));
      return { seen: state.seen, embeddings };
    },

    reservoirSeen(): number {
      return ((meta.get(RESERVOIR_KEY) as ReservoirState | undefined) ?? { seen: 0 }).seen;
    },

    /**
     * Moves up to `limit` unrouted records (stored before the first centroid epoch existed) into their
     * experts' shards. Routing is async (tensor backend), so it runs between the read and the write
     * transaction; the write re-checks each record is still unrouted (another process may have moved it).
     */
    async routeStored(limit: number, route: (embeddings: Float32Array[]) => Promise<Route[]>): Promise<number> {
      const batch = [...this.read(UNROUTED, { limit })];
      if (batch.length === 0) return 0;
      const routes = await route(batch.map((b) => b.record.embedding));
      let moved = 0;
      await root.transaction(() => {
        const counters = new Map<number, ExpertCounter>();
        const fines = new Map<number, number>();
        const caughtUp: RoutedRecord[] = [];
        batch.forEach(({ seq, record }, i) => {
          const loc = dedup.get(record.id);
          if (!loc || loc[0] !== UNROUTED || loc[1] !== seq) return;
          shards.remove([UNROUTED, seq]);
          const unrouted = counters.get(UNROUTED) ?? { ...counter(UNROUTED) };
          unrouted.records--;
          counters.set(UNROUTED, unrouted);
          const routed = { ...record, route: routes[i]! };
          putRecord({ record: routed, bytes: encodeRouted(routed) }, counters, fines);
          caughtUp.push(routed);
          moved++;
        });
        saveCounters(counters, fines);
        // Pairs stored before the first epoch are novelty-checked too: with a slow bootstrap they can be
        // most of the stream after the sample. The sample's own tail is buffered with them and judged
        // like any other (a stationary tail is dropped).
        flagNovelty(caughtUp);
      });
      await root.flushed;
      return moved;
    },

  };
}
