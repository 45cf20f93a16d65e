/**
 * The two stages as roles, each wired from the pieces a process (or a router worker thread) holds.
 * Used by the role files (router.ts, sharder.ts) and by app/router-worker.ts, so a thread runs the very same topology.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { RoutingSource } from '../../src/cluster/routing.js';
import type { Config, ImageInput } from '../../src/config.js';
import { parsePair } from '../../src/contract/pair.js';
import type { CaptionEmbedder } from '../../src/embed/embedder.js';
import { createSharpDecoder, type PixelTarget } from '../../src/image/decode.js';
import type { Logger } from '../../src/logger.js';
import type { ShardStore } from '../../state/shards.js';
import { seekOnAssignment } from '../../streams/assignment.js';
import { startCatchUp } from '../../streams/catch-up.js';
import { createStageHealth } from '../../streams/health.js';
import { connectClient, createStageConsumer } from '../../streams/kafka.js';
import { createLane } from '../../streams/lane.js';
import { readPartitionRange } from '../../streams/partition-range.js';
import { createRecentIds, type RecentIds } from '../../streams/recent-ids.js';
import { createRestoreTracker, remainingOf, type RestoreProgress } from '../../streams/restore.js';
import { routerTopology } from '../../streams/router.js';
import { createChunkTransactions } from '../../streams/transactions.js';
import { sharderTopology, type OnAppended } from '../../streams/sharder.js';
import { startStage, type RunningStage, type StageOptions } from '../../streams/stage.js';

interface RoleBase {
  config: Config;
  logger: Logger;
  kafka: Kafka;
  producer: Producer;
  routing: RoutingSource;
  onChunk?: StageOptions['onChunk'];
}

export async function startRouterRole({ config, logger, kafka, producer, routing, onChunk, embedder, routedPartitions }: RoleBase & { embedder: CaptionEmbedder; routedPartitions: number }): Promise<RunningStage> {
  const health = createStageHealth({ stage: 'router', maxRestarts: config.kafka.maxRestarts });
  const stageLogger = logger.child({ stage: 'router' });
  const afterSend = crashAfterSendHook();
  // Exactly-once publish (ARCHITECTURE.md section 4): one transactional id per input partition, so the
  // partition's next owner, on any node, fences the previous one.
  const transactions = config.pipeline.exactlyOnce
    ? createChunkTransactions({
        kafka,
        transactionalIdPrefix: config.groups.router,
        transactionTimeoutMs: config.kafka.transactionTimeoutMs,
        consumerGroupId: config.groups.router,
        logger: stageLogger,
        connect: (client) => connectClient(client, config.kafka),
        afterSend,
        maxBatchBytes: config.kafka.maxBatchBytes,
      })
    : undefined;
  const stage = await startStage({
    name: 'router',
    consumer: createStageConsumer({ kafka, groupId: config.groups.router, settings: config.kafka, logger, shouldRestart: health.shouldRestart }),
    health,
    topic: config.topics.pairs,
    topology: routerTopology({
      limits: config.limits,
      images: { decoder: createSharpDecoder({ limits: config.limits, concurrency: config.pipeline.imageDecoders || undefined }), target: decodeTarget(config.experts.imageInput), keepOriginal: config.pipeline.keepOriginalImages },
      embedder,
      routing,
      producer,
      routedTopic: config.topics.routed,
      dlqTopic: config.topics.dlq,
      routedPartitions,
      sample: { topic: config.topics.sample, rate: config.controller.seedSample.rate },
      transactions,
      afterSend,
      maxBatchBytes: config.kafka.maxBatchBytes,
      recentIds: config.pipeline.dedupWindow > 0 ? recentIdsOf(config, kafka, stageLogger) : undefined,
    }),
    chunkSize: config.pipeline.chunkSize,
    logger: stageLogger,
    onChunk,
    resumeFrom: transactions && ((topic, partition) => transactions.resumeFrom(topic, partition)),
  });
  return {
    ...stage,
    async stop() {
      await stage.stop();
      await transactions?.close();
    },
  };
}

/**
 * Ingestion decodes encoded images straight to the experts' pixel input. An embedding tower takes no
 * pixels: files are then still decoded (so a broken one is dead-lettered) to a small RGB thumbnail.
 */
function decodeTarget(input: ImageInput): PixelTarget {
  return input.kind === 'pixels' ? { width: input.width, height: input.height, channels: input.channels } : { width: 32, height: 32, channels: 3 };
}

/** The router's recent-ids windows, rebuilt from the pairs topic with the router's own validation. */
function recentIdsOf(config: Config, kafka: Kafka, logger: Logger): RecentIds {
  return createRecentIds({
    capacity: config.pipeline.dedupWindow,
    async readIds(topic, partition, from, to) {
      const ids: { offset: number; id: string }[] = [];
      await readPartitionRange({
        kafka,
        topic,
        partition,
        from,
        to,
        groupId: `${config.groups.router}.recent-ids.${randomUUID()}`,
        onMessage: (m) => {
          const parsed = parsePair({ key: m.key, value: m.value }, config.limits);
          if (parsed.ok) ids.push({ offset: Number(m.offset), id: parsed.pair.id });
        },
      });
      return ids;
    },
    onRebuilt: (info) => logger.info(info, 'recent pair ids read back from the pairs topic'),
  });
}

/**
 * Test hook: MODESTREAM_TEST_CRASH_AFTER_SEND=1 exits the process (code 137, as kill -9) right after a
 * chunk was sent and before its offset is committed: the crash the exactly-once publish is for.
 */
function crashAfterSendHook(): (() => void) | undefined {
  if (process.env.MODESTREAM_TEST_CRASH_AFTER_SEND !== '1') return undefined;
  return () => process.exit(137);
}

export interface RunningSharder extends RunningStage {
  /** Restore progress of the routed partitions this node owns (streams/restore.ts). */
  restores(): RestoreProgress[];
  /** Routed partitions assigned to this node now. */
  owned(): number[];
  /** Messages applied while restoring since the process started. */
  restoredTotal(): number;
}

export async function startSharderRole({ config, logger, kafka, admin, producer, routing, onChunk, store, onAppended }: RoleBase & { admin: Admin; store: ShardStore; onAppended?: OnAppended }): Promise<RunningSharder> {
  const log = logger.child({ stage: 'sharder' });
  const health = createStageHealth({ stage: 'sharder', maxRestarts: config.kafka.maxRestarts });
  const consumer = createStageConsumer({ kafka, groupId: config.groups.sharder, settings: config.kafka, logger, shouldRestart: health.shouldRestart });
  const tracker = createRestoreTracker({
    started: (p) => log.info({ ...p, remaining: remainingOf(p) }, 'restoring partition from the routed topic'),
    finished: (p, seconds) => log.info({ ...p, seconds: Number(seconds.toFixed(2)), recordsPerSecond: Math.round(p.applied / Math.max(seconds, 1e-3)) }, 'partition restored; live'),
  });
  // On every assignment, each partition resumes from the offset LMDB made durable HERE (restore on
  // assignment: streams/assignment.ts), not from the group's committed offset.
  seekOnAssignment({ consumer, admin, topic: config.topics.routed, group: config.groups.sharder, nextOffset: store.nextOffset, tracker, logger: log });
  const lane = createLane();
  const catchUp = startCatchUp({ store, routing, lane, logger: log });
  const stage = await startStage({
    name: 'sharder',
    consumer,
    topic: config.topics.routed,
    topology: sharderTopology({ store, routing, producer, dlqTopic: config.topics.dlq, lane, onAppended, isHistory: tracker.isHistory }),
    chunkSize: config.pipeline.chunkSize,
    logger: log,
    appliedUpTo: (topic, partition) => store.nextOffset(topic, partition),
    onChunk: (info) => {
      // Past trailing transaction markers: a restore's target (the end offset) counts them.
      tracker.applied(info.partition, info.through, info.outcome.messages);
      onChunk?.(info);
    },
    health,
  });
  return {
    ...stage,
    async stop() {
      await stage.stop();
      await catchUp.stop();
    },
    restores: tracker.restores,
    owned: tracker.owned,
    restoredTotal: tracker.restoredTotal,
  };
}
