import { describe, expect, test } from 'vitest';
import { ConfigSchema } from '../../src/config.js';
import { backoffSeconds, freshnessOf } from '../../src/freshness.js';

const retrain = { ...ConfigSchema.parse({}).controller.retrain, pendingRecords: 100, maxAgeSeconds: 60, minRecords: 50, backoffSeconds: 10, maxBackoffSeconds: 100 };
const now = 1_000_000;

describe('expert freshness', () => {
  test('never trained and big enough: due', () => {
    const f = freshnessOf({ expert: 1, records: 80, fineShare: 0.5, oldestPendingTs: now - 5000 }, retrain, now);
    expect(f).toMatchObject({ pending: 80, due: true, reason: 'never trained', oldestPendingAgeSeconds: 5 });
  });

  test('too small to train alone: not due', () => {
    expect(freshnessOf({ expert: 1, records: 20, fineShare: 0.5 }, retrain, now)).toMatchObject({ due: false, reason: '20 records, below the 50 needed' });
  });

  test('due by pending count, or by age of the oldest pending record; fresh otherwise', () => {
    expect(freshnessOf({ expert: 1, records: 300, trainedRecords: 150, oldestPendingTs: now - 1000, fineShare: 0 }, retrain, now)).toMatchObject({ pending: 150, due: true });
    expect(freshnessOf({ expert: 1, records: 160, trainedRecords: 150, oldestPendingTs: now - 61_000, fineShare: 0 }, retrain, now)).toMatchObject({ pending: 10, due: true, oldestPendingAgeSeconds: 61 });
    expect(freshnessOf({ expert: 1, records: 160, trainedRecords: 150, oldestPendingTs: now - 1000, fineShare: 0 }, retrain, now)).toMatchObject({ due: false, reason: 'fresh' });
    // Records moved away (a split) never make pending negative.
    expect(freshnessOf({ expert: 1, records: 100, trainedRecords: 150, fineShare: 0 }, retrain, now)).toMatchObject({ pending: 0, oldestPendingAgeSeconds: null });
  });

  test('the most stale expert has the highest priority', () => {
    const old = freshnessOf({ expert: 1, records: 300, trainedRecords: 200, oldestPendingTs: now - 600_000, fineShare: 0 }, retrain, now);
    const busy = freshnessOf({ expert: 2, records: 900, trainedRecords: 200, oldestPendingTs: now - 1000, fineShare: 0 }, retrain, now);
    expect(old.priority).toBeGreaterThan(busy.priority);
  });

  test('backoff doubles per failure up to the cap', () => {
    expect([0, 1, 2, 3, 5, 9].map((n) => backoffSeconds(n, retrain))).toEqual([0, 10, 20, 40, 100, 100]);
  });
});
