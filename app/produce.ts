/**
 * Feeds raw messages into a topic: each item's bytes go out untouched (validation is the router's job,
 * so a bad line is dead-lettered with its reason, not lost here). The key is the item's own `key` when
 * it has one (generated feeds), else the pair id when the value is a JSON object with a string `id`.
 * Sends in batches, paced to `rate` messages/s when given, and awaits each batch (acks from all in-sync
 * replicas) before reading more.
 */
import type { Producer } from 'kafkajs';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import { connectClient, createKafka, createProducer, ensureTopics } from '../streams/kafka.js';
import { splitByBytes } from '../streams/batches.js';
import { topicsOf } from './roles/registry.js';

export interface ProduceItem {
  value: Buffer;
  /** The message key; absent = the pair id read from the value (keyOf). */
  key?: string;
  /** Bytes of the source consumed so far (progress for files). */
  position?: number;
}

export interface ProduceOptions {
  producer: Producer;
  topic: string;
  items: AsyncIterable<ProduceItem>;
  /** Messages per second; undefined = as fast as the broker acknowledges. */
  rate?: number;
  batchSize?: number;
  /** The most bytes per produce request (kafka.maxBatchBytes): a batch of image pairs goes out in several. */
  maxBatchBytes?: number;
  onProgress?: (p: { sent: number; position?: number }) => void;
  signal?: AbortSignal;
}

/** A connected producer for `config`'s brokers, the topics created first when missing; the caller disconnects it. */
export async function openProducer(config: Config, logger: Logger): Promise<Producer> {
  const kafka = createKafka({ settings: config.kafka, logger });
  const admin = kafka.admin();
  await connectClient(admin, config.kafka);
  await ensureTopics({ admin, topics: topicsOf(config), settings: config.topics, logger });
  await admin.disconnect();
  const producer = createProducer(kafka);
  await connectClient(producer, config.kafka);
  return producer;
}

export function keyOf(value: Buffer): string | null {
  // Cheap pre-check: most values are objects; never throw on garbage.
  if (value[0] !== 0x7b /* { */) return null;
  try {
    const parsed: unknown = JSON.parse(value.toString('utf8'));
    const id = (parsed as { id?: unknown } | null)?.id;
    return typeof id === 'string' && id.length > 0 ? id : null;
  } catch {
    return null;
  }
}

export async function produceAll({ producer, topic, items, rate, batchSize = 500, maxBatchBytes = Infinity, onProgress, signal }: ProduceOptions): Promise<{ sent: number }> {
  const perBatch = rate ? Math.max(1, Math.min(batchSize, Math.ceil(rate / 10))) : batchSize;
  const started = performance.now();
  let sent = 0;
  let batch: { key: string | null; value: Buffer }[] = [];
  let batchBytes = 0;
  let position: number | undefined;

  const flush = async () => {
    if (batch.length === 0) return;
    for (const request of splitByBytes([{ topic, messages: batch }], maxBatchBytes)) await producer.sendBatch({ topicMessages: request, acks: -1 });
    sent += batch.length;
    batch = [];
    batchBytes = 0;
    onProgress?.({ sent, position });
    if (rate) {
      // Pace by the schedule, not by per-batch sleeps, so send latency does not lower the rate.
      const due = started + (sent / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  };

  for await (const item of items) {
    if (signal?.aborted) break;
    batch.push({ key: item.key ?? keyOf(item.value), value: item.value });
    batchBytes += item.value.length;
    position = item.position;
    // Bounded by bytes too: 500 web-image pairs would be hundreds of megabytes in memory.
    if (batch.length >= perBatch || batchBytes >= 8 * maxBatchBytes) await flush();
  }
  await flush();
  return { sent };
}

/** Non-empty lines of a text stream, as raw bytes (no decoding: invalid UTF-8 must reach the DLQ intact). */
export async function* linesOf(stream: AsyncIterable<Buffer | string>): AsyncGenerator<ProduceItem> {
  let rest = Buffer.alloc(0);
  let position = 0;
  for await (const piece of stream) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece) : piece;
    position += chunk.length;
    let buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      const line = trimCr(buf.subarray(0, nl));
      buf = buf.subarray(nl + 1);
      if (line.length > 0) yield { value: Buffer.from(line), position: position - buf.length };
    }
    rest = Buffer.from(buf);
  }
  const last = trimCr(rest);
  if (last.length > 0) yield { value: last, position };
}

function trimCr(line: Buffer): Buffer {
  return line.length && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line;
}
