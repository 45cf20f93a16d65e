/**
 * Sharder topology (owns the experts of its `routed` partitions, like a Kafka Streams task with a local
 * state store):
 *
 *   routed chunk -> decodeRoutedChunk -> routeLate -> deadLetterUndecodable -> [lane: toCurrentExperts -> appendToShards] -> outcome
 *
 * A record's home is the partition it arrived on, live or restored; toCurrentExperts stores a record
 * routed with an older epoch under the current epoch's expert of its fine cluster (src/cluster/remap.ts),
 * so a shard restored after a split equals the live one. It runs with the append in the lane it shares
 * with the node-local catch-up (streams/lane.ts, streams/catch-up.ts). appendToShards writes records, dedup keys and the partition's next offset in one LMDB transaction and
 * completes once it is flushed; the stage commits the Kafka offset only after that. On restart or
 * rebalance the stage skips what LMDB already holds (appliedUpTo) and the dedup index drops redelivered
 * pairs, so every pair lands in exactly one shard exactly once.
 */
import type { Producer } from 'kafkajs';
import { concatMap, lastValueFrom, map, of, pipe, type OperatorFunction } from 'rxjs';
import { fineToExpertOf, remapRoute } from '../src/cluster/remap.js';
import type { RoutingSource } from '../src/cluster/routing.js';
import { decodeRouted, encodeRouted, type EncodedRecord, type RoutedRecord } from '../src/contract/routed.js';
import type { Lane } from './lane.js';
import { deadLetter, type InputMessage } from './messages.js';
import type { ShardWriter } from './ports.js';
import type { ChunkOutcome, Topology } from './stage.js';

/** A decoded record with the bytes it arrived as (stored as they are unless re-routed here) and its message. */
export interface DecodedRecord extends EncodedRecord {
  message: InputMessage;
}

export interface DecodedChunk {
  messages: InputMessage[];
  records: DecodedRecord[];
  undecodable: { message: InputMessage; detail: string }[];
}

export function decodeRoutedChunk(): OperatorFunction<InputMessage[], DecodedChunk> {
  return map((messages) => {
    const chunk: DecodedChunk = { messages, records: [], undecodable: [] };
    for (const message of messages) {
      const decoded = decodeRouted(message.value);
      if (decoded.ok) chunk.records.push({ record: decoded.record, bytes: message.value!, message });
      else chunk.undecodable.push({ message, detail: decoded.detail });
    }
    return chunk;
  });
}

/**
 * Pairs routed before the first centroid epoch arrive unrouted; if an epoch exists by now they are
 * routed here, so nothing waits for the controller's catch-up pass that it does not have to. One whose
 * embedding is not of the epoch's dimension (a router with another embedder published it) cannot be
 * routed: it is dead-lettered with the reason instead of being read past its end or crashing the stage.
 */
export function routeLate(routing: RoutingSource): OperatorFunction<DecodedChunk, DecodedChunk> {
  return concatMap(async (input) => {
    const current = input.records.some(({ record }) => record.route === null) ? routing.current() : undefined;
    if (!current) return input;
    const dim = current.model.dim;
    const misfit = (item: EncodedRecord) => item.record.route === null && item.record.embedding.length !== dim;
    const chunk: DecodedChunk = {
      ...input,
      records: input.records.filter((item) => !misfit(item)),
      undecodable: [
        ...input.undecodable,
        ...input.records.filter(misfit).map(({ message, record }) => ({ message, detail: `embedding of dimension ${record.embedding.length}; the current centroid epoch routes dimension ${dim}` })),
      ],
    };
    const pending = chunk.records.filter(({ record }) => record.route === null);
    if (pending.length === 0) return chunk;
    const flat = new Float32Array(pending.length * dim);
    pending.forEach(({ record }, i) => flat.set(record.embedding, i * dim));
    const routes = await current.route(flat);
    let next = 0;
    const records = chunk.records.map((item) => {
      if (item.record.route !== null) return item;
      const record = { ...item.record, route: routes[next++]! };
      return { ...item, record, bytes: encodeRouted(record) };
    });
    return { ...chunk, records };
  });
}

export function deadLetterUndecodable({ producer, dlqTopic }: { producer: Producer; dlqTopic: string }): OperatorFunction<DecodedChunk, DecodedChunk> {
  return concatMap(async (chunk) => {
    if (chunk.undecodable.length) {
      await producer.send({
        topic: dlqTopic,
        acks: -1,
        messages: chunk.undecodable.map(({ message, detail }) => deadLetter(message, 'invalid-routed-record', detail)),
      });
    }
    return chunk;
  });
}

/**
 * Records routed with an epoch older than the current one go to the current epoch's expert of their fine
 * cluster (re-encoded, since the stored bytes carry the route); the rest keep the bytes they came with.
 */
export function toCurrentExperts(routing: RoutingSource): OperatorFunction<DecodedChunk, DecodedChunk> {
  let cached: { epoch: number; map: ReturnType<typeof fineToExpertOf> } | undefined;
  return map((chunk) => {
    const current = routing.current();
    if (!current || !chunk.records.some(({ record }) => record.route && record.route.epoch < current.epoch)) return chunk;
    if (cached?.epoch !== current.epoch) cached = { epoch: current.epoch, map: fineToExpertOf(current.model) };
    const { map: fineMap, epoch } = cached;
    const records = chunk.records.map((item) => {
      const { route } = item.record;
      const next = route && remapRoute(route, fineMap, epoch);
      if (!next || next === route) return item;
      const record = { ...item.record, route: next };
      return { ...item, record, bytes: encodeRouted(record) };
    });
    return { ...chunk, records };
  });
}

/** Runs `operator` on each value inside `lane`, one at a time. */
export function inLane<A, B>(lane: Lane, operator: OperatorFunction<A, B>): OperatorFunction<A, B> {
  return concatMap((value) => lane.run(() => lastValueFrom(of(value).pipe(operator))));
}

/** Seen after each durable append: the records and how long the LMDB commit + flush took. */
export type OnAppended = (info: { records: readonly RoutedRecord[]; commitMs: number; durableAt: number }) => void;

/** Whether the chunk starting at `offset` of `partition` is history re-read by a restore (streams/restore.ts). */
export type IsHistory = (partition: number, offset: number) => boolean;

export function appendToShards(store: ShardWriter, onAppended?: OnAppended, isHistory?: IsHistory): OperatorFunction<DecodedChunk, ChunkOutcome> {
  return concatMap(async (chunk) => {
    const last = chunk.messages[chunk.messages.length - 1]!;
    const nextOffset = Number(last.offset) + 1;
    const started = performance.now();
    const history = isHistory?.(last.partition, Number(chunk.messages[0]!.offset)) ?? false;
    const { written, duplicates } = await store.append(chunk.records, { topic: last.topic, partition: last.partition, nextOffset }, { history });
    onAppended?.({ records: chunk.records.map((r) => r.record), commitMs: performance.now() - started, durableAt: Date.now() });
    return { messages: chunk.messages.length, nextOffset, written, duplicates, deadLettered: chunk.undecodable.length };
  });
}

export interface SharderDeps {
  store: ShardWriter;
  routing: RoutingSource;
  producer: Producer;
  dlqTopic: string;
  /** Shared with the node-local catch-up; absent: a lane of its own. */
  lane?: Lane;
  onAppended?: OnAppended;
  /** Restores re-read history, which is stored without the novelty test (absent: everything is live). */
  isHistory?: IsHistory;
}

export function sharderTopology(deps: SharderDeps): Topology {
  const append = pipe(toCurrentExperts(deps.routing), appendToShards(deps.store, deps.onAppended, deps.isHistory));
  return pipe(decodeRoutedChunk(), routeLate(deps.routing), deadLetterUndecodable(deps), deps.lane ? inLane(deps.lane, append) : append);
}
