/**
 * Fills this node's seed sample (state/seed-sample.ts) from the sample topic that every router writes, so
 * the seed model trains on the whole cluster's data wherever it trains (ARCHITECTURE.md section 4). Its
 * own consumer group per node, committed after each chunk is in LMDB: a restart resumes, and a
 * redelivered pair is not stored twice.
 */
import type { Kafka } from 'kafkajs';
import type { Config } from '../src/config.js';
import { decodeRouted } from '../src/contract/routed.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { SeedSample } from '../state/seed-sample.js';
import { createStageConsumer } from '../streams/kafka.js';
import { nodeIdOf } from './node-id.js';

export interface SeedSampleFollower {
  stop(): Promise<void>;
}

export async function startSeedSampleFollower({ config, kafka, sample, logger }: { config: Config; kafka: Kafka; sample: SeedSample; logger: Logger }): Promise<SeedSampleFollower> {
  const log = logger.child({ component: 'seed-sample' });
  const topic = config.topics.sample;
  // The configured session timeout, not kafkajs's 30 s: after a kill -9 the restarted node rejoins this
  // group (same node id) only once the dead member's session has expired.
  const consumer = createStageConsumer({ kafka, groupId: `${config.groups.controller}.sample.${nodeIdOf(config)}`, settings: config.kafka, logger: log });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, heartbeat }) => {
      const records = batch.messages.flatMap((m) => {
        const decoded = m.value ? decodeRouted(m.value) : undefined;
        if (decoded?.ok) return [{ id: decoded.record.id, bytes: m.value! }];
        log.warn({ offset: m.offset, detail: decoded && !decoded.ok ? decoded.detail : 'empty message' }, 'unreadable record on the sample topic; skipped');
        return [];
      });
      await sample.offer(records);
      const last = batch.messages.at(-1);
      if (last) await consumer.commitOffsets([{ topic, partition: batch.partition, offset: String(Number(last.offset) + 1) }]).catch((err: unknown) => log.debug({ err: errorMessage(err) }, 'sample commit refused; the chunk is read again and deduplicated'));
      await heartbeat();
    },
  });
  return { stop: () => consumer.disconnect() };
}
