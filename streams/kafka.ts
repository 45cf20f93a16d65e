/**
 * kafkajs wiring from the zod-validated settings: the client (SASL/TLS passed through), kafkajs logs
 * bridged into our logger, and topic creation.
 */
import { Kafka, Partitioners, logLevel, type Admin, type Consumer, type ITopicConfig, type KafkaConfig, type Producer, type SASLOptions } from 'kafkajs';
import { readFileSync } from 'node:fs';
import { AuthenticationError, ConfigError, errorMessage } from '../src/errors.js';
import { isAuthenticationError } from './errors.js';
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
    ssl: tlsOptions(settings.ssl),
    connectionTimeout: settings.connectionTimeoutMs,
    // Reconnect patiently: a broker restart must not crash the stages (ARCHITECTURE.md section 4).
    retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries },
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, log }) => {
      const { message, ...extra } = log;
      const fields = { kafkajs: namespace, ...extra };
      // Refused credentials reach the caller as one AuthenticationError (connectClient); kafkajs's own
      // lines about them would only repeat it.
      if (level === logLevel.ERROR && /authentication failed/i.test(message)) logger.debug(fields, message);
      else if (level === logLevel.ERROR) logger.error(fields, message);
      else if (level === logLevel.WARN) logger.warn(fields, message);
      else logger.debug(fields, message);
    },
  };
  // A copy: kafkajs stores its authenticator (a function) on the object, and the settings must stay
  // cloneable (the router's worker threads receive the config through workerData).
  if (settings.sasl) config.sasl = { ...settings.sasl } as SASLOptions;
  return new Kafka(config);
}

/** kafka.ssl as kafkajs's `ssl`: a CA file is read here, so a wrong path fails before any connection. */
export function tlsOptions(ssl: KafkaSettings['ssl']): KafkaConfig['ssl'] {
  if (typeof ssl === 'boolean') return ssl;
  let ca: Buffer[] | undefined;
  if (ssl.caFile !== undefined) {
    try {
      ca = [readFileSync(ssl.caFile)];
    } catch (err) {
      throw new ConfigError(`kafka.ssl.caFile: cannot read ${ssl.caFile} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
    }
  }
  return { rejectUnauthorized: ssl.rejectUnauthorized, ...(ca ? { ca } : {}) };
}

/**
 * Connects a kafkajs client. Wrong credentials become one AuthenticationError naming the brokers, the
 * mechanism and the user (never the password); kafkajs gives up on them at once (not retriable).
 */
export async function connectClient(client: { connect(): Promise<void> }, settings: KafkaSettings): Promise<void> {
  try {
    await client.connect();
  } catch (err) {
    throw explainKafkaError(err, settings);
  }
}

/** An authentication failure as the project's AuthenticationError; any other error unchanged. */
export function explainKafkaError(err: unknown, settings: KafkaSettings): unknown {
  if (!isAuthenticationError(err) || err instanceof AuthenticationError) return err;
  const how = settings.sasl ? `SASL ${settings.sasl.mechanism.toUpperCase()} for user "${settings.sasl.username}"` : 'SASL (kafka.sasl is not set)';
  return new AuthenticationError(
    `Kafka at ${settings.brokers.join(',')} refused ${how}: wrong username or password? ` +
      '(kafka.sasl.username, kafka.sasl.password or MODESTREAM_KAFKA__SASL__PASSWORD)',
    { cause: err },
  );
}

/**
 * A producer with the default (murmur2, Java-compatible) partitioner chosen explicitly, which also
 * silences kafkajs's v2 migration warning. Routed records carry explicit partitions anyway.
 */
export function createProducer(kafka: Kafka): Producer {
  return kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
}

/**
 * A producer for one transactional id (streams/transactions.ts): idempotent with one request in flight,
 * as Kafka transactions require. Its retries are kafkajs's idempotent default (unbounded).
 */
export function createTransactionalProducer(kafka: Kafka, { transactionalId, transactionTimeoutMs }: { transactionalId: string; transactionTimeoutMs: number }): Producer {
  return kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    transactionalId,
    transactionTimeout: transactionTimeoutMs,
    idempotent: true,
    maxInFlightRequests: 1,
  });
}

/**
 * A stage's consumer, and a follower's (seed sample, models): the configured session timeout (kafkajs's
 * own 30 s would keep a restarted node waiting for its dead predecessor), fetch sizes from the settings
 * (maxBytesPerPartition must exceed the largest message); after a failure it rejoins and resumes from
 * committed or durable offsets, as long as `shouldRestart` agrees (streams/health.ts: Kafka outages
 * always, our own failures a few times).
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
    maxWaitTimeInMs: settings.fetchMaxWaitMs,
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
    // Absent: kafkajs sends -1 and the broker applies its default.replication.factor.
    ...(settings.replicationFactor !== undefined ? { replicationFactor: settings.replicationFactor } : {}),
    configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })),
  }));
  const existing = new Set(await admin.listTopics());
  const missing = wanted.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  await admin.createTopics({ topics: missing, waitForLeaders: false });
  await waitForTopicLeaders(admin, missing.map((t) => t.topic));
  logger.info({ topics: missing.map((t) => t.topic) }, 'created topics');
}

/**
 * Waits until every partition of the topics has a leader that answers for it. kafkajs's own `waitForLeaders` asks one broker
 * and gives up on "does not host this topic-partition", which a broker of a multi-node cluster answers
 * until the new topic reaches its metadata cache.
 */
export async function waitForTopicLeaders(admin: Admin, topics: readonly string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: [...topics] });
      if (found.length === topics.length && found.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) {
        // A leader named in the metadata may still answer "not the leader" to ListOffsets for a moment
        // (a fresh broker), which the first reader of a new topic (the models replica) would die of.
        await Promise.all(topics.map((topic) => admin.fetchTopicOffsets(topic)));
        return;
      }
    } catch (err) {
      if (Date.now() >= deadline) throw err;
    }
    if (Date.now() >= deadline) throw new Error(`topics ${topics.join(', ')} have no leaders after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sum over partitions of (end offset - start offset): how many messages a topic holds now. */
export async function topicMessageCount(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + (Number(p.high) - Number(p.low)), 0);
}
