/**
 * One Kafka transaction per chunk: the chunk's messages and its consumer offset commit together or not
 * at all (Kafka Streams' exactly_once; ARCHITECTURE.md section 4, "exactly-once publish"). Read-committed
 * consumers (kafkajs's default) never see the records of a chunk whose transaction did not commit, so
 * when a chunk is redelivered and routed differently only the redelivery's routing is visible.
 *
 * The transactional id is stable per node and router thread: a restarted node's `start` fences its
 * previous incarnation and aborts the transaction it left open.
 */
import type { Kafka, Producer, TopicMessages } from 'kafkajs';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { isFencedError } from './errors.js';
import { createTransactionalProducer } from './kafka.js';

export interface ChunkOffset {
  topic: string;
  partition: number;
  /** The next offset to consume (the chunk's last + 1). */
  offset: number;
}

export interface ChunkTransactions {
  /** Opens the producer and fences older producers with our id (their open transaction is aborted). */
  start(): Promise<void>;
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
  transactionalId: string;
  transactionTimeoutMs: number;
  consumerGroupId: string;
  logger: Logger;
  /** Connects a client (streams/kafka.ts connectClient, which explains refused credentials). */
  connect: (client: Producer) => Promise<void>;
  /** Test hook: runs inside the transaction after the messages were sent, before offsets and commit. */
  afterSend?: () => void;
}

export function createChunkTransactions(options: ChunkTransactionsOptions): ChunkTransactions {
  const { kafka, transactionalId, transactionTimeoutMs, consumerGroupId, logger, connect, afterSend } = options;
  let producer: Producer | undefined;

  /** The producer, opened and with its producer id initialised (which fences older incarnations). */
  const ready = async (): Promise<Producer> => {
    if (producer) return producer;
    const fresh = createTransactionalProducer(kafka, { transactionalId, transactionTimeoutMs });
    await connect(fresh);
    try {
      // An empty transaction sends nothing but InitProducerId: the broker aborts what our id left open.
      await (await fresh.transaction()).abort();
    } catch (err) {
      await fresh.disconnect().catch(() => {});
      throw err;
    }
    producer = fresh;
    return fresh;
  };

  /** Drops a producer whose transaction state is unknown; the next one's InitProducerId settles it. */
  const drop = async () => {
    const old = producer;
    producer = undefined;
    await old?.disconnect().catch((err: unknown) => logger.debug({ err: errorMessage(err) }, 'transactional producer disconnect failed'));
  };

  return {
    async start() {
      await ready();
      logger.info({ transactionalId }, 'exactly-once publish: transactional producer ready');
    },
    async run(topicMessages, { topic, partition, offset }) {
      const txn = await (await ready()).transaction();
      try {
        if (topicMessages.length) await txn.sendBatch({ topicMessages, acks: -1 });
        afterSend?.();
        await txn.sendOffsets({ consumerGroupId, topics: [{ topic, partitions: [{ partition, offset: String(offset) }] }] });
        await txn.commit();
      } catch (err) {
        const aborted = await txn.abort().then(
          () => true,
          () => false,
        );
        if (isFencedError(err)) logger.warn({ transactionalId, topic, partition, err: errorMessage(err) }, 'transaction fenced (timed out, or a newer producer with our id); the chunk is processed again');
        // A fenced producer, or one whose abort failed, cannot start another transaction: open a fresh one next time.
        if (!aborted || isFencedError(err)) await drop();
        throw retriable(err);
      }
    },
    close: drop,
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
