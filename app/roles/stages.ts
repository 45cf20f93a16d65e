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
import { createStageConsumer } from '../../streams/kafka.js';
import { routerTopology } from '../../streams/router.js';
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

export function startRouterRole({ config, logger, kafka, producer, routing, onChunk, embedder, routedPartitions }: RoleBase & { embedder: CaptionEmbedder; routedPartitions: number }): Promise<RunningStage> {
  const health = createStageHealth({ stage: 'router', maxRestarts: config.kafka.maxRestarts });
  return startStage({
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
    }),
    chunkSize: config.pipeline.chunkSize,
    logger: logger.child({ stage: 'router' }),
    onChunk,
  });
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
