/**
 * The two stages as roles, each wired from the pieces a process (or a router worker thread) holds.
 * Used by the role files (router.ts, sharder.ts) and by app/router-worker.ts, so a thread runs the very same topology.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { RoutingSource } from '../../src/cluster/routing.js';
import type { Config } from '../../src/config.js';
import type { CaptionEmbedder } from '../../src/embed/embedder.js';
import type { Logger } from '../../src/logger.js';
import type { ShardStore } from '../../state/shards.js';
import { createStageHealth } from '../../streams/health.js';
import { connectClient, createStageConsumer } from '../../streams/kafka.js';
import { routerTopology } from '../../streams/router.js';
import { createChunkTransactions } from '../../streams/transactions.js';
import { nodeIdOf } from '../node-id.js';
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

export async function startRouterRole({ config, logger, kafka, producer, routing, onChunk, embedder, routedPartitions, thread = 0 }: RoleBase & { embedder: CaptionEmbedder; routedPartitions: number; thread?: number }): Promise<RunningStage> {
  const health = createStageHealth({ stage: 'router', maxRestarts: config.kafka.maxRestarts });
  const stageLogger = logger.child({ stage: 'router' });
  const afterSend = crashAfterSendHook();
  // Exactly-once publish (ARCHITECTURE.md section 4): the id is stable per node and thread, so a restarted
  // node fences its previous incarnation at once.
  const transactions = config.pipeline.exactlyOnce
    ? createChunkTransactions({
        kafka,
        transactionalId: `${config.groups.router}.${nodeIdOf(config)}.${thread}`,
        transactionTimeoutMs: config.kafka.transactionTimeoutMs,
        consumerGroupId: config.groups.router,
        logger: stageLogger,
        connect: (client) => connectClient(client, config.kafka),
        afterSend,
      })
    : undefined;
  await transactions?.start();
  const stage = await startStage({
    name: 'router',
    consumer: createStageConsumer({ kafka, groupId: config.groups.router, settings: config.kafka, logger, shouldRestart: health.shouldRestart }),
    health,
    topic: config.topics.pairs,
    topology: routerTopology({
      limits: config.limits,
      embedder,
      routing,
      producer,
      routedTopic: config.topics.routed,
      dlqTopic: config.topics.dlq,
      routedPartitions,
      sample: { topic: config.topics.sample, rate: config.controller.seedSample.rate },
      transactions,
      afterSend,
    }),
    chunkSize: config.pipeline.chunkSize,
    logger: stageLogger,
    onChunk,
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
 * Test hook: MODESTREAM_TEST_CRASH_AFTER_SEND=1 exits the process (code 137, as kill -9) right after a
 * chunk was sent and before its offset is committed: the crash the exactly-once publish is for.
 */
function crashAfterSendHook(): (() => void) | undefined {
  if (process.env.MODESTREAM_TEST_CRASH_AFTER_SEND !== '1') return undefined;
  return () => process.exit(137);
}

export function startSharderRole({ config, logger, kafka, producer, routing, onChunk, store, onAppended }: RoleBase & { store: ShardStore; onAppended?: OnAppended }): Promise<RunningStage> {
  const health = createStageHealth({ stage: 'sharder', maxRestarts: config.kafka.maxRestarts });
  const consumer = createStageConsumer({ kafka, groupId: config.groups.sharder, settings: config.kafka, logger, shouldRestart: health.shouldRestart });
  // On assignment, resume each partition from the offset LMDB made durable (it may be ahead of Kafka's
  // committed offset if we crashed between the LMDB flush and the Kafka commit).
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
      for (const partition of partitions) {
        const next = store.nextOffset(topic, partition);
        if (next !== undefined) consumer.seek({ topic, partition, offset: String(next) });
      }
    }
  });
  return startStage({
    name: 'sharder',
    consumer,
    topic: config.topics.routed,
    topology: sharderTopology({ store, routing, producer, dlqTopic: config.topics.dlq, onAppended }),
    chunkSize: config.pipeline.chunkSize,
    logger: logger.child({ stage: 'sharder' }),
    appliedUpTo: (topic, partition) => store.nextOffset(topic, partition),
    onChunk,
    health,
  });
}
