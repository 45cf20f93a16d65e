/**
 * Metrics (app/metrics.ts): state is read when Prometheus scrapes, events arrive through the telemetry
 * port, and each running stage's outcome series exist at 0 before anything happens.
 */
import { describe, expect, test } from 'vitest';
import { createMetrics, subscribeMetrics } from '../../app/metrics.js';
import { createTelemetry } from '../../app/telemetry.js';

const sample = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('metrics', () => {
  test('state gauges are read at every scrape, not when something else happens to set them', async () => {
    let epoch = 0;
    let lag = 5;
    let version: number | undefined;
    const metrics = createMetrics({
      centroidEpoch: () => epoch,
      consumerLag: async () => [{ stage: 'router', topic: 'pairs', partition: 0, lag }],
      experts: () => [{ expert: 2, pending: 40, oldestPendingAgeSeconds: 12, version: 3, lastTrainedAt: 5000 }],
      snapshotVersion: async () => version,
    });
    let text = await metrics.registry.metrics();
    expect(sample(text, 'modestream_centroid_epoch')).toBe(0);
    expect(sample(text, 'modestream_consumer_lag{stage="router",topic="pairs",partition="0"}')).toBe(5);
    expect(sample(text, 'modestream_expert_pending_records{expert="2"}')).toBe(40);
    expect(sample(text, 'modestream_expert_oldest_pending_age_seconds{expert="2"}')).toBe(12);
    expect(sample(text, 'modestream_expert_version{expert="2"}')).toBe(3);
    expect(sample(text, 'modestream_expert_last_trained_timestamp_seconds{expert="2"}')).toBe(5);
    expect(sample(text, 'modestream_snapshot_version')).toBe(0);
    [epoch, lag, version] = [4, 0, 7];
    text = await metrics.registry.metrics();
    expect(sample(text, 'modestream_centroid_epoch')).toBe(4);
    expect(sample(text, 'modestream_consumer_lag{stage="router",topic="pairs",partition="0"}')).toBe(0);
    expect(sample(text, 'modestream_snapshot_version')).toBe(7);
  });

  test('restore figures are read at every scrape: records left per owned partition, and restored in all', async () => {
    let restores = { remaining: [{ partition: 0, records: 120 }, { partition: 2, records: 0 }], total: 30 };
    const metrics = createMetrics({ restores: () => restores });
    let text = await metrics.registry.metrics();
    expect(sample(text, 'modestream_restore_remaining_records{partition="0"}')).toBe(120);
    expect(sample(text, 'modestream_restore_remaining_records{partition="2"}')).toBe(0);
    expect(sample(text, 'modestream_restore_records_total')).toBe(30);
    // Partition 0 restored and moved away: its series goes; the counter only grows.
    restores = { remaining: [{ partition: 2, records: 0 }], total: 150 };
    text = await metrics.registry.metrics();
    expect(sample(text, 'modestream_restore_remaining_records{partition="0"}')).toBeUndefined();
    expect(sample(text, 'modestream_restore_records_total')).toBe(150);
    text = await metrics.registry.metrics();
    expect(sample(text, 'modestream_restore_records_total')).toBe(150);
  });

  test('a lag source that fails (broker down) keeps the last values instead of failing the scrape', async () => {
    let fail = false;
    const metrics = createMetrics({ consumerLag: async () => (fail ? Promise.reject(new Error('broker down')) : [{ stage: 'sharder', topic: 'routed', partition: 1, lag: 9 }]) });
    await metrics.registry.metrics();
    fail = true;
    expect(sample(await metrics.registry.metrics(), 'modestream_consumer_lag{stage="sharder",topic="routed",partition="1"}')).toBe(9);
  });

  test('telemetry events move the counters; declared outcomes exist at 0 from the start', async () => {
    const metrics = createMetrics();
    const telemetry = createTelemetry();
    subscribeMetrics(metrics, telemetry, { embedder: { kind: 'hashed', fingerprint: 'hashed-v1', dim: 256 }, stages: [{ stage: 'router', outcomes: ['routed', 'deadLettered'] }] });
    let text = await metrics.registry.metrics();
    expect(sample(text, 'modestream_records_total{stage="router",outcome="dead_lettered"}')).toBe(0);
    expect(sample(text, 'modestream_embedder_info{kind="hashed",fingerprint="hashed-v1",dim="256"}')).toBe(1);
    telemetry.emit({ type: 'chunk', stage: 'router', topic: 'pairs', partition: 0, outcome: { messages: 10, nextOffset: 10, routed: 8, deadLettered: 2 }, ms: 20 });
    telemetry.emit({ type: 'event', kind: 'spawn', message: 'epoch 3: ...', fineClustersAdded: 3 });
    telemetry.emit({ type: 'event', kind: 'epoch', message: 'epoch 4: ...', fineClustersAdded: 1 });
    telemetry.emit({ type: 'training', name: 'expert-1', outcome: 'failed', seconds: 4 });
    text = await metrics.registry.metrics();
    expect(sample(text, 'modestream_records_total{stage="router",outcome="routed"}')).toBe(8);
    expect(sample(text, 'modestream_records_total{stage="router",outcome="dead_lettered"}')).toBe(2);
    expect(sample(text, 'modestream_fine_clusters_added_total')).toBe(4);
    expect(sample(text, 'modestream_experts_spawned_total')).toBe(1);
    expect(sample(text, 'modestream_training_failures_total{name="expert-1"}')).toBe(1);
  });
});
