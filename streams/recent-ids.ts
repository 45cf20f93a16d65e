/**
 * The router's memory of the pair ids it published recently, per input partition (ARCHITECTURE.md
 * section 4, "repeated pairs"). Producers resend: a crawler retrying a batch after a broker error puts
 * the same pairs into the pairs topic twice, a few hundred offsets apart (same key, same partition).
 * On one machine the shards' id index drops the repeat; in a cluster it may not reach the same shard,
 * because a drift epoch between the two routings can send it to another expert, hence another routed
 * partition and another node. So the router drops a pair whose id it published within the last `size`
 * offsets of the same input partition.
 *
 * The window is a cache of the input topic itself, as a Kafka Streams store whose changelog is its
 * source topic: whenever a partition resumes anywhere but where its window ends (first chunk, a partition
 * taken over from another node, a rewind after an aborted transaction), the window is rebuilt from the
 * `size` offsets before the resume point, which the group's offsets say were published already.
 * Ids enter only after their chunk committed, so an aborted chunk's pairs are never taken as repeats.
 * The window holds the ids of the VALID messages only (a rebuild validates what it reads), so a pair
 * first dead-lettered and then sent again corrected is routed.
 */

/** The ids of the `size` offsets before `next` of one partition. */
export interface PartitionWindow {
  /** The offset the window ends at: the next one it expects. */
  next: number;
  has(id: string): boolean;
  /** Remembers the ids of a committed chunk and moves the window's end to `next`. */
  add(entries: readonly { offset: number; id: string }[], next: number): void;
  readonly size: number;
}

/** A window over the last `capacity` offsets, starting at `next` with `entries` (oldest first). */
export function createPartitionWindow(capacity: number, next: number, entries: readonly { offset: number; id: string }[] = []): PartitionWindow {
  // Offsets in order; the map holds an id's newest offset, so an old entry of an id seen again later is
  // not evicting the newer one.
  const queue: { offset: number; id: string }[] = [];
  let head = 0;
  const newest = new Map<string, number>();
  const evictBefore = (offset: number) => {
    while (head < queue.length && queue[head]!.offset < offset) {
      const { id, offset: at } = queue[head++]!;
      if (newest.get(id) === at) newest.delete(id);
    }
    // Compact now and then instead of shifting on every eviction.
    if (head > 4096 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
  };
  const window: PartitionWindow = {
    next,
    has: (id) => newest.has(id),
    add(added, end) {
      for (const entry of added) {
        queue.push(entry);
        newest.set(entry.id, entry.offset);
      }
      window.next = end;
      evictBefore(end - capacity);
    },
    get size() {
      return newest.size;
    },
  };
  window.add(entries, next);
  return window;
}

/** Reads the ids of the valid pairs at offsets [from, to) of one input partition (the Kafka edge: streams/partition-range.ts). */
export type ReadIds = (topic: string, partition: number, from: number, to: number) => Promise<{ offset: number; id: string }[]>;

export interface RecentIds {
  /** The partition's window ending at `first`, rebuilt from the topic when it does not end there. */
  windowAt(topic: string, partition: number, first: number): Promise<PartitionWindow>;
}

export function createRecentIds({ capacity, readIds, onRebuilt }: { capacity: number; readIds: ReadIds; onRebuilt?: (info: { topic: string; partition: number; from: number; to: number; ids: number; ms: number }) => void }): RecentIds {
  const windows = new Map<string, PartitionWindow>();
  return {
    async windowAt(topic, partition, first) {
      const key = `${topic}/${partition}`;
      const known = windows.get(key);
      if (known && known.next === first) return known;
      const from = Math.max(0, first - capacity);
      const started = performance.now();
      const entries = first > from ? await readIds(topic, partition, from, first) : [];
      const window = createPartitionWindow(capacity, first, entries);
      windows.set(key, window);
      onRebuilt?.({ topic, partition, from, to: first, ids: window.size, ms: Math.round(performance.now() - started) });
      return window;
    },
  };
}
