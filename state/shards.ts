/**
 * The shard store: composes the stores under state/shards/ (record logs and counters, the pair-id dedup
 * index, input offsets, the reservoir sample, the novelty buffer, the audit) over one LMDB environment,
 * and owns every write transaction that spans them. The sub-stores only read, or write inside the
 * transaction opened here; callers (app/, the streams/ports.ts ports) see this one API.
 *
 * Guarantee: `append` writes records, their dedup keys, counters, reservoir slots, novelty candidates and
 * the partition's next offset in ONE transaction and resolves only once it is flushed to disk, so a
 * caller that commits the Kafka offset afterwards can never lose a record, and a redelivered record is
 * recognised by its id (written once, whatever the process, crash or rebalance). Reads are synchronous.
 */
import { UNROUTED, encodeRouted, type EncodedRecord, type Route, type RoutedRecord } from '../src/contract/routed.js';
import type { StateEnv } from './env.js';
import { auditShards } from './shards/audit.js';
import { createDedupIndex } from './shards/dedup.js';
import { createNoveltyBuffer, type NoveltyThreshold } from './shards/novelty.js';
import { createOffsetStore, type PartitionProgress } from './shards/offsets.js';
import { createRecordLog } from './shards/records.js';
import { createReservoir } from './shards/reservoir.js';

export type { EncodedRecord } from '../src/contract/routed.js';
export type { ShardAudit } from './shards/audit.js';
export type { NoveltyStats } from './shards/novelty.js';
export type { PartitionProgress } from './shards/offsets.js';
export type { ExpertShardStats, StoredLocation } from './shards/records.js';

export interface AppendResult {
  written: number;
  duplicates: number;
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
  noveltyThreshold?: NoveltyThreshold;
}

export type ShardStore = ReturnType<typeof createShardStore>;

export function createShardStore({ env, reservoirSize, reservoirSeed = 1, noveltyThreshold }: ShardStoreOptions) {
  const { root } = env;
  const records = createRecordLog(env);
  const dedup = createDedupIndex(env);
  const offsets = createOffsetStore(env);
  const reservoir = createReservoir(env, { size: reservoirSize, seed: reservoirSeed });
  const novelty = createNoveltyBuffer(env, noveltyThreshold);

  return {
    /** Appends a chunk from one partition; duplicates (by pair id) are skipped. Durable on resolve. `history`: see streams/ports.ts AppendOptions. */
    async append(chunk: readonly EncodedRecord[], progress: PartitionProgress, { history = false }: { history?: boolean } = {}): Promise<AppendResult> {
      let result: AppendResult = { written: 0, duplicates: 0 };
      await root.transaction(() => {
        const changes = records.changes();
        const fresh: RoutedRecord[] = [];
        // Checked inside the write transaction: another process sharing this environment cannot slip
        // the same id in between the check and the put.
        const seenHere = new Set<string>();
        for (const item of chunk) {
          const { id } = item.record;
          if (seenHere.has(id) || dedup.has(id)) continue;
          seenHere.add(id);
          dedup.point(id, changes.put(item));
          fresh.push(item.record);
        }
        changes.save();
        reservoir.sample(fresh);
        if (!history) novelty.flag(fresh);
        offsets.advance(progress);
        result = { written: fresh.length, duplicates: chunk.length - fresh.length };
      });
      await root.flushed;
      return result;
    },

    /** The next offset to consume for a partition of the routed topic, as last made durable here. */
    nextOffset: offsets.next,
    storedOffsets: offsets.stored,

    expertStats: records.expertStats,
    fineCounts: records.fineCounts,
    totalRecords: records.totalRecords,
    unroutedCount: (): number => records.shardSize(UNROUTED).records,
    shardSize: records.shardSize,
    get: records.get,
    read: records.read,

    locate: dedup.locate,
    /** Every stored pair id once, with its location: the exactly-once audit used by tests and `status --verify`. */
    ids: dedup.ids,
    audit: () => auditShards(dedup, records),

    noveltyCount: novelty.count,
    noveltyBuffer: novelty.buffer,
    noveltyStats: novelty.stats,

    /** Removes judged candidates from the buffer; `dropped` of them were judged not new (counted). */
    async clearNovelty(through: number, dropped = 0): Promise<void> {
      await root.transaction(() => novelty.remove(through, dropped));
    },

    /** Sampled caption embeddings (the bootstrap sample) and how many records the sampler has seen. */
    reservoirSample(): { seen: number; embeddings: Float32Array[] } {
      return { seen: reservoir.seen(), embeddings: reservoir.embeddings() };
    },
    reservoirSeen: reservoir.seen,

    /**
     * Moves records to the shards of their new routes (a new expert spawned or split off). Each record is
     * looked up by id inside the write transaction; one whose expert does not change only gets its new
     * route written in place. Durable on resolve. Returns how many changed shard.
     */
    async relocate(entries: readonly { id: string; route: Route }[]): Promise<number> {
      let moved = 0;
      await root.transaction(() => {
        const changes = records.changes();
        for (const { id, route } of entries) {
          const loc = dedup.locate(id);
          const stored = loc && records.find(loc);
          if (!loc || !stored) continue;
          const record = { ...stored, route };
          if (loc.expert === route.expert) {
            // Fine counters follow (a split is judged by them: streams/controller.ts).
            changes.rewrite(loc, encodeRouted(record), { left: stored.route?.fine, joined: route.fine });
            continue;
          }
          changes.remove(loc, stored.route?.fine);
          dedup.point(id, changes.put({ record, bytes: encodeRouted(record) }));
          moved++;
        }
        changes.save();
      });
      await root.flushed;
      return moved;
    },

    /**
     * Moves up to `limit` unrouted records (stored before the first centroid epoch existed) into their
     * experts' shards. Routing is async (tensor backend), so it runs between the read and the write
     * transaction; the write re-checks each record is still unrouted (another process may have moved it).
     */
    async routeStored(limit: number, route: (embeddings: Float32Array[]) => Promise<Route[]>): Promise<number> {
      const batch = [...records.read(UNROUTED, { limit })];
      if (batch.length === 0) return 0;
      const routes = await route(batch.map((b) => b.record.embedding));
      let moved = 0;
      await root.transaction(() => {
        const changes = records.changes();
        const caughtUp: RoutedRecord[] = [];
        batch.forEach(({ seq, record }, i) => {
          const loc = dedup.locate(record.id);
          if (!loc || loc.expert !== UNROUTED || loc.seq !== seq) return;
          changes.remove(loc, undefined);
          const routed = { ...record, route: routes[i]! };
          dedup.point(routed.id, changes.put({ record: routed, bytes: encodeRouted(routed) }));
          caughtUp.push(routed);
          moved++;
        });
        changes.save();
        // Pairs stored before the first epoch are novelty-checked too: with a slow bootstrap they can be
        // most of the stream after the sample. The sample's own tail is buffered with them and judged
        // like any other (a stationary tail is dropped).
        novelty.flag(caughtUp);
      });
      await root.flushed;
      return moved;
    },
  };
}
