/**
 * Restore on assignment, the bookkeeping (streams/restore.ts): which partitions need a restore, how far
 * each got, when it goes live, and what the running sharder reports (restores(), owned()).
 */
import { describe, expect, test } from 'vitest';
import { advanceRestore, createRestoreTracker, planRestore, remainingOf, RestoreProgress } from '../../streams/restore.js';

const base = { topic: 'routed', partition: 3 };

describe('planRestore', () => {
  test('an empty store behind the group restores from the earliest offset up to the end offset', () => {
    expect(planRestore({ ...base, local: undefined, committed: 900, earliest: 0, end: 1000 })).toEqual({ ...base, from: 0, target: 1000, applied: 0, state: 'restoring' });
    // Below the log start (records deleted by hand): from the earliest one still there.
    expect(planRestore({ ...base, local: 5, committed: 900, earliest: 40, end: 1000 }).from).toBe(40);
  });

  test('an older store restores from its own durable offset', () => {
    expect(planRestore({ ...base, local: 300, committed: 900, earliest: 0, end: 1000 })).toMatchObject({ from: 300, target: 1000, state: 'restoring' });
  });

  test('a store at or ahead of the committed offset (a crash between flush and commit), or a new group, is live at once', () => {
    expect(planRestore({ ...base, local: 900, committed: 900, earliest: 0, end: 1000 }).state).toBe('live');
    expect(planRestore({ ...base, local: 950, committed: 900, earliest: 0, end: 1000 }).state).toBe('live');
    expect(planRestore({ ...base, local: undefined, committed: -1, earliest: 0, end: 1000 }).state).toBe('live');
    expect(planRestore({ ...base, local: undefined, committed: undefined, earliest: 0, end: 0 }).state).toBe('live');
  });

  test('the progress is a valid RestoreProgress (the shape node heartbeats carry)', () => {
    expect(RestoreProgress.parse(planRestore({ ...base, local: 1, committed: 9, earliest: 0, end: 10 }))).toBeTruthy();
  });
});

describe('advanceRestore', () => {
  test('counts offsets from `from`, never backwards, and is live once the target is reached', () => {
    let p = planRestore({ ...base, local: 100, committed: 400, earliest: 0, end: 500 });
    expect(remainingOf(p)).toBe(400);
    p = advanceRestore(p, 300);
    expect(p).toMatchObject({ applied: 200, state: 'restoring' });
    expect(remainingOf(p)).toBe(200);
    expect(advanceRestore(p, 250).applied).toBe(200);
    p = advanceRestore(p, 500);
    expect(p).toMatchObject({ applied: 400, state: 'live' });
    expect(remainingOf(p)).toBe(0);
    // Live stays live; applied keeps counting.
    expect(advanceRestore(p, 800)).toMatchObject({ applied: 700, state: 'live' });
  });
});

describe('createRestoreTracker', () => {
  function tracker() {
    const log: string[] = [];
    let now = 0;
    const t = createRestoreTracker(
      { started: (p) => log.push(`start ${p.partition} ${p.from}->${p.target}`), finished: (p, s) => log.push(`live ${p.partition} after ${s}s`) },
      () => now,
    );
    return { t, log, tick: (ms: number) => (now += ms) };
  }

  test('reports the owned partitions and their progress; start and end are logged with the duration', () => {
    const { t, log, tick } = tracker();
    t.assigned([2, 0]);
    expect(t.owned()).toEqual([0, 2]);
    t.planned(planRestore({ topic: 'r', partition: 0, local: undefined, committed: 100, earliest: 0, end: 100 }));
    t.planned(planRestore({ topic: 'r', partition: 2, local: 50, committed: 50, earliest: 0, end: 60 }));
    expect(t.restores().map((r) => r.state)).toEqual(['restoring', 'live']);
    t.applied(0, 60, 60);
    tick(2000);
    t.applied(0, 100, 40);
    t.applied(2, 60, 10);
    expect(t.restores()).toEqual([
      { topic: 'r', partition: 0, from: 0, target: 100, applied: 100, state: 'live' },
      { topic: 'r', partition: 2, from: 50, target: 60, applied: 10, state: 'live' },
    ]);
    expect(log).toEqual(['start 0 0->100', 'live 0 after 2s']);
    // Only messages applied while restoring count as restored.
    expect(t.restoredTotal()).toBe(100);
  });

  test('history is what a restoring partition re-reads below the group\'s committed offset; nothing of a live one', () => {
    const { t } = tracker();
    t.assigned([0, 1]);
    // Partition 0: an empty store; the group had processed up to 80, the end is 100 (20 records arrived since).
    t.planned(planRestore({ topic: 'r', partition: 0, local: undefined, committed: 80, earliest: 0, end: 100 }), 80);
    t.planned(planRestore({ topic: 'r', partition: 1, local: 50, committed: 50, earliest: 0, end: 60 }), 50);
    expect([0, 79, 80, 99].map((o) => t.isHistory(0, o))).toEqual([true, true, false, false]);
    expect(t.isHistory(1, 50)).toBe(false);
    expect(t.isHistory(2, 0)).toBe(false);
    t.assigned([1]);
    expect(t.isHistory(0, 0)).toBe(false);
  });

  test('chunks applied before the offsets were read count in; a partition moved away is dropped', () => {
    const { t } = tracker();
    t.assigned([1, 4]);
    t.applied(1, 30, 30);
    t.planned(planRestore({ topic: 'r', partition: 1, local: undefined, committed: 80, earliest: 0, end: 80 }));
    expect(t.restores()[0]).toMatchObject({ partition: 1, applied: 30, state: 'restoring' });
    expect(t.restoredTotal()).toBe(30);
    t.assigned([4]);
    expect(t.restores()).toEqual([]);
    expect(t.owned()).toEqual([4]);
    // A plan for a partition no longer owned (offsets read after the next rebalance) is ignored.
    t.planned(planRestore({ topic: 'r', partition: 1, local: undefined, committed: 80, earliest: 0, end: 80 }));
    expect(t.restores()).toEqual([]);
  });
});
