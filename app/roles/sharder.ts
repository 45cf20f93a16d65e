/** The sharder role: append routed records durably to their expert's LMDB shard (streams/sharder.ts). */
import type { RoleDefinition } from './role.js';
import { startSharderRole } from './stages.js';

export const sharder: RoleDefinition = {
  name: 'sharder',
  input: (config) => ({ topic: config.topics.routed, group: config.groups.sharder, position: 'durable' }),
  topics: (config) => [
    { topic: config.topics.routed, numPartitions: config.topics.routedPartitions },
    { topic: config.topics.dlq, numPartitions: 1 },
  ],
  outcomes: ['written', 'duplicates', 'deadLettered'],
  start: ({ config, logger, kafka, producer, routing, core, telemetry }) =>
    startSharderRole({
      config,
      logger,
      kafka,
      producer,
      routing,
      store: core.store,
      onChunk: (info) => telemetry.emit({ type: 'chunk', ...info }),
      onAppended: (info) => telemetry.emit({ type: 'appended', ...info }),
    }),
};
