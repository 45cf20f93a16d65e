/**
 * The sharder role: append routed records durably to their expert's LMDB shard (streams/sharder.ts),
 * restore each assigned partition's shard from the routed topic (streams/assignment.ts, restore.ts) and
 * bring the node's own records to each new epoch (streams/catch-up.ts). ARCHITECTURE.md section 4.
 */
import type { RoleDefinition } from './role.js';
import { startSharderRole, type RunningSharder } from './stages.js';

/**
 * The routed topic is the shards' changelog (ARCHITECTURE.md section 4): a node that takes over a
 * partition rebuilds its shard from it, so it is kept whole (no time or size retention).
 */
export const KEEP_FOREVER = { 'retention.ms': '-1', 'retention.bytes': '-1' } as const;

export const sharder: RoleDefinition<RunningSharder> = {
  name: 'sharder',
  input: (config) => ({ topic: config.topics.routed, group: config.groups.sharder, position: 'durable' }),
  topics: (config) => [
    { topic: config.topics.routed, numPartitions: config.topics.routedPartitions, configs: KEEP_FOREVER },
    { topic: config.topics.dlq, numPartitions: 1 },
  ],
  outcomes: ['written', 'duplicates', 'deadLettered'],
  start: ({ config, logger, kafka, admin, producer, routing, core, telemetry }) =>
    startSharderRole({
      config,
      logger,
      kafka,
      admin,
      producer,
      routing,
      store: core.store,
      onChunk: (info) => telemetry.emit({ type: 'chunk', ...info }),
      onAppended: (info) => telemetry.emit({ type: 'appended', ...info }),
    }),
};
