/**
 * Reading the nodes topic (ARCHITECTURE.md section 4, "Cluster status"): each node's newest heartbeat.
 * The topic is compacted and keyed by node id, so reading it from the beginning gives every node's
 * latest state. Each reader joins a group of its own that never commits: every start reads the whole
 * topic again, and no reader takes partitions from another.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Config } from '../../src/config.js';
import { errorMessage } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { NodeHeartbeat } from '../../src/nodes.js';

export interface NodeDirectory {
  /** Each node's newest heartbeat seen so far. */
  heartbeats(): NodeHeartbeat[];
  stop(): Promise<void>;
}

type Settings = Pick<Config, 'kafka' | 'topics'>;

const readerGroup = (config: Settings, who: string) => `${config.kafka.clientId}.nodes-reader.${who}.${randomUUID().slice(0, 8)}`;

/** Folds one record into the map of each node's newest heartbeat; a tombstone removes the node, a record not ours is skipped. */
export function applyRecord(latest: Map<string, NodeHeartbeat>, message: Pick<KafkaMessage, 'key' | 'value'>, logger: Logger): void {
  if (!message.value) {
    // A tombstone: an operator forgetting a node for good.
    if (message.key) latest.delete(message.key.toString());
    return;
  }
  let parsed: ReturnType<typeof NodeHeartbeat.safeParse>;
  try {
    parsed = NodeHeartbeat.safeParse(JSON.parse(message.value.toString()));
  } catch (err) {
    logger.warn({ err: errorMessage(err) }, 'nodes topic: a record that is not JSON; skipped');
    return;
  }
  if (!parsed.success) {
    logger.warn({ key: message.key?.toString(), err: parsed.error.message }, 'nodes topic: not a heartbeat; skipped');
    return;
  }
  // Log order is the node's own order (one producer, one partition): the later record is the newer.
  latest.set(parsed.data.node, parsed.data);
}

function readerConsumer(kafka: Kafka, config: Settings, who: string, logger: Logger): Consumer {
  return kafka.consumer({
    groupId: readerGroup(config, who),
    sessionTimeout: config.kafka.sessionTimeoutMs,
    heartbeatInterval: config.kafka.heartbeatIntervalMs,
    maxWaitTimeInMs: config.kafka.fetchMaxWaitMs,
    allowAutoTopicCreation: false,
    // A follower waits out Kafka outages like the stages do (streams/health.ts).
    retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 12, restartOnFailure: async (err) => (logger.warn({ err: errorMessage(err) }, 'nodes reader failed; restarting'), true) },
  });
}

/** A running node's view of the cluster, kept up to date for its status and metrics. */
export async function followNodes({ kafka, config, node, logger }: { kafka: Kafka; config: Settings; node: string; logger: Logger }): Promise<NodeDirectory> {
  const latest = new Map<string, NodeHeartbeat>();
  const consumer = readerConsumer(kafka, config, node, logger);
  await consumer.connect();
  await consumer.subscribe({ topics: [config.topics.nodes], fromBeginning: true });
  await consumer.run({ autoCommit: false, eachMessage: async ({ message }) => applyRecord(latest, message, logger) });
  return {
    heartbeats: () => [...latest.values()],
    stop: () => consumer.disconnect(),
  };
}

/**
 * The nodes topic read once, up to its end offset at the call (`modestream status` without a running
 * node). Rejects when the topic cannot be read within `timeoutMs`.
 */
export async function readNodes({ kafka, admin, config, logger, timeoutMs = 15_000 }: { kafka: Kafka; admin: Admin; config: Settings; logger: Logger; timeoutMs?: number }): Promise<NodeHeartbeat[]> {
  const ends = await admin.fetchTopicOffsets(config.topics.nodes);
  // The last offset to reach per partition; empty partitions need no read.
  const pending = new Map(ends.filter((p) => Number(p.high) > Number(p.low)).map((p) => [p.partition, Number(p.high) - 1]));
  const latest = new Map<string, NodeHeartbeat>();
  if (pending.size === 0) return [];
  const consumer = readerConsumer(kafka, config, 'cli', logger);
  let timeout: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timeout = setTimeout(() => reject(new Error(`the nodes topic ${config.topics.nodes} was not read within ${timeoutMs} ms`)), timeoutMs);
      (async () => {
        await consumer.connect();
        await consumer.subscribe({ topics: [config.topics.nodes], fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            applyRecord(latest, message, logger);
            if (Number(message.offset) >= (pending.get(partition) ?? Infinity)) pending.delete(partition);
            if (pending.size === 0) resolve();
          },
        });
      })().catch(reject);
    });
  } finally {
    clearTimeout(timeout);
    await consumer.disconnect().catch(() => undefined);
  }
  return [...latest.values()];
}
