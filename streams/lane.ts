/**
 * One lane for the writes that must not interleave: the sharder's appends and the node-local catch-up
 * (streams/catch-up.ts). An append maps its records to the current epoch's experts inside the lane, and a
 * catch-up pass scans the shards inside it, so a record mapped with an older epoch is always written
 * before the pass that moves it scans its shard.
 */
export interface Lane {
  run<T>(work: () => Promise<T>): Promise<T>;
}

export function createLane(): Lane {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    run(work) {
      const result = tail.then(work);
      tail = result.catch(() => undefined);
      return result;
    },
  };
}
