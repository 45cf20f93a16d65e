/**
 * Sharder topology (owns the experts of its `routed` partitions, like a Kafka Streams task with a local
 * state store):
 *
 *   routed chunk -> decodeRoutedChunk -> routeLate -> deadLetterUndecodable -> appendToShards -> outcome
 *
 * appendToShards writes records, dedup keys and the partition's next offset in one LMDB transaction and
 * completes once it is flushed; the stage commits the Kafka offset only after that. On restart or
 * rebalance the stage skips what LMDB already holds (appliedUpTo) and the dedup index drops redelivered
 * pairs, so every pair lands in exactly one shard exactly once.
 */
import type { Producer } from 'kafkajs';
import { concatMap, map, pipe, type OperatorFunction } from 'rxjs';
import type { RoutingSource } from '../src/cluster/routing.js';
import { decodeRouted, encodeRouted, type EncodedRecord, type RoutedRecord } from '../src/contract/routed.js';
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

/** Seen after each durable append: the records and how long the LMDB commit + flush took. */
export type OnAppended = (info: { records: readonly RoutedRecord[]; commitMs: number; durableAt: number }) => void;

export function appendToShards(store: ShardWriter, onAppended?: OnAppended): OperatorFunction<DecodedChunk, ChunkOutcome> {
  return concatMap(async (chunk) => {
    const last = chunk.messages[chunk.messages.length - 1]!;
    const nextOffset = Number(last.offset) + 1;
    const started = performance.now();
    const { written, duplicates } = await store.append(chunk.records, { topic: last.topic, partition: last.partition, nextOffset });
    onAppended?.({ records: chunk.records.map((r) => r.record), commitMs: performance.now() - started, durableAt: Date.now() });
    return { messages: chunk.messages.length, nextOffset, written, duplicates, deadLettered: chunk.undecodable.length };
  });
}

export interface SharderDeps {
  store: ShardWriter;
  routing: RoutingSource;
  producer: Producer;
  dlqTopic: string;
  onAppended?: OnAppended;
}

export function sharderTopology(deps: SharderDeps): Topology {
  return pipe(decodeRoutedChunk(), routeLate(deps.routing), deadLetterUndecodable(deps), appendToShards(deps.store, deps.onAppended));
}
