/**
 * Reads offsets [from, to) of ONE partition, the Kafka edge of the router's recent-ids window
 * (streams/recent-ids.ts). kafkajs has no manual assignment, so a throwaway consumer group with a single
 * member gets every partition, pauses all but the one wanted and seeks that one to `from`. It never
 * commits, and an empty group without offsets is removed by the broker.
 */
import type { Kafka, KafkaMessage } from 'kafkajs';

export interface PartitionRange {
  kafka: Kafka;
  topic: string;
  partition: number;
  from: number;
  to: number;
  /** The throwaway group's id; unique per read. */
  groupId: string;
  onMessage(message: KafkaMessage): void;
  /** Gives up (and throws) after this long. */
  timeoutMs?: number;
}

export async function readPartitionRange({ kafka, topic, partition, from, to, groupId, onMessage, timeoutMs = 60_000 }: PartitionRange): Promise<void> {
  if (to <= from) return;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 200, retry: { retries: 5 } });
  let finish!: (err?: Error) => void;
  const finished = new Promise<void>((resolve, reject) => (finish = (err) => (err ? reject(err) : resolve())));
  const timer = setTimeout(() => finish(new Error(`reading ${topic}/${partition} offsets ${from}-${to} took over ${timeoutMs} ms`)), timeoutMs);
  // Retriable: the stage's consumer restarts and the read is tried again (a broker restart, say).
  const failed = (err: unknown) => Object.assign(new Error(`could not read ${topic}/${partition} offsets ${from}-${to}: ${err instanceof Error ? err.message : String(err)}`), { name: 'KafkaJSPartitionRangeError', retriable: true });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const others = (payload.memberAssignment[topic] ?? []).filter((p) => p !== partition);
      if (others.length) consumer.pause([{ topic, partitions: others }]);
      consumer.seek({ topic, partition, offset: String(from) });
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => finish(payload.error));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (batch.partition !== partition) return;
        for (const message of batch.messages) {
          if (Number(message.offset) >= to) break;
          onMessage(message);
        }
        // Below `from` the log may have been deleted (kafkajs then starts at the earliest offset); past
        // `to`, or at the partition's end, the range is complete.
        if (Number(batch.lastOffset()) >= to - 1 || Number(batch.highWatermark) <= Number(batch.lastOffset()) + 1) finish();
      },
    });
    await finished;
  } catch (err) {
    throw failed(err);
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
}
