/**
 * What the stages need from storage, declared here so streams/ never imports state/: each port lists
 * exactly the methods its stage calls. The LMDB stores (state/shards.ts, state/centroids.ts) satisfy
 * them structurally and app/ passes them in; tests pass in-memory fakes.
 */
import type { CentroidSource } from '../src/cluster/routing.js';
import type { CentroidModel } from '../src/cluster/model.js';
import type { EncodedRecord, Route, RoutedRecord } from '../src/contract/routed.js';

/** Where a chunk of the routed topic ends: the partition's next offset, stored with the chunk's records. */
export interface ShardPosition {
  topic: string;
  partition: number;
  /** Offset of the message after the chunk's last one. */
  nextOffset: number;
}

/** The sharder's port. */
export interface ShardWriter {
  /**
   * Stores the records and `position` in one durable step; a record whose pair id is stored already
   * is a duplicate, not a write. Resolves once durable (the stage commits the Kafka offset after it).
   */
  append(records: readonly EncodedRecord[], position: ShardPosition, options?: AppendOptions): Promise<{ written: number; duplicates: number }>;
}

export interface AppendOptions {
  /**
   * The records are the partition's history, re-read by a restore: another node stored them live and
   * they met the novelty test there, so they are not flagged again (a partition moving to the leader
   * would otherwise refill its novelty buffer with old records and spawn experts from them).
   */
  history?: boolean;
}

/** The node-local catch-up's view of the shards (streams/catch-up.ts): unrouted records, moves, reads. */
export interface CatchUpShards {
  /** Records stored before the first epoch, still unrouted. */
  unroutedCount(): number;
  /** Routes up to `limit` unrouted records with `route` and moves them to their experts' shards; how many moved. */
  routeStored(limit: number, route: (embeddings: Float32Array[]) => Promise<Route[]>): Promise<number>;
  /** Gives records new routes, moving those whose expert changed; how many changed shard. */
  relocate(entries: readonly { id: string; route: Route }[]): Promise<number>;
  expertStats(): readonly { expert: number; records: number }[];
  /** One expert's records in seq order from `fromSeq`. */
  read(expert: number, options: { fromSeq: number; limit: number }): Iterable<{ seq: number; record: RoutedRecord }>;
}

/** The controller's view of the shards: bootstrap sample, novelty buffer and its relocation, shares, reads. */
export interface ControllerShards {
  /** Records the reservoir sampler has seen. */
  reservoirSeen(): number;
  reservoirSample(): { embeddings: Float32Array[] };
  /** Gives records new routes, moving those whose expert changed; how many changed shard. */
  relocate(entries: readonly { id: string; route: Route }[]): Promise<number>;
  noveltyCount(): number;
  /** The oldest `limit` candidates, in arrival order; `through` marks the last of them for clearNovelty. */
  noveltyBuffer(limit: number): { ids: string[]; embeddings: Float32Array[]; through: number };
  noveltyStats(): { routed: number; candidates: number };
  /** Removes the judged candidates (those up to `through`); `dropped` of them were judged not new. */
  clearNovelty(through: number, dropped: number): Promise<void>;
  expertStats(): readonly { expert: number; records: number }[];
  /** Records per fine cluster id (what a split judges shares by). */
  fineCounts(): ReadonlyMap<number, number>;
  /** One expert's records in seq order from `fromSeq`. */
  read(expert: number, options: { fromSeq: number; limit: number }): Iterable<{ seq: number; record: RoutedRecord }>;
}

/**
 * The controller's view of the centroid epochs: the newest one, and a conditional publish. Through the
 * control topic (streams/control-publisher.ts): true once the log accepted this call's epoch and the
 * local store holds it; false when the log took another one of that number, or fenced this writer.
 */
export interface CentroidPublisher extends CentroidSource {
  publish(model: CentroidModel): Promise<boolean>;
}

/** The local copy of the log's epochs (state/centroids.ts): writes `model` unless its epoch exists; durable on resolve. */
export interface EpochStore {
  publish(model: CentroidModel): Promise<boolean>;
}
