/**
 * Prometheus metrics (prom-client) with conventional names: `_total` counters, `_seconds` histograms,
 * base units. One registry per App, so tests and benchmarks can run several in one process.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    records: new Counter({
      name: 'modestream_records_total',
      help: 'Input records by stage and outcome (routed, unrouted, dead_lettered, stored, duplicate)',
      labelNames: ['stage', 'outcome'] as const,
      registers,
    }),
    chunkDuration: new Histogram({
      name: 'modestream_chunk_duration_seconds',
      help: 'Time to process one chunk of a partition, fetch to commit',
      labelNames: ['stage'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    lmdbCommit: new Histogram({
      name: 'modestream_lmdb_commit_duration_seconds',
      help: 'Shard append: LMDB transaction commit plus flush to disk',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    ingestLatency: new Histogram({
      name: 'modestream_ingest_latency_seconds',
      help: 'From the pair event time (ts, else the Kafka timestamp) to durable in its shard',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
    centroidEpoch: new Gauge({ name: 'modestream_centroid_epoch', help: 'Newest centroid epoch in use (0: not bootstrapped)', registers }),
  };
}
