/**
 * In-memory stand-ins for what the stages talk to (kafkajs producer and consumer, the shard store), so
 * the topologies and the stage loop run in unit tests without a broker or LMDB. Only the methods the
 * stages call are implemented; the casts to kafkajs types live here, never in the shipped code.
 */
import type { Consumer, EachBatchPayload, KafkaMessage, Message, Producer, ProducerBatch, ProducerRecord } from 'kafkajs';
import { clusterSample } from '../../src/cluster/bootstrap.js';
import type { CentroidModel } from '../../src/cluster/model.js';
import { createRouting, type Routing, type RoutingSource } from '../../src/cluster/routing.js';
import { ConfigSchema, type ClusteringSettings } from '../../src/config.js';
import { decodeRouted, type EncodedRecord, type RoutedRecord } from '../../src/contract/routed.js';
import type { CaptionEmbedder } from '../../src/embed/embedder.js';
import type { InputMessage } from '../../streams/messages.js';
import type { ShardPosition, ShardWriter } from '../../streams/ports.js';

export function inputMessage({ topic = 'in', partition = 0, offset, value, key = null, headers = {}, timestamp = '1700000000000' }: Partial<Omit<InputMessage, 'offset'>> & { offset: number | string; value: Buffer | null }): InputMessage {
  return { topic, partition, offset: String(offset), timestamp, key, value, headers };
}

/** A header value as text (kafkajs allows Buffer, string or arrays of them). */
export function headerText(message: Message, name: string): string | undefined {
  const value = message.headers?.[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value : [value]).map((v) => v.toString()).join(',');
}

export interface CapturingProducer {
  producer: Producer;
  sends: ProducerRecord[];
  batches: ProducerBatch[];
  /** Every message sent to `topic`, by send or sendBatch, in order. */
  messagesTo(topic: string): Message[];
}

export function capturingProducer(): CapturingProducer {
  const sends: ProducerRecord[] = [];
  const batches: ProducerBatch[] = [];
  const stub = {
    async send(record: ProducerRecord) {
      sends.push(record);
      return [];
    },
    async sendBatch(batch: ProducerBatch) {
      batches.push(batch);
      return [];
    },
  };
  return {
    producer: stub as unknown as Producer,
    sends,
    batches,
    messagesTo: (topic) => [
      ...sends.filter((s) => s.topic === topic).flatMap((s) => s.messages),
      ...batches.flatMap((b) => b.topicMessages ?? []).filter((t) => t.topic === topic).flatMap((t) => t.messages),
    ],
  };
}

/** The sharder's port over a Map: dedup by pair id, positions only move forward, like the LMDB store. */
export interface MemoryShardWriter extends ShardWriter {
  stored: Map<string, EncodedRecord>;
  appends: { ids: string[]; position: ShardPosition; history?: true }[];
  nextOffset(topic: string, partition: number): number | undefined;
}

export function memoryShardWriter(): MemoryShardWriter {
  const stored = new Map<string, EncodedRecord>();
  const offsets = new Map<string, number>();
  const appends: MemoryShardWriter['appends'] = [];
  return {
    stored,
    appends,
    async append(records, position, options) {
      appends.push({ ids: records.map((r) => r.record.id), position: { ...position }, ...(options?.history ? { history: true as const } : {}) });
      let written = 0;
      for (const item of records) {
        if (stored.has(item.record.id)) continue;
        stored.set(item.record.id, item);
        written++;
      }
      const key = `${position.topic}/${position.partition}`;
      if (position.nextOffset > (offsets.get(key) ?? -1)) offsets.set(key, position.nextOffset);
      return { written, duplicates: records.length - written };
    },
    nextOffset: (topic, partition) => offsets.get(`${topic}/${partition}`),
  };
}

/** A routing source over one model, or none (before the first epoch); `publish` switches to a model. */
export function fixedRoutingSource(model?: CentroidModel): RoutingSource & { publish(model: CentroidModel): void } {
  let routing: Routing | undefined = model && createRouting(model);
  return {
    current: () => routing,
    publish(next) {
      routing?.dispose();
      routing = createRouting(next);
    },
    dispose() {
      routing?.dispose();
      routing = undefined;
    },
  };
}

export function decodedOrThrow(bytes: Buffer | string | null | undefined): RoutedRecord {
  const decoded = decodeRouted(typeof bytes === 'string' ? Buffer.from(bytes) : (bytes ?? null));
  if (!decoded.ok) throw new Error(`expected a routed record: ${decoded.detail}`);
  return decoded.record;
}

export function kafkaMessage(offset: number, value = `v${offset}`): KafkaMessage {
  return { key: null, value: Buffer.from(value), timestamp: '1700000000000', attributes: 0, offset: String(offset), headers: {} } as KafkaMessage;
}

export interface FakeConsumer {
  consumer: Consumer;
  /** The eachBatch handler startStage passed to run(). */
  eachBatch(): (payload: EachBatchPayload) => Promise<void>;
  subscribed: unknown[];
  runConfig(): Record<string, unknown> | undefined;
  commits: { topic: string; partition: number; offset: string }[];
  /** Runs before each commit is recorded; throwing refuses the commit (e.g. a rebalance error). */
  onCommit?: (offset: string) => void;
  disconnected: boolean;
}

export function fakeConsumer(): FakeConsumer {
  let run: Record<string, unknown> | undefined;
  const fake: FakeConsumer = {
    consumer: undefined as unknown as Consumer,
    eachBatch() {
      const handler = run?.eachBatch;
      if (typeof handler !== 'function') throw new Error('startStage did not pass an eachBatch handler to run()');
      return handler as (payload: EachBatchPayload) => Promise<void>;
    },
    subscribed: [],
    runConfig: () => run,
    commits: [],
    disconnected: false,
  };
  const stub = {
    events: { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' },
    on: () => () => {},
    async subscribe(subscription: unknown) {
      fake.subscribed.push(subscription);
    },
    async run(config: Record<string, unknown>) {
      run = config;
    },
    async commitOffsets(offsets: { topic: string; partition: number; offset: string }[]) {
      for (const o of offsets) {
        fake.onCommit?.(o.offset);
        fake.commits.push(o);
      }
    },
    async disconnect() {
      fake.disconnected = true;
    },
  };
  fake.consumer = stub as unknown as Consumer;
  return fake;
}

export interface FakeBatch {
  payload: EachBatchPayload;
  resolved: string[];
  heartbeats: number;
  stale: boolean;
  running: boolean;
}

export function fakeBatch(topic: string, partition: number, messages: KafkaMessage[]): FakeBatch {
  const fake: FakeBatch = { payload: undefined as unknown as EachBatchPayload, resolved: [], heartbeats: 0, stale: false, running: true };
  const payload = {
    batch: { topic, partition, highWatermark: String(messages.length ? Number(messages[messages.length - 1]!.offset) + 1 : 0), messages },
    resolveOffset: (offset: string) => void fake.resolved.push(offset),
    heartbeat: async () => void fake.heartbeats++,
    pause: () => () => {},
    commitOffsetsIfNecessary: async () => {},
    uncommittedOffsets: () => ({ topics: [] }),
    isRunning: () => fake.running,
    isStale: () => fake.stale,
  };
  fake.payload = payload as unknown as EachBatchPayload;
  return fake;
}

const COLOURS = ['red', 'blue', 'black', 'white', 'green', 'grey'];
const ITEMS = ['cotton t-shirt', 'leather ankle boot', 'wool pullover', 'denim trouser', 'silk dress', 'canvas sneaker', 'summer sandal', 'shoulder bag'];
const WHO = ['for men', 'for women', 'for kids', 'for running', 'for the office'];

/** Distinct fashion captions, deterministic: enough topics for a handful of experts. */
export function fashionCaptions(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `a ${COLOURS[i % COLOURS.length]} ${ITEMS[Math.floor(i / COLOURS.length) % ITEMS.length]} ${WHO[i % WHO.length]}`);
}

/**
 * A first centroid epoch bootstrapped, as the controller does, from hashed embeddings of `sample`
 * captions (needs a tensor backend: initBackend first).
 */
export async function bootstrapModel(embedder: CaptionEmbedder, sample: number, settings: Partial<ClusteringSettings> = {}): Promise<CentroidModel> {
  const flat = await embedder.embed(fashionCaptions(sample));
  const rows = Array.from({ length: sample }, (_, i) => flat.slice(i * embedder.dim, (i + 1) * embedder.dim));
  const clustering = { ...ConfigSchema.parse({}).clustering, fine: 8, experts: 4, maxIterations: 15, ...settings };
  return clusterSample({ sample: rows, epoch: 1, settings: clustering, embedder: embedder.fingerprint, now: 0 });
}
