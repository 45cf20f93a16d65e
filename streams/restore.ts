/**
 * Restore on assignment (ARCHITECTURE.md section 4, "The routed topic is the shards' changelog"): a node
 * whose store is behind the group's committed offset for a routed partition it was just assigned (an
 * empty or older state dir) re-reads the partition from its own durable offset, through the very same
 * append path as live records. This module is the bookkeeping of that restore, per partition: where it
 * started, where it ends (the end offset when assigned), how far it got, and whether it is done.
 * Pure functions, plus a small tracker holding the current view for the role and the metrics.
 */
import { z } from 'zod';

export const RestoreProgress = z.object({
  topic: z.string(),
  partition: z.number().int().nonnegative(),
  /** First offset re-read: the local durable offset, or the partition's earliest when the store had none. */
  from: z.number().int().nonnegative(),
  /** The partition's end offset when it was assigned: the restore is done once applied up to here. */
  target: z.number().int().nonnegative(),
  /** Offsets applied since `from` (records written, duplicates and dead letters alike). */
  applied: z.number().int().nonnegative(),
  state: z.enum(['restoring', 'live']),
});
export type RestoreProgress = z.infer<typeof RestoreProgress>;

/** What is known right after an assignment: the local position and the group's and the log's offsets. */
export interface AssignedPartition {
  topic: string;
  partition: number;
  /** Next offset LMDB made durable here; undefined: the store holds nothing of this partition. */
  local: number | undefined;
  /** The group's committed offset (-1 or undefined: none). */
  committed: number | undefined;
  earliest: number;
  end: number;
}

/**
 * The restore a partition needs: 'restoring' when the local store is behind what the group already
 * processed (someone else applied records this node does not hold), else 'live' at once (ordinary lag).
 */
export function planRestore({ topic, partition, local, committed, earliest, end }: AssignedPartition): RestoreProgress {
  const from = Math.max(local ?? earliest, earliest);
  // One offset short is a trailing transaction marker (the exactly-once router's commit), which is never
  // delivered as a message: waiting for it would keep the partition 'restoring' until new data came.
  const behind = from < (committed ?? -1) - 1 && from < end - 1;
  return { topic, partition, from, target: end, applied: 0, state: behind ? 'restoring' : 'live' };
}

/** After a chunk ending at `nextOffset` was made durable: the progress, live once the target is reached. */
export function advanceRestore(progress: RestoreProgress, nextOffset: number): RestoreProgress {
  const applied = Math.max(progress.applied, nextOffset - progress.from);
  return { ...progress, applied, state: progress.state === 'live' || progress.from + applied >= progress.target ? 'live' : 'restoring' };
}

export const remainingOf = (p: RestoreProgress): number => (p.state === 'live' ? 0 : Math.max(0, p.target - p.from - p.applied));

export interface RestoreTracker {
  /** Partitions assigned to this member now (the newest assignment). */
  assigned(partitions: readonly number[]): void;
  /**
   * A partition's plan, once its offsets are known; chunks applied before that count in. `processed`:
   * the group's committed offset, below which another member already stored (and judged) the records.
   */
  planned(progress: RestoreProgress, processed?: number): void;
  /** A chunk of `messages` ending at `nextOffset` is durable. */
  applied(partition: number, nextOffset: number, messages: number): void;
  owned(): number[];
  restores(): RestoreProgress[];
  /** Messages applied while restoring, since the process started (modestream_restore_records_total). */
  restoredTotal(): number;
  /** Whether `offset` of `partition` lies in the history a restore of it re-reads (below its target). */
  isHistory(partition: number, offset: number): boolean;
}

export interface RestoreEvents {
  started(progress: RestoreProgress): void;
  finished(progress: RestoreProgress, seconds: number): void;
}

export function createRestoreTracker(events: RestoreEvents, now: () => number = () => performance.now()): RestoreTracker {
  let owned: number[] = [];
  const progress = new Map<number, { view: RestoreProgress; startedAt: number }>();
  const latest = new Map<number, number>();
  /** Where the history a restoring partition re-reads ends (isHistory). */
  const historyEnd = new Map<number, number>();
  /** Messages applied before a partition's offsets were read: restored ones if it turns out restoring. */
  const early = new Map<number, number>();
  let total = 0;
  const advance = (partition: number, nextOffset: number) => {
    const entry = progress.get(partition);
    if (!entry) return;
    const before = entry.view;
    entry.view = advanceRestore(before, nextOffset);
    if (before.state === 'restoring' && entry.view.state === 'live') events.finished(entry.view, (now() - entry.startedAt) / 1000);
  };
  return {
    assigned(partitions) {
      owned = [...partitions].sort((a, b) => a - b);
      for (const p of [...progress.keys()]) if (!owned.includes(p)) progress.delete(p);
      for (const p of [...latest.keys()]) if (!owned.includes(p)) latest.delete(p);
      for (const p of [...early.keys()]) if (!owned.includes(p)) early.delete(p);
      for (const p of [...historyEnd.keys()]) if (!owned.includes(p)) historyEnd.delete(p);
    },
    planned(view, processed = view.target) {
      if (!owned.includes(view.partition)) return;
      progress.set(view.partition, { view, startedAt: now() });
      historyEnd.delete(view.partition);
      if (view.state === 'restoring') {
        historyEnd.set(view.partition, Math.min(view.target, processed));
        events.started(view);
        total += early.get(view.partition) ?? 0;
      }
      early.delete(view.partition);
      const seen = latest.get(view.partition);
      if (seen !== undefined) advance(view.partition, seen);
    },
    applied(partition, nextOffset, messages) {
      latest.set(partition, Math.max(latest.get(partition) ?? -1, nextOffset));
      const entry = progress.get(partition);
      if (!entry) early.set(partition, (early.get(partition) ?? 0) + messages);
      else if (entry.view.state === 'restoring') total += messages;
      advance(partition, nextOffset);
    },
    owned: () => [...owned],
    restores: () => [...progress.values()].map((e) => e.view).sort((a, b) => a.partition - b.partition),
    restoredTotal: () => total,
    isHistory: (partition, offset) => offset < (historyEnd.get(partition) ?? -1),
  };
}
