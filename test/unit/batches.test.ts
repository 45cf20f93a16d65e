import type { Message } from 'kafkajs';
import { describe, expect, test } from 'vitest';
import { splitByBytes } from '../../streams/batches.js';

const msg = (key: string, bytes: number, partition?: number): Message => ({ key, value: Buffer.alloc(bytes), ...(partition === undefined ? {} : { partition }) });
const bytesOf = (messages: Message[]) => messages.reduce((s, m) => s + Buffer.byteLength(m.key as string) + (m.value as Buffer).length, 0);

describe('splitByBytes', () => {
  test("each partition's batch in a request stays within the budget; every message once, in order per partition", () => {
    const routed = Array.from({ length: 12 }, (_, i) => msg(`r${i}`, 298, i % 3));
    const dlq = Array.from({ length: 3 }, (_, i) => msg(`d${i}`, 498));
    const requests = splitByBytes([{ topic: 'routed', messages: routed }, { topic: 'dlq', messages: dlq }], 1000);
    for (const request of requests) {
      for (const { topic, messages } of request) {
        const partitions = new Set(messages.map((m) => m.partition));
        for (const p of partitions) expect(bytesOf(messages.filter((m) => m.partition === p)), `${topic} partition ${p}`).toBeLessThanOrEqual(1000);
      }
    }
    // 4 messages of ~300 bytes per partition, 3 fit: two requests, not the four a budget per request needs.
    expect(requests).toHaveLength(2);
    const keysOf = (topic: string, partition?: number) => requests.flatMap((r) => r.filter((t) => t.topic === topic).flatMap((t) => t.messages.filter((m) => m.partition === partition).map((m) => m.key)));
    for (const p of [0, 1, 2]) expect(keysOf('routed', p)).toEqual(routed.filter((m) => m.partition === p).map((m) => m.key));
    expect(keysOf('dlq')).toEqual(dlq.map((m) => m.key));
  });

  test('a message over the budget travels alone; nothing to send is no request; one small chunk is one request', () => {
    const requests = splitByBytes([{ topic: 't', messages: [msg('a', 10), msg('big', 5000), msg('b', 10)] }], 1000);
    expect(requests.map((r) => r[0]!.messages.map((m) => m.key))).toEqual([['a'], ['big'], ['b']]);
    expect(splitByBytes([], 1000)).toEqual([]);
    expect(splitByBytes([{ topic: 't', messages: [msg('a', 10), msg('b', 10)] }], Infinity)).toHaveLength(1);
  });
});
