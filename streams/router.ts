/**
 * Router topology (stateless; scale it with more members of its consumer group):
 *
 *   pairs chunk -> validatePairs -> [withoutRepeats: embedCaptions -> routeEmbedded -> publishRouted] -> outcome
 *                       \-> rejected messages ride along and are dead-lettered by publishRouted
 *
 * Each step is an operator over one chunk; the chunk is complete once Kafka acknowledged both its
 * routed records and its dead letters (acks=-1), and only then is the input offset committed. With
 * `transactions` (pipeline.exactlyOnce) the routed records and the input offset commit in one Kafka
 * transaction (streams/transactions.ts), so a redelivered chunk routed differently is visible once.
 * withoutRepeats drops a pair whose id the partition published recently (streams/recent-ids.ts): a
 * producer's resend, which a drift epoch in between could otherwise route to another node's shard.
 */
import type { Message, Producer } from 'kafkajs';
import { concatMap, lastValueFrom, map, of, pipe, type OperatorFunction } from 'rxjs';
import type { RoutingSource } from '../src/cluster/routing.js';
import type { Limits } from '../src/config.js';
import { parsePair, type ValidPair } from '../src/contract/pair.js';
import { encodeRouted, UNROUTED, type Route, type RoutedRecord } from '../src/contract/routed.js';
import type { CaptionEmbedder } from '../src/embed/embedder.js';
import { deadLetter, type InputMessage } from './messages.js';
import type { RecentIds } from './recent-ids.js';
import type { ChunkOutcome, Topology } from './stage.js';
import type { ChunkTransactions } from './transactions.js';

interface Accepted {
  message: InputMessage;
  pair: ValidPair;
}

interface Rejected {
  message: InputMessage;
  reason: string;
  detail: string;
}

export interface ValidatedChunk {
  messages: InputMessage[];
  accepted: Accepted[];
  rejected: Rejected[];
}

export interface EmbeddedChunk extends ValidatedChunk {
  /** Row-major accepted.length x dim. */
  embeddings: Float32Array;
  dim: number;
}

export interface RoutedChunk extends EmbeddedChunk {
  /** One per accepted pair; null while no centroid epoch exists. */
  routes: (Route | null)[];
}

export function validatePairs(limits: Limits): OperatorFunction<InputMessage[], ValidatedChunk> {
  return map((messages) => {
    const chunk: ValidatedChunk = { messages, accepted: [], rejected: [] };
    for (const message of messages) {
      const result = parsePair({ key: message.key, value: message.value }, limits);
      if (result.ok) chunk.accepted.push({ message, pair: result.pair });
      else chunk.rejected.push({ message, reason: result.rejection.reason, detail: result.rejection.detail });
    }
    return chunk;
  });
}

export function embedCaptions(embedder: CaptionEmbedder): OperatorFunction<ValidatedChunk, EmbeddedChunk> {
  return concatMap(async (chunk) => ({
    ...chunk,
    embeddings: chunk.accepted.length ? await embedder.embed(chunk.accepted.map((a) => a.pair.caption)) : new Float32Array(0),
    dim: embedder.dim,
  }));
}

export function routeEmbedded(routing: RoutingSource): OperatorFunction<EmbeddedChunk, RoutedChunk> {
  return concatMap(async (chunk) => {
    const current = chunk.accepted.length ? routing.current() : undefined;
    const routes = current ? await current.route(chunk.embeddings) : chunk.accepted.map(() => null);
    return { ...chunk, routes };
  });
}

/**
 * Runs `rest` on the chunk without the pairs the partition's recent-ids window already holds (nor a
 * second copy within the chunk), then remembers the chunk's valid ids: only once `rest` completed, i.e.
 * the chunk committed, so a chunk whose transaction aborted leaves no trace. Dropped repeats count as
 * `duplicates`.
 */
export function withoutRepeats(recent: RecentIds, rest: OperatorFunction<ValidatedChunk, ChunkOutcome>): OperatorFunction<ValidatedChunk, ChunkOutcome> {
  return concatMap(async (chunk) => {
    const first = chunk.messages[0]!;
    const window = await recent.windowAt(first.topic, first.partition, Number(first.offset));
    const inChunk = new Set<string>();
    const accepted = chunk.accepted.filter(({ pair }) => {
      if (window.has(pair.id) || inChunk.has(pair.id)) return false;
      inChunk.add(pair.id);
      return true;
    });
    const outcome = await lastValueFrom(of({ ...chunk, accepted }).pipe(rest));
    window.add(
      chunk.accepted.map(({ message, pair }) => ({ offset: Number(message.offset), id: pair.id })),
      outcome.nextOffset,
    );
    const duplicates = chunk.accepted.length - accepted.length;
    return duplicates ? { ...outcome, duplicates } : outcome;
  });
}

export interface PublishOptions {
  producer: Producer;
  routedTopic: string;
  dlqTopic: string;
  /** Partitions of the routed topic: expert e goes to partition e mod P (keyed by expert). */
  routedPartitions: number;
  /** The seed's cluster-wide sample: this share of the records also goes to `topic` (absent or 0: none). */
  sample?: { topic: string; rate: number };
  /** Exactly-once: each chunk's routed and sample messages and its input offset in one transaction (`producer` sends only dead letters). */
  transactions?: ChunkTransactions;
  /** Test hook (at-least-once path): runs after the chunk was sent, before its offset is committed. */
  afterSend?: () => void;
}

/** Whether a pair is in the seed sample: a hash of its id, so a redelivered pair makes the same choice. */
export function inSeedSample(id: string, rate: number): boolean {
  return hashString(`seed-sample:${id}`) / 2 ** 32 < rate;
}

export function publishRouted({ producer, routedTopic, dlqTopic, routedPartitions, sample, transactions, afterSend }: PublishOptions): OperatorFunction<RoutedChunk, ChunkOutcome> {
  return concatMap(async (chunk) => {
    const routed: Message[] = chunk.accepted.map(({ message, pair }, i) => {
      const record = toRoutedRecord(message, pair, chunk.embeddings.subarray(i * chunk.dim, (i + 1) * chunk.dim), chunk.routes[i] ?? null);
      const expert = record.route?.expert ?? UNROUTED;
      return {
        key: expert === UNROUTED ? 'unrouted' : String(expert),
        value: encodeRouted(record),
        // Explicit partition: the default murmur2 partitioner can put two of four experts on one partition.
        // Unrouted pairs (before the first epoch) are spread by id so no partition takes them all.
        partition: expert === UNROUTED ? hashString(pair.id) % routedPartitions : expert % routedPartitions,
      };
    });
    const dead = chunk.rejected.map(({ message, reason, detail }) => deadLetter(message, reason, detail));
    const sampled: Message[] = sample?.rate ? chunk.accepted.flatMap(({ pair }, i) => (inSeedSample(pair.id, sample.rate) ? [{ key: pair.id, value: routed[i]!.value }] : [])) : [];
    const topicMessages = [
      { topic: routedTopic, messages: routed },
      { topic: dlqTopic, messages: dead },
      ...(sample ? [{ topic: sample.topic, messages: sampled }] : []),
    ].filter((t) => t.messages.length > 0);
    const last = chunk.messages[chunk.messages.length - 1]!;
    const nextOffset = Number(last.offset) + 1;
    const unrouted = chunk.routes.filter((r) => r === null).length;
    const outcome: ChunkOutcome = { messages: chunk.messages.length, nextOffset, routed: routed.length - unrouted, unrouted, deadLettered: dead.length };
    if (transactions) {
      // Dead letters stay outside the transaction: a rejection depends on the bytes alone, so a redelivery
      // rejects the same messages (at-least-once, as before), and the DLQ holds no commit markers, so
      // its offsets still count its messages (`modestream status`).
      const letters = topicMessages.filter((t) => t.topic === dlqTopic);
      if (letters.length) await producer.sendBatch({ topicMessages: letters, acks: -1 });
      await transactions.run(topicMessages.filter((t) => t.topic !== dlqTopic), { topic: last.topic, partition: last.partition, offset: nextOffset });
      return { ...outcome, offsetsCommitted: true };
    }
    if (topicMessages.length) await producer.sendBatch({ topicMessages, acks: -1 });
    afterSend?.();
    return outcome;
  });
}

function toRoutedRecord(message: InputMessage, pair: ValidPair, embedding: Float32Array, route: Route | null): RoutedRecord {
  const record: RoutedRecord = {
    id: pair.id,
    caption: pair.caption,
    ts: pair.ts ?? Number(message.timestamp),
    image: pair.image,
    embedding,
    route,
    origin: { topic: message.topic, partition: message.partition, offset: message.offset },
  };
  if (pair.source !== undefined) record.source = pair.source;
  if (pair.meta !== undefined) record.meta = pair.meta;
  return record;
}

/** FNV-1a, for spreading unrouted pairs over partitions. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export interface RouterDeps extends PublishOptions {
  limits: Limits;
  embedder: CaptionEmbedder;
  routing: RoutingSource;
  /** The recent-ids windows (pipeline.dedupWindow); absent: repeats are routed again. */
  recentIds?: RecentIds;
}

export function routerTopology(deps: RouterDeps): Topology {
  const publish = pipe(embedCaptions(deps.embedder), routeEmbedded(deps.routing), publishRouted(deps));
  return pipe(validatePairs(deps.limits), deps.recentIds ? withoutRepeats(deps.recentIds, publish) : publish);
}
