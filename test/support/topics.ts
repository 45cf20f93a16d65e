/** Reading a topic back in tests: every message from the beginning, as a read-committed consumer (a sharder) sees it. */
import type { Kafka } from 'kafkajs';
import { waitFor } from './waits.js';

export interface ReadMessage {
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
}

/** Waits for at least `expected` messages, then `settleMs` more so that an extra one (a duplicate) would show. */
export async function readTopic(kafka: Kafka, topic: string, expected: number, { settleMs = 0, timeoutMs = 90_000 } = {}): Promise<ReadMessage[]> {
  const consumer = kafka.consumer({ groupId: `test-reader-${Date.now()}-${Math.random()}` });
  const out: ReadMessage[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
      out.push({ key: message.key?.toString() ?? null, value: message.value!, headers });
    },
  });
  try {
    await waitFor(`${expected} messages on ${topic}`, () => out.length >= expected, { timeoutMs });
    if (settleMs) await new Promise((r) => setTimeout(r, settleMs));
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** Everything a topic holds now (up to its end offsets when the read started), with partition and offset. */
export async function readWhole(kafka: Kafka, topic: string, { readUncommitted = false, timeoutMs = 60_000 } = {}): Promise<(ReadMessage & { partition: number; offset: string })[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `test-whole-${Date.now()}-${Math.random()}`, readUncommitted });
  const out: (ReadMessage & { partition: number; offset: string })[] = [];
  const reached = new Map<number, number>();
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const message of batch.messages) {
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
        out.push({ key: message.key?.toString() ?? null, value: message.value!, headers, partition: batch.partition, offset: message.offset });
      }
      // Transaction markers take offsets and are never delivered: the batch's last offset says how far it got.
      reached.set(batch.partition, Number(batch.lastOffset()) + 1);
    },
  });
  try {
    await waitFor(`the end of ${topic}`, () => [...ends].every(([p, end]) => end === 0 || (reached.get(p) ?? 0) >= end), { timeoutMs });
  } finally {
    await consumer.disconnect();
  }
  return out;
}
