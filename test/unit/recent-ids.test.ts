/**
 * The router's recent-ids window (streams/recent-ids.ts): what it remembers, what it forgets, and when
 * it is rebuilt from the topic (a reader that records its calls stands in for Kafka).
 */
import { describe, expect, test } from 'vitest';
import { createPartitionWindow, createRecentIds, type ReadIds } from '../../streams/recent-ids.js';

const entries = (from: number, to: number, id = (o: number) => `id-${o}`) => Array.from({ length: to - from }, (_, i) => ({ offset: from + i, id: id(from + i) }));

describe('a partition window', () => {
  test('holds the ids of the last `capacity` offsets before its end, no older', () => {
    const window = createPartitionWindow(100, 0);
    window.add(entries(0, 150), 150);
    expect(window.next).toBe(150);
    expect(window.has('id-49')).toBe(false);
    expect(window.has('id-50')).toBe(true);
    expect(window.has('id-149')).toBe(true);
    expect(window.size).toBe(100);
  });

  test('an id seen again stays remembered from its newest offset, not evicted with its first one', () => {
    const window = createPartitionWindow(10, 0, entries(0, 5));
    window.add([{ offset: 8, id: 'id-0' }], 9);
    window.add([], 14); // evicts offsets below 4: id-0's first entry, not its newest
    expect(window.has('id-0')).toBe(true);
    expect(window.has('id-1')).toBe(false);
    window.add([], 19);
    expect(window.has('id-0')).toBe(false);
  });

  test('offset gaps (dead letters, skipped messages) count by offset, not by entries', () => {
    const window = createPartitionWindow(10, 0);
    window.add([{ offset: 0, id: 'a' }], 1);
    window.add([{ offset: 9, id: 'b' }], 10);
    expect(window.has('a')).toBe(true);
    window.add([], 11);
    expect(window.has('a')).toBe(false);
    expect(window.has('b')).toBe(true);
  });

  test('stays correct across many compactions', () => {
    const window = createPartitionWindow(1000, 0);
    for (let o = 0; o < 50_000; o += 100) window.add(entries(o, o + 100), o + 100);
    expect(window.size).toBe(1000);
    expect(window.has('id-48999')).toBe(false);
    expect(window.has('id-49000')).toBe(true);
  });
});

describe('recent ids per partition', () => {
  function reader(topicEntries: (from: number, to: number) => { offset: number; id: string }[]) {
    const calls: { partition: number; from: number; to: number }[] = [];
    const readIds: ReadIds = async (_topic, partition, from, to) => {
      calls.push({ partition, from, to });
      return topicEntries(from, to);
    };
    return { calls, readIds };
  }

  test('the first chunk of a partition rebuilds its window from the `capacity` offsets before it', async () => {
    const { calls, readIds } = reader((from, to) => entries(from, to));
    const recent = createRecentIds({ capacity: 100, readIds });
    const window = await recent.windowAt('pairs', 3, 1000);
    expect(calls).toEqual([{ partition: 3, from: 900, to: 1000 }]);
    expect(window.has('id-900')).toBe(true);
    expect(window.has('id-899')).toBe(false);
  });

  test('a partition that goes on where its window ends is not read again; a jump (takeover, rewind) is', async () => {
    const { calls, readIds } = reader((from, to) => entries(from, to));
    const recent = createRecentIds({ capacity: 50, readIds });
    const window = await recent.windowAt('pairs', 0, 0);
    expect(calls).toEqual([]); // nothing before offset 0
    window.add(entries(0, 10), 10);
    expect(await recent.windowAt('pairs', 0, 10)).toBe(window);
    expect(calls).toEqual([]);
    // An aborted chunk rewinds the partition to 5: the window is rebuilt, so nothing from 5 on is in it.
    const rewound = await recent.windowAt('pairs', 0, 5);
    expect(calls).toEqual([{ partition: 0, from: 0, to: 5 }]);
    expect(rewound.has('id-4')).toBe(true);
    expect(rewound.has('id-5')).toBe(false);
    // Another partition has a window of its own.
    await recent.windowAt('pairs', 1, 80);
    expect(calls.at(-1)).toEqual({ partition: 1, from: 30, to: 80 });
  });
});
