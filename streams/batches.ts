/**
 * Splits what one chunk sends into produce requests in which each partition's record batch holds at
 * most `maxBytes` (keys + values): a record batch must stay under the broker's message.max.bytes, and
 * a chunk of web images easily holds tens of megabytes. A request may carry up to `maxBytes` for every
 * partition it writes, so a chunk spread over P partitions needs about P times fewer requests than a
 * budget per request would. Messages without an explicit partition count against one budget per topic
 * (the partitioner could put them all on one). Order within each partition is kept; a message larger
 * than `maxBytes` travels alone (the broker then judges it).
 */
import type { Message, TopicMessages } from 'kafkajs';

export function splitByBytes(topicMessages: readonly TopicMessages[], maxBytes: number): TopicMessages[][] {
  const requests: Map<string, Message[]>[] = [];
  /** Per topic and partition: the request its messages go to now, and the bytes it holds there. */
  const filling = new Map<string, { request: number; bytes: number }>();
  for (const { topic, messages } of topicMessages) {
    for (const message of messages) {
      const size = sizeOf(message.key) + sizeOf(message.value);
      const bucket = `${topic}\u0000${message.partition ?? '*'}`;
      const at = filling.get(bucket) ?? { request: 0, bytes: 0 };
      // A partition only moves on to later requests, which are sent in order: its order holds.
      if (at.bytes > 0 && at.bytes + size > maxBytes) Object.assign(at, { request: at.request + 1, bytes: 0 });
      filling.set(bucket, at);
      while (requests.length <= at.request) requests.push(new Map());
      const byTopic = requests[at.request]!;
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), message]);
      at.bytes += size;
    }
  }
  return requests.map((r) => [...r].map(([topic, messages]) => ({ topic, messages })));
}

function sizeOf(part: Message['key'] | Message['value']): number {
  if (part === null || part === undefined) return 0;
  return typeof part === 'string' ? Buffer.byteLength(part) : part.length;
}
