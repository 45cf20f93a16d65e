/**
 * One Kafka transaction per chunk: the chunk's messages and its consumer offset commit together or not
 * at all (Kafka Streams' exactly_once; ARCHITECTURE.md section 4, "exactly-once publish"). Read-committed
 * consumers (kafkajs's default) never see the records of a chunk whose transaction did not commit, so
 * when a chunk is redelivered and routed differently only the redelivery's routing is visible.
 *
 * One transactional id per INPUT partition (Kafka Streams' first exactly-once design): whichever node
 * takes a partition over opens a producer with the same id, and its InitProducerId fences the previous
 * owner (a zombie's later commit fails) and settles the transaction it left open (committed or aborted)
 * before answering. Only then is the group's committed offset read back (`resumeFrom`): stable now, it
 * says where the partition really stands, so a chunk whose commit landed is not processed again.
 */
import type { Admin, Kafka, Producer, TopicMessages } from 'kafkajs';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { splitByBytes } from './batches.js';
import { isFencedError } from './errors.js';
import { createTransactionalProducer } from './kafka.js';

export interface ChunkOffset {
  topic: string;
  partition: number;
  /** The next offset to consume (the chunk's last + 1). */
  offset: number;
}

export interface ChunkTransactions {
  /**
   * Before a partition's batch: when its producer is new (first batch here, or after a failure), opens
   * it (fencing and settling the previous owner's transaction) and returns the group's committed offset,
   * from which the batch must resume; undefined when nothing changed since the last chunk.
   */
  resumeFrom(topic: string, partition: number): Promise<number | undefined>;
  /**
   * Sends the messages and commits `offset` for the consumer group in one transaction. Any failure
   * aborts it and throws: the stage's consumer restarts from the committed offsets and the chunk is
   * processed again (by us or by the partition's next owner).
   */
  run(topicMessages: TopicMessages[], offset: ChunkOffset): Promise<void>;
  close(): Promise<void>;
}

export interface ChunkTransactionsOptions {
  kafka: Kafka;
  /** The ids are `<prefix>.<topic>.<partition>`. */
  transactionalIdPrefix: string;
  transactionTimeoutMs: number;
  consumerGroupId: string;
  logger: Logger;
  /** The most bytes per partition in one produce request (kafka.maxBatchBytes): a chunk is sent in as many as it takes. */
  maxBatchBytes?: number;
  /** Connects a client (streams/kafka.ts connectClient, which explains refused credentials). */
  connect: (client: Producer | Admin) => Promise<void>;
  /** Test hook: runs inside the transaction after the messages were sent, before offsets and commit. */
  afterSend?: () => void;
}

export function createChunkTransactions(options: ChunkTransactionsOptions): ChunkTransactions {
  const { kafka, transactionalIdPrefix, transactionTimeoutMs, consumerGroupId, logger, connect, afterSend, maxBatchBytes = Infinity } = options;
  const producers = new Map<string, { producer: Producer; resumed: boolean }>();
  let admin: Admin | undefined;
  const idOf = (topic: string, partition: number) => `${transactionalIdPrefix}.${topic}.${partition}`;

  /** The partition's producer, opened and with its producer id initialised (fencing older owners). */
  const ready = async (topic: string, partition: number) => {
    const transactionalId = idOf(topic, partition);
    const open = producers.get(transactionalId);
    if (open) return open;
    const fresh = createTransactionalProducer(kafka, { transactionalId, transactionTimeoutMs });
    await connect(fresh);
    try {
      // An empty transaction sends nothing but InitProducerId: the broker settles what this id left open.
      await (await fresh.transaction()).abort();
    } catch (err) {
      await fresh.disconnect().catch(() => {});
      throw retriable(err);
    }
    const entry = { producer: fresh, resumed: false };
    producers.set(transactionalId, entry);
    logger.debug({ transactionalId }, 'transactional producer ready');
    return entry;
  };

  /** Drops a producer whose transaction state is unknown; the next one's InitProducerId settles it. */
  const drop = async (transactionalId: string) => {
    const old = producers.get(transactionalId);
    producers.delete(transactionalId);
    await old?.producer.disconnect().catch((err: unknown) => logger.debug({ err: errorMessage(err) }, 'transactional producer disconnect failed'));
  };

  const committed = async (topic: string, partition: number): Promise<number> => {
    if (!admin) {
      const fresh = kafka.admin();
      await connect(fresh);
      admin = fresh;
    }
    const [offsets] = await admin.fetchOffsets({ groupId: consumerGroupId, topics: [topic] });
    return Number(offsets?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
  };

  return {
    async resumeFrom(topic, partition) {
      const entry = await ready(topic, partition);
      if (entry.resumed) return undefined;
      const offset = await committed(topic, partition).catch((err: unknown) => {
        throw retriable(err);
      });
      entry.resumed = true;
      return offset >= 0 ? offset : undefined;
    },
    async run(topicMessages, { topic, partition, offset }) {
      const transactionalId = idOf(topic, partition);
      const txn = await (await ready(topic, partition)).producer.transaction();
      try {
        for (const request of splitByBytes(topicMessages, maxBatchBytes)) await txn.sendBatch({ topicMessages: request, acks: -1 });
        afterSend?.();
        await txn.sendOffsets({ consumerGroupId, topics: [{ topic, partitions: [{ partition, offset: String(offset) }] }] });
        await txn.commit();
      } catch (err) {
        await txn.abort().catch(() => undefined);
        if (isFencedError(err)) logger.warn({ transactionalId, topic, partition, err: errorMessage(err) }, 'transaction fenced (timed out, or the partition\'s new owner); the chunk is processed again');
        // Whatever happened (the commit may even have landed), a fresh producer settles it and the
        // committed offset is read again before the partition goes on (resumeFrom).
        await drop(transactionalId);
        throw retriable(err);
      }
    },
    async close() {
      for (const id of [...producers.keys()]) await drop(id);
      await admin?.disconnect().catch(() => undefined);
    },
  };
}

/**
 * A failed transaction as an error kafkajs restarts the consumer after (and streams/health.ts waits out
 * as a Kafka outage): the transaction holds only Kafka calls, and kafkajs gives up on some of them
 * during a broker restart with a non-retriable error ("Failed to find group coordinator"), which would
 * stop the consumer for good. No `cause`: kafkajs judges an error by its innermost cause.
 */
function retriable(err: unknown): Error {
  return Object.assign(new Error(`chunk transaction aborted, the chunk is processed again: ${errorMessage(err)}`), { name: 'KafkaJSChunkTransactionError', retriable: true });
}
