/**
 * A stage runs one Kafka topic through a processing topology: fetch -> process -> commit, nothing else.
 * The consumer, the topology and the logger come in as one options object, so a test can swap any
 * of them.
 *
 * Per kafkajs batch: messages already applied are skipped (the sharder's LMDB offsets), the rest is cut
 * into chunks, and each chunk goes through the topology only while the consumer is running and the
 * partition is not stale (revoked or seeked). The topology's observable completes once the chunk's
 * effects are durable; only then is its offset resolved and committed to Kafka (at-least-once; the
 * sharder's pair-id dedup makes the shards exactly-once), unless the topology committed it in the
 * chunk's own Kafka transaction (the exactly-once router: `offsetsCommitted`). Backpressure is
 * pulling: kafkajs fetches the next batch only when this handler returns.
 *
 * A restore on assignment (streams/assignment.ts) is no special path here: the partition was sought to
 * the store's own offset, so its history simply comes first, in the same chunks, and a commit may move
 * the group's offset back to what this node made durable (ARCHITECTURE.md section 4).
 */
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { EMPTY, concatMap, from, lastValueFrom, of, type OperatorFunction } from 'rxjs';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { isRebalanceError } from './errors.js';
import type { StageHealth, StageHealthTracker } from './health.js';
import { toInputMessage, type InputMessage } from './messages.js';

export interface ChunkOutcome {
  /** Messages in the chunk. */
  messages: number;
  /** Offset of the message after the chunk's last one. */
  nextOffset: number;
  routed?: number;
  unrouted?: number;
  deadLettered?: number;
  written?: number;
  duplicates?: number;
  /** The topology committed the offset itself, in the transaction of the chunk's effects (the exactly-once router). */
  offsetsCommitted?: boolean;
  /** The router's ingestion decode of the chunk's encoded images. */
  images?: ImageDecodeStats;
}

export interface ImageDecodeStats {
  decoded: number;
  failed: number;
  /** Summed over the chunk's images (they decode side by side, so this exceeds the chunk's wall time). */
  ms: number;
}

/** The counters of a chunk outcome (a role declares which it counts; each is a metric label). */
export type OutcomeName = Exclude<keyof ChunkOutcome, 'messages' | 'nextOffset' | 'offsetsCommitted' | 'images'>;

/** What a stage does with one chunk of one partition; completes when the effects are durable. */
export type Topology = OperatorFunction<InputMessage[], ChunkOutcome>;

export interface StageOptions {
  name: string;
  consumer: Consumer;
  topic: string;
  topology: Topology;
  chunkSize: number;
  logger: Logger;
  /**
   * Async and before each batch: where the partition really stands when that may have changed (the
   * exactly-once router after opening a partition's transactional producer: streams/transactions.ts);
   * older messages are skipped. Undefined: nothing to add.
   */
  resumeFrom?: (topic: string, partition: number) => Promise<number | undefined>;
  /** First offset not yet applied for a partition (the sharder reads it from LMDB); older messages are skipped. */
  appliedUpTo?: (topic: string, partition: number) => number | undefined;
  /** Called after each committed chunk (metrics, progress). */
  /** `through`: the offset the partition now stands at, past a batch's trailing transaction markers. */
  onChunk?: (info: { stage: string; topic: string; partition: number; outcome: ChunkOutcome; ms: number; through: number }) => void;
  /** Follows the consumer (the same tracker decides its restarts: createStageConsumer). */
  health?: StageHealthTracker;
}

export interface RunningStage {
  /** Finishes the chunk in flight, commits it, leaves the group. */
  stop(): Promise<void>;
  /** The stage's consumers, for the probes (one per router thread). */
  health(): StageHealth[];
}

export async function startStage(options: StageOptions): Promise<RunningStage> {
  const { consumer, topic, logger, health, name } = options;
  health?.watch(consumer);
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    // We resolve offsets ourselves, chunk by chunk: a batch cut short must not be marked done.
    eachBatchAutoResolve: false,
    eachBatch: (payload) => handleBatch(options, payload),
  });
  logger.info({ topic }, 'stage started');
  return {
    async stop() {
      // kafkajs waits for the running eachBatch, which stops at the next chunk boundary (isRunning).
      health?.stopped();
      await consumer.disconnect();
      logger.info('stage stopped');
    },
    // Without a tracker the stage is taken to run: it was started, and nothing watches it fail.
    health: () => [health?.view() ?? { stage: name, state: 'running', since: 0, restarts: 0 }],
  };
}

async function handleBatch(options: StageOptions, payload: EachBatchPayload): Promise<void> {
  const { consumer, topology, chunkSize, logger, appliedUpTo, onChunk, name, health } = options;
  const { batch, isRunning, isStale, heartbeat, resolveOffset } = payload;
  const { topic, partition } = batch;
  // A refused commit means the partition is moving to another member: stop at the next chunk.
  let refused = false;
  const live = () => !refused && isRunning() && !isStale();

  const resumed = (await options.resumeFrom?.(topic, partition)) ?? -1;
  const applied = Math.max(appliedUpTo?.(topic, partition) ?? -1, resumed);
  const fresh = batch.messages.filter((m) => Number(m.offset) >= applied);
  if (fresh.length < batch.messages.length) {
    logger.debug({ topic, partition, skipped: batch.messages.length - fresh.length }, 'skipping messages already applied');
  }
  if (fresh.length === 0) {
    // Everything here was applied before a crash; move Kafka's committed offset up to what is durable.
    await commit(consumer, logger, topic, partition, applied);
    return;
  }

  const chunks: InputMessage[][] = [];
  for (let i = 0; i < fresh.length; i += chunkSize) {
    chunks.push(fresh.slice(i, i + chunkSize).map((m) => toInputMessage(topic, partition, m)));
  }
  // A transactional input (the routed topic) ends a batch with commit markers, which kafkajs hides: the
  // last chunk commits past them, or the lag would read 1 forever (ARCHITECTURE.md section 4).
  const batchEnd = Number(batch.lastOffset?.() ?? -1) + 1;
  const lastChunk = chunks[chunks.length - 1];

  await lastValueFrom(
    from(chunks).pipe(
      // The liveness check sits inside concatMap so it runs when the chunk's turn comes, not when
      // `from` emits (which is all at once).
      concatMap((chunk) => {
        if (!live()) return EMPTY;
        const started = performance.now();
        return of(chunk).pipe(
          topology,
          concatMap(async (outcome) => {
            resolveOffset(String(outcome.nextOffset - 1));
            const next = chunk === lastChunk ? Math.max(outcome.nextOffset, batchEnd) : outcome.nextOffset;
            const committed = outcome.offsetsCommitted === true || (await commit(consumer, logger, topic, partition, next));
            refused ||= !committed;
            health?.progressed();
            onChunk?.({ stage: name, topic, partition, outcome, ms: performance.now() - started, through: next });
            await heartbeat().catch((err: unknown) => logger.debug({ err: errorMessage(err) }, 'heartbeat failed'));
            return committed;
          }),
        );
      }),
    ),
    { defaultValue: true },
  );
}

/**
 * Commits `offset` for one partition. A commit refused because the group is rebalancing is not an
 * error: the effects are durable (LMDB offsets for the sharder, dedup downstream for the router) and
 * the partition's next owner starts from there.
 */
async function commit(consumer: Consumer, logger: Logger, topic: string, partition: number, offset: number): Promise<boolean> {
  if (offset < 0) return true;
  try {
    await consumer.commitOffsets([{ topic, partition, offset: String(offset) }]);
    return true;
  } catch (err) {
    if (!isRebalanceError(err)) throw err;
    logger.warn({ topic, partition, offset, err: errorMessage(err) }, 'commit refused during a rebalance; the next owner resumes from durable state');
    return false;
  }
}
