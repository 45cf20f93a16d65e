/** The router role: validate, embed and route pairs into `routed` (streams/router.ts), in threads or inline. */
import { withEmbeddingCache, type CacheLookups } from '../../src/embed/cache.js';
import { partitionCount } from '../../streams/kafka.js';
import type { StageOptions } from '../../streams/stage.js';
import { startRouterThreads } from '../router-threads.js';
import type { RoleDefinition } from './role.js';
import { startRouterRole } from './stages.js';

export const router: RoleDefinition = {
  name: 'router',
  input: (config) => ({ topic: config.topics.pairs, group: config.groups.router, position: 'committed' }),
  topics: (config) => [
    { topic: config.topics.pairs, numPartitions: config.topics.pairsPartitions },
    { topic: config.topics.routed, numPartitions: config.topics.routedPartitions },
    { topic: config.topics.dlq, numPartitions: 1 },
  ],
  outcomes: ['routed', 'unrouted', 'duplicates', 'deadLettered'],
  async start({ config, logger, kafka, producer, admin, routing, core, telemetry }) {
    const onChunk: StageOptions['onChunk'] = (info) => telemetry.emit({ type: 'chunk', ...info });
    const onCacheLookups = ({ hits, misses }: CacheLookups) => telemetry.emit({ type: 'cache', hits, misses });
    if (config.pipeline.routerThreads > 0) return startRouterThreads({ config, logger, count: config.pipeline.routerThreads, onChunk, onCacheLookups });
    return startRouterRole({
      config,
      logger,
      kafka,
      producer,
      routing,
      onChunk,
      // Only the router sees repeats worth caching; training and snapshots embed other text.
      embedder: withEmbeddingCache(core.embedder, { entries: config.pipeline.embedCache, onLookups: onCacheLookups }),
      routedPartitions: await partitionCount(admin, config.topics.routed),
    });
  },
};
