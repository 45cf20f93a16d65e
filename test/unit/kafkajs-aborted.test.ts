/**
 * kafkajs 2.2.4's read-committed filter, as patched by patches/kafkajs+2.2.4.patch (applied by
 * `npm ci` through patch-package). Unpatched, a fetch that starts inside three or more aborted
 * transactions of different producers activates one of them per message, so a producer can be marked
 * aborted only after its abort marker went by: its NEXT, committed transaction is then dropped (pairs
 * lost from a shard) and records of an aborted one are delivered. A routed partition has one producer
 * per input partition, and a node killed mid-chunk leaves several transactions aborted at once; a
 * restore seeks into them. And the broker lists aborted transactions in the order they were aborted,
 * which kafkajs walked as if sorted by first offset: the records of one that began earlier but aborted
 * later were delivered. This test fails if the patch is not applied.
 */
import { createRequire } from 'node:module';
import { describe, expect, test } from 'vitest';

const require = createRequire(import.meta.url);
// The very class the consumer builds each fetched partition's batch with.
const Batch = require('kafkajs/src/consumer/batch.js') as new (topic: string, fetchedOffset: string, partitionData: unknown) => { messages: { offset: string }[] };

const record = (offset: number, producerId: number, marker?: 'commit' | 'abort') => ({
  offset: String(offset),
  key: marker ? Buffer.from([0, 0, 0, marker === 'abort' ? 0 : 1]) : Buffer.from(`k${offset}`),
  value: marker ? Buffer.alloc(6) : Buffer.from(`v${offset}`),
  isControlRecord: marker !== undefined,
  batchContext: { producerId: String(producerId), inTransaction: true },
});

/** The offsets a read-committed fetch from the first message's offset delivers, given the broker's aborted list ([producer, first offset]). */
function delivered(messages: ReturnType<typeof record>[], aborted: [number, number][]): string[] {
  const batch = new Batch('routed', messages[0]!.offset, {
    partition: 0,
    highWatermark: String(Number(messages.at(-1)!.offset) + 1),
    messages,
    abortedTransactions: aborted.map(([producerId, firstOffset]) => ({ producerId: String(producerId), firstOffset: String(firstOffset) })),
  });
  return batch.messages.map((m) => m.offset);
}

describe('kafkajs read-committed batches (patched)', () => {
  test('a fetch starting inside three aborted transactions keeps the committed records and drops the aborted ones', () => {
    // Producers 1, 3 and 2 each began a transaction (at 100, 100, 101) that was aborted; the fetch starts
    // at 102. Producer 2's abort marker is at 103, then it commits 104-105; producer 1 aborts at 108.
    const messages = [record(102, 2), record(103, 2, 'abort'), record(104, 2), record(105, 2), record(106, 2, 'commit'), record(107, 1), record(108, 1, 'abort')];
    expect(delivered(messages, [[1, 100], [3, 100], [2, 101]])).toEqual(['104', '105']);
  });

  test('aborted transactions listed in abort order (as the broker lists them), not by first offset, are all dropped', () => {
    // Producer 2 began at 98 and aborted last (at 110); producer 1 began at 100 and aborted first (at 105).
    // The broker's transaction index lists them by abort marker: producer 1 first. Producer 3 commits.
    const messages = [record(98, 2), record(99, 2), record(100, 1), record(101, 2), record(102, 3), record(103, 3, 'commit'), record(104, 1), record(105, 1, 'abort'), record(106, 2), record(107, 1), record(108, 1, 'commit'), record(110, 2, 'abort')];
    expect(delivered(messages, [[1, 100], [2, 98]])).toEqual(['102', '107']);
  });

  test('one aborted transaction at a time still filters as before', () => {
    const messages = [record(10, 1), record(11, 1, 'abort'), record(12, 1), record(13, 1, 'commit')];
    expect(delivered(messages, [[1, 10]])).toEqual(['12']);
  });
});
