/**
 * kafkajs wiring from the zod-validated settings: the client (SASL/TLS passed through), kafkajs logs
 * bridged into our logger, and topic creation.
 */
import { Kafka, Partitioners, logLevel, type Admin, type Consumer, type ITopicConfig, type KafkaConfig, type Producer, type SASLOptions } from 'kafkajs';
import { errorMessage } from '../src/errors.js';
import type { KafkaSettings, TopicSettings } from '../src/config.js';
import type { Logger } from '../src/logger.js';

export interface CreateKafkaOptions {
  settings: KafkaSettings;
  logger: Logger;
  /** Connection retries; one-shot commands (status) use few so a down broker answers fast. */
  retries?: number;
}

export function createKafka({ settings, logger, retries = 12 }: CreateKafkaOptions): Kafka {
  const config: KafkaConfig = {
    clientId: settings.clientId,
    brokers: settings.brokers,
    ssl: settings.ssl,
    connectionTimeout: settings.connectionTimeoutMs,
    // Reconnect patiently: a broker restart must not crash the stages (ARCHITECTURE.md section 4).
    retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries },
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, log }) => {
      const { message, ...extra } = log;
      const fields = { kafkajs: namespace, ...extra };
      if (level === logLevel.ERROR) logger.error(fields, message);
      else if (level === logLevel.WARN) logger.warn(fields, message);
      else logger.debug(fields, message);
    },
  };
  if (settings.sasl) config.sasl = settings.sasl as SASLOptions;
  return new Kafka(config);
}

/**
 * A producer with the default (murmur2, Java-compatible) partitioner chosen explicitly, which also
 * silences kafkajs's v2 migration warning. Routed records carry explicit partitions anyway.
 */
export function createProducer(kafka: Kafka): Producer {
  return kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
}

/**
 * A stage's consumer: fetch sizes from the settings (maxBytesPerPartition must exceed the largest
 * message); after a failure it rejoins and resumes from committed or durable offsets, as long as
 * `shouldRestart` agrees (streams/health.ts: Kafka outages always, our own failures a few times).
 */
export function createStageConsumer({
  kafka,
  groupId,
  settings,
  logger,
  shouldRestart = () => true,
}: {
  kafka: Kafka;
  groupId: string;
  settings: KafkaSettings;
  logger: Logger;
  /** Whether to restart after a crash kafkajs would restart from (streams/health.ts decides). */
  shouldRestart?: (err: unknown) => boolean;
}): Consumer {
  return kafka.consumer({
    groupId,
    sessionTimeout: settings.sessionTimeoutMs,
    heartbeatInterval: settings.heartbeatIntervalMs,
    maxBytesPerPartition: settings.maxBytesPerPartition,
    maxBytes: Math.max(settings.maxBytesPerPartition * 4, 50 * 1024 * 1024),
    allowAutoTopicCreation: false,
    retry: {
      initialRetryTime: 300,
      maxRetryTime: 5_000,
      retries: 12,
      restartOnFailure: async (err) => {
        const restart = shouldRestart(err);
        if (restart) logger.warn({ groupId, err: errorMessage(err) }, 'consumer failed; restarting');
        else logger.error({ groupId, err: errorMessage(err) }, 'consumer failed too often; giving up (liveness now fails)');
        return restart;
      },
    },
  });
}

/** Partitions of a topic (the router sends expert e to partition e mod P). */
export async function partitionCount(admin: Admin, topic: string): Promise<number> {
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  return metadata.topics[0]?.partitions.length ?? 1;
}

/**
 * Creates the topics the roles declare (app/roles/registry.ts topicsOf) when missing; an existing topic
 * is left as it is. Nothing when `settings.create` is off (an admin owns the cluster's topics).
 */
export async function ensureTopics({ admin, topics, settings, logger }: { admin: Admin; topics: readonly { topic: string; numPartitions: number; configs?: Readonly<Record<string, string>> }[]; settings: TopicSettings; logger: Logger }): Promise<void> {
  if (!settings.create) return;
  const wanted: ITopicConfig[] = topics.map(({ topic, numPartitions, configs = {} }) => ({
    topic,
    numPartitions,
    replicationFactor: settings.replicationFactor,
    configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })),
  }));
  const existing = new Set(await admin.listTopics());
  const missing = wanted.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  await admin.createTopics({ topics: missing, waitForLeaders: true });
  logger.info({ topics: missing.map((t) => t.topic) }, 'created topics');
}

/** Sum over partitions of (end offset - start offset): how many messages a topic holds now. */
export async function topicMessageCount(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + (Number(p.high) - Number(p.low)), 0);
}
