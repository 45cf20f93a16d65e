/**
 * The control plane's wiring (ARCHITECTURE.md section 4): the control follower every process that needs
 * epochs runs (`run` before its roles, `bootstrap`), and publishers that write epochs through the log.
 */
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { CentroidModel } from '../src/cluster/model.js';
import type { Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import type { CentroidStore } from '../state/centroids.js';
import { startControlFollower, type ControlFollower } from '../streams/control-follower.js';
import { NO_CLAIM } from '../streams/control-log.js';
import { createLogPublisher } from '../streams/control-publisher.js';
import { createKafka, createProducer, ensureTopics } from '../streams/kafka.js';
import type { CentroidPublisher } from '../streams/ports.js';
import { nodeIdOf } from './node-id.js';
import type { TopicSpec } from './roles/role.js';

export type { ControlFollower };

/** Starts the follower and waits until the local store holds every epoch the log held at start. */
export async function followControl({ config, kafka, admin, centroids, logger }: { config: Config; kafka: Kafka; admin: Admin; centroids: CentroidStore; logger: Logger }): Promise<ControlFollower> {
  const started = performance.now();
  const follower = await startControlFollower({
    kafka,
    admin,
    topic: config.topics.control,
    groupPrefix: config.groups.controller,
    settings: config.kafka,
    store: centroids,
    logger: logger.child({ component: 'control' }),
  });
  await follower.caughtUp();
  logger.info({ epoch: centroids.latestEpoch(), ms: Math.round(performance.now() - started) }, 'control log read up to its end');
  return follower;
}

/** A publisher writing under `claim` (a leader's term), or under the newest claim in the log (one-shot commands). */
export function logPublisher({ config, producer, follower, centroids, logger, claim, onFenced }: { config: Config; producer: Producer; follower: ControlFollower; centroids: CentroidStore; logger: Logger; claim?: number; onFenced?: () => void }): CentroidPublisher {
  return createLogPublisher({
    producer,
    topic: config.topics.control,
    follower,
    source: centroids,
    node: nodeIdOf(config),
    claim: claim === undefined ? () => follower.state().claim?.offset ?? NO_CLAIM : () => claim,
    logger: logger.child({ component: 'control' }),
    onFenced,
  });
}

/**
 * For one-shot commands (`modestream bootstrap`): the Kafka clients, the follower caught up, and a
 * publish through the log. `topics`: the cluster's topics (app/roles/registry.ts clusterTopics), created
 * when missing. `close` stops them (the LMDB core is the caller's).
 */
export async function openControl(config: Config, logger: Logger, centroids: CentroidStore, topics: readonly TopicSpec[]): Promise<{ publish(model: CentroidModel): Promise<boolean>; close(): Promise<void> }> {
  const kafka = createKafka({ settings: config.kafka, logger: logger.child({ component: 'kafka' }) });
  const admin = kafka.admin();
  await admin.connect();
  const producer = createProducer(kafka);
  try {
    await ensureTopics({ admin, topics, settings: config.topics, logger });
    await producer.connect();
    const follower = await followControl({ config, kafka, admin, centroids, logger });
    const publisher = logPublisher({ config, producer, follower, centroids, logger });
    return {
      publish: (model) => publisher.publish(model),
      async close() {
        await follower.stop();
        await producer.disconnect();
        await admin.disconnect();
      },
    };
  } catch (err) {
    await producer.disconnect();
    await admin.disconnect();
    throw err;
  }
}
