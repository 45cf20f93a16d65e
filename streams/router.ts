/**
 * Router topology (stateless; scale it with more members of its consumer group):
 *
 *   pairs chunk -> validatePairs -> decodeImages -> [withoutRepeats: embedCaptions -> routeEmbedded -> publishRouted] -> outcome
 *                       \-> rejected messages ride along and are dead-lettered by publishRouted
 *
 * validatePairs reads encoded images' headers only; decodeImages is ingestion's one decode of them
 * (native, bounded pool, straight to the experts' input size), so a bad image is dead-lettered here,
 * never found at training time, and nothing downstream decodes a file again.
 * Each step is an operator over one chunk; the chunk is complete once Kafka acknowledged both its
 * routed records and its dead letters (acks=-1), and only then is the input offset committed. With
 * `transactions` (pipeline.exactlyOnce) the routed records and the input offset commit in one Kafka
 * transaction (streams/transactions.ts), so a redelivered chunk routed differently is visible once.
 * withoutRepeats drops a pair whose id the partition published recently (streams/recent-ids.ts): a
 * producer's resend, which a drift epoch in between could otherwise route to another node's shard.
 */
import type { Message, Producer, TopicMessages } from 'kafkajs';
import { concatMap, lastValueFrom, map, of, pipe, type OperatorFunction } from 'rxjs';
import type { RoutingSource } from '../src/cluster/routing.js';
import type { Limits } from '../src/config.js';
import { parsePair, type DecodedImage, type ValidPair } from '../src/contract/pair.js';
import { encodeRouted, UNROUTED, type OriginalImage, type Route, type RoutedRecord } from '../src/contract/routed.js';
import type { CaptionEmbedder } from '../src/embed/embedder.js';
import type { ImageDecoder, PixelTarget } from '../src/image/decode.js';
import { splitByBytes } from './batches.js';
import { deadLetter, type InputMessage } from './messages.js';
import type { RecentIds } from './recent-ids.js';
import type { ChunkOutcome, ImageDecodeStats, Topology } from './stage.js';
import type { ChunkTransactions } from './transactions.js';

interface Accepted {
  message: InputMessage;
  pair: ValidPair;
}

/** A valid pair after ingestion: its image is pixels or an embedding; an encoded file rides along. */
interface Ingested extends Accepted {
  pair: ValidPair & { image: DecodedImage };
  original?: OriginalImage;
}

interface Rejected {
  message: InputMessage;
  reason: string;
  detail: string;
}

export interface ValidatedChunk<A extends Accepted = Accepted> {
  messages: InputMessage[];
  accepted: A[];
  rejected: Rejected[];
}

export interface IngestedChunk extends ValidatedChunk<Ingested> {
  /** What decoding the chunk's encoded images took (absent when it had none). */
  images?: ImageDecodeStats;
}

export interface EmbeddedChunk extends IngestedChunk {
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

/**
 * Decodes the chunk's encoded images, all at once through the decoder's bounded pool, to `target`;
 * one that does not decode turns its pair into a rejection (dead-lettered with the decoder's reason).
 * The file rides along as the record's `original` unless `keepOriginal` is false; the time it all
 * took rides along to the chunk's outcome (metrics, status).
 */
export function decodeImages(decoder: ImageDecoder, target: PixelTarget, keepOriginal = true): OperatorFunction<ValidatedChunk, IngestedChunk> {
  return concatMap(async (chunk) => {
    const files = chunk.accepted.flatMap(({ pair }) => (pair.image.kind === 'encoded' ? [pair.image.bytes] : []));
    // No file: every pair already holds pixels or an embedding.
    if (files.length === 0) return chunk as IngestedChunk;
    const decoded = await decoder.decodeAll(files, target);
    const accepted: Ingested[] = [];
    const rejected = [...chunk.rejected];
    let next = 0;
    for (const { message, pair } of chunk.accepted) {
      const { image } = pair;
      if (image.kind !== 'encoded') {
        accepted.push({ message, pair: { ...pair, image } });
        continue;
      }
      const outcome = decoded[next++]!;
      if (outcome.ok) accepted.push({ message, pair: { ...pair, image: outcome.image }, ...(keepOriginal ? { original: { format: image.format, bytes: image.bytes } } : {}) });
      else rejected.push({ message, reason: 'invalid-image', detail: `image.encoded: ${outcome.detail}` });
    }
    const failed = decoded.filter((d) => !d.ok).length;
    const ms = decoded.reduce((sum, d) => sum + d.ms, 0);
    return { messages: chunk.messages, accepted, rejected, images: { decoded: decoded.length - failed, failed, ms } };
  });
}

export function embedCaptions(embedder: CaptionEmbedder): OperatorFunction<IngestedChunk, EmbeddedChunk> {
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
export function withoutRepeats<A extends Accepted>(recent: RecentIds, rest: OperatorFunction<ValidatedChunk<A>, ChunkOutcome>): OperatorFunction<ValidatedChunk<A>, ChunkOutcome> {
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
  /** The most bytes per partition in one produce request (kafka.maxBatchBytes); absent: one request per chunk. */
  maxBatchBytes?: number;
}

/** Whether a pair is in the seed sample: a hash of its id, so a redelivered pair makes the same choice. */
export function inSeedSample(id: string, rate: number): boolean {
  return hashString(`seed-sample:${id}`) / 2 ** 32 < rate;
}

export function publishRouted({ producer, routedTopic, dlqTopic, routedPartitions, sample, transactions, afterSend, maxBatchBytes = Infinity }: PublishOptions): OperatorFunction<RoutedChunk, ChunkOutcome> {
  const send = async (topicMessages: TopicMessages[]) => {
    for (const request of splitByBytes(topicMessages, maxBatchBytes)) await producer.sendBatch({ topicMessages: request, acks: -1 });
  };
  return concatMap(async (chunk) => {
    const routed: Message[] = chunk.accepted.map((accepted, i) => {
      const record = toRoutedRecord(accepted, chunk.embeddings.subarray(i * chunk.dim, (i + 1) * chunk.dim), chunk.routes[i] ?? null);
      const expert = record.route?.expert ?? UNROUTED;
      return {
        key: expert === UNROUTED ? 'unrouted' : String(expert),
        value: encodeRouted(record),
        // Explicit partition: the default murmur2 partitioner can put two of four experts on one partition.
        // Unrouted pairs (before the first epoch) are spread by id so no partition takes them all.
        partition: expert === UNROUTED ? hashString(record.id) % routedPartitions : expert % routedPartitions,
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
    if (chunk.images) outcome.images = chunk.images;
    if (transactions) {
      // Dead letters stay outside the transaction: a rejection depends on the bytes alone, so a redelivery
      // rejects the same messages (at-least-once, as before), and the DLQ holds no commit markers, so
      // its offsets still count its messages (`modestream status`).
      const letters = topicMessages.filter((t) => t.topic === dlqTopic);
      await send(letters);
      await transactions.run(topicMessages.filter((t) => t.topic !== dlqTopic), { topic: last.topic, partition: last.partition, offset: nextOffset });
      return { ...outcome, offsetsCommitted: true };
    }
    await send(topicMessages);
    afterSend?.();
    return outcome;
  });
}

function toRoutedRecord({ message, pair, original }: Ingested, embedding: Float32Array, route: Route | null): RoutedRecord {
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
  if (original !== undefined) record.original = original;
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
  /** Ingestion's image decoder, the size it decodes to (the experts' input), and whether files ride along (default yes). */
  images: { decoder: ImageDecoder; target: PixelTarget; keepOriginal?: boolean };
  embedder: CaptionEmbedder;
  routing: RoutingSource;
  /** The recent-ids windows (pipeline.dedupWindow); absent: repeats are routed again. */
  recentIds?: RecentIds;
}

export function routerTopology(deps: RouterDeps): Topology {
  const publish = pipe(embedCaptions(deps.embedder), routeEmbedded(deps.routing), publishRouted(deps));
  return pipe(validatePairs(deps.limits), decodeImages(deps.images.decoder, deps.images.target, deps.images.keepOriginal), deps.recentIds ? withoutRepeats(deps.recentIds, publish) : publish);
}
