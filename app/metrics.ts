/**
 * Prometheus metrics (prom-client) with conventional names: `_total` counters, `_seconds` histograms,
 * base units. One registry per App, so tests and benchmarks can run several in one process.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Subscription } from 'rxjs';
import type { StatusReport } from '../src/status.js';
import type { OutcomeName } from '../streams/stage.js';
import type { Telemetry } from './telemetry.js';

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Figures read when Prometheus scrapes (prom-client `collect`), not when something else happens to ask:
 * a gauge set only on /status.json requests went stale and its alert with it.
 */
export interface ScrapeSources {
  /** Newest centroid epoch (0: not bootstrapped). */
  centroidEpoch?: () => number;
  /** Per expert: records pending, age of the oldest, newest version, when it was trained (ms). */
  experts?: () => readonly { expert: number; pending: number; oldestPendingAgeSeconds: number | null; version: number | null; lastTrainedAt: number | null }[];
  /** Newest published snapshot version, if any. */
  snapshotVersion?: () => Promise<number | undefined>;
  /** Each stage's lag per input partition; a failure (broker down) keeps the last values. */
  consumerLag?: () => Promise<readonly { stage: string; topic: string; partition: number; lag: number | null }[]>;
  /** Nodes by state, from the nodes topic (src/nodes.ts). */
  clusterNodes?: () => Readonly<Record<'live' | 'dead' | 'stopped', number>>;
  /** The sharder's restores on assignment (streams/restore.ts): records left per partition, and applied in all. */
  restores?: () => { remaining: readonly { partition: number; records: number }[]; total: number };
}

export function createMetrics(sources: ScrapeSources = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let restoredSeen = 0;
  // One freshness pass per scrape serves the four expert gauges (each collects in turn).
  let experts: { at: number; rows: ReturnType<NonNullable<ScrapeSources['experts']>> } | undefined;
  const expertRows = () => {
    const now = Date.now();
    if (!experts || now - experts.at > 1000) experts = { at: now, rows: sources.experts?.() ?? [] };
    return experts.rows;
  };
  const expertGauge = (name: string, help: string, value: (e: ReturnType<typeof expertRows>[number]) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['expert'] as const,
      registers,
      collect() {
        for (const e of expertRows()) {
          const v = value(e);
          if (v !== undefined) this.set({ expert: String(e.expert) }, v);
        }
      },
    });
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
    imageDecodes: new Counter({
      name: 'modestream_image_decodes_total',
      help: 'Encoded images decoded at ingestion by the router, by result (ok, failed: dead-lettered)',
      labelNames: ['result'] as const,
      registers,
    }),
    imageDecodeSeconds: new Counter({
      name: 'modestream_image_decode_seconds_total',
      help: 'Decoder time spent on encoded images at ingestion (per image, summed; / decodes = mean decode time)',
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
    centroidEpoch: new Gauge({
      name: 'modestream_centroid_epoch',
      help: 'Newest centroid epoch in use (0: not bootstrapped)',
      registers,
      collect() {
        if (sources.centroidEpoch) this.set(sources.centroidEpoch());
      },
    }),
    controllerLeader: new Gauge({ name: 'modestream_controller_leader', help: 'Whether this process runs the cluster\'s controller now (1) or not (0); set by the controller role', registers }),
    expertPending: expertGauge('modestream_expert_pending_records', 'Records stored since the expert\'s newest version started training', (e) => e.pending),
    expertOldestPendingAge: expertGauge(
      'modestream_expert_oldest_pending_age_seconds',
      'Age (event time) of the oldest record the expert has not been trained on; 0 when none',
      (e) => e.oldestPendingAgeSeconds ?? 0,
    ),
    expertVersion: expertGauge('modestream_expert_version', 'Newest trained version of the expert (0: never trained)', (e) => e.version ?? 0),
    expertLastTrained: expertGauge('modestream_expert_last_trained_timestamp_seconds', 'When the expert\'s newest version was published', (e) => (e.lastTrainedAt ? e.lastTrainedAt / 1000 : undefined)),
    trainingDuration: new Histogram({
      name: 'modestream_training_duration_seconds',
      help: 'Wall time of training jobs',
      labelNames: ['name', 'outcome'] as const,
      buckets: [10, 30, 60, 120, 300, 600, 1200, 3600, 7200],
      registers,
    }),
    trainingSamplesPerSecond: new Gauge({ name: 'modestream_training_samples_per_second', help: 'Throughput of the model\'s last training job', labelNames: ['name'] as const, registers }),
    trainingFailures: new Counter({ name: 'modestream_training_failures_total', help: 'Training jobs that failed (retried with backoff)', labelNames: ['name'] as const, registers }),
    snapshotVersion: new Gauge({
      name: 'modestream_snapshot_version',
      help: 'Newest published ensemble snapshot',
      registers,
      async collect() {
        const version = await sources.snapshotVersion?.().catch(() => undefined);
        if (version !== undefined) this.set(version);
      },
    }),
    spawned: new Counter({ name: 'modestream_experts_spawned_total', help: 'Experts created for new data (drift)', registers }),
    splits: new Counter({ name: 'modestream_experts_split_total', help: 'Experts split in two for holding too large a share', registers }),
    fineClustersAdded: new Counter({ name: 'modestream_fine_clusters_added_total', help: 'Fine clusters added from the novelty buffer', registers }),
    embedderInfo: new Gauge({
      name: 'modestream_embedder_info',
      help: 'The caption embedder this process routes with (value 1): kind, fingerprint of its space, dimension',
      labelNames: ['kind', 'fingerprint', 'dim'] as const,
      registers,
    }),
    embedCacheLookups: new Counter({
      name: 'modestream_embed_cache_lookups_total',
      help: 'Router caption-embedding cache lookups by result (hit: the encoder was skipped)',
      labelNames: ['result'] as const,
      registers,
    }),
    clusterNodes: new Gauge({
      name: 'modestream_cluster_nodes',
      help: 'Nodes on the nodes topic by state: live (heartbeat within 3 intervals), dead (silent), stopped (stopped cleanly)',
      labelNames: ['state'] as const,
      registers,
      collect() {
        const counts = sources.clusterNodes?.();
        if (counts) for (const state of ['live', 'dead', 'stopped'] as const) this.set({ state }, counts[state]);
      },
    }),
    restoreRemaining: new Gauge({
      name: 'modestream_restore_remaining_records',
      help: 'Routed-topic records left to re-read before the partition\'s shard is restored (0: live)',
      labelNames: ['partition'] as const,
      registers,
      collect() {
        if (!sources.restores) return;
        // Only the partitions owned now: a partition that moved away is not this node's to report.
        this.reset();
        for (const r of sources.restores().remaining) this.set({ partition: String(r.partition) }, r.records);
      },
    }),
    restoreRecords: new Counter({
      name: 'modestream_restore_records_total',
      help: 'Routed-topic records re-read to restore shards on assignment',
      registers,
      collect() {
        if (!sources.restores) return;
        // A counter read from the role's running total: add what is new since the last scrape.
        const total = sources.restores().total;
        if (total > restoredSeen) this.inc(total - restoredSeen);
        restoredSeen = Math.max(restoredSeen, total);
      },
    }),
    consumerLag: new Gauge({
      name: 'modestream_consumer_lag',
      help: 'End offset minus committed (router) or durable (sharder) offset',
      labelNames: ['stage', 'topic', 'partition'] as const,
      registers,
      async collect() {
        const rows = await sources.consumerLag?.().catch(() => undefined);
        for (const r of rows ?? []) if (r.lag !== null) this.set({ stage: r.stage, topic: r.topic, partition: String(r.partition) }, r.lag);
      },
    }),
  };
}

/** `modestream_records_total`'s outcome label for each counted chunk outcome. */
const OUTCOME_LABEL: Record<OutcomeName, string> = { routed: 'routed', unrouted: 'unrouted', deadLettered: 'dead_lettered', written: 'stored', duplicates: 'duplicate' };

/**
 * Metrics as a subscriber of the telemetry port. Each running stage's outcome series start at 0, so a
 * rate() or an alert on, say, dead-lettered records has a series before the first one happens.
 */
export function subscribeMetrics(
  metrics: Metrics,
  telemetry: Telemetry,
  { embedder, stages }: { embedder: { kind: string; fingerprint: string; dim: number }; stages: readonly { stage: string; outcomes: readonly OutcomeName[] }[] },
): Subscription {
  metrics.embedderInfo.set({ kind: embedder.kind, fingerprint: embedder.fingerprint, dim: String(embedder.dim) }, 1);
  for (const { stage, outcomes } of stages) for (const o of outcomes) metrics.records.inc({ stage, outcome: OUTCOME_LABEL[o] }, 0);
  if (stages.some((s) => s.stage === 'router')) for (const result of ['ok', 'failed']) metrics.imageDecodes.inc({ result }, 0);
  const subscription = telemetry.on('chunk').subscribe(({ stage, outcome, ms }) => {
    metrics.chunkDuration.observe({ stage }, ms / 1000);
    for (const o of Object.keys(OUTCOME_LABEL) as OutcomeName[]) {
      const n = outcome[o];
      if (n) metrics.records.inc({ stage, outcome: OUTCOME_LABEL[o] }, n);
    }
    if (outcome.images) {
      metrics.imageDecodes.inc({ result: 'ok' }, outcome.images.decoded);
      metrics.imageDecodes.inc({ result: 'failed' }, outcome.images.failed);
      metrics.imageDecodeSeconds.inc(outcome.images.ms / 1000);
    }
  });
  subscription.add(
    telemetry.on('appended').subscribe(({ records, commitMs, durableAt }) => {
      metrics.lmdbCommit.observe(commitMs / 1000);
      for (const r of records) metrics.ingestLatency.observe((durableAt - r.ts) / 1000);
    }),
  );
  subscription.add(
    telemetry.on('cache').subscribe(({ hits, misses }) => {
      if (hits) metrics.embedCacheLookups.inc({ result: 'hit' }, hits);
      if (misses) metrics.embedCacheLookups.inc({ result: 'miss' }, misses);
    }),
  );
  subscription.add(
    telemetry.on('training').subscribe(({ name, outcome, seconds, samplesPerSecond }) => {
      metrics.trainingDuration.observe({ name, outcome }, seconds);
      if (outcome === 'failed') metrics.trainingFailures.inc({ name });
      if (samplesPerSecond !== undefined) metrics.trainingSamplesPerSecond.set({ name }, samplesPerSecond);
    }),
  );
  subscription.add(
    telemetry.on('event').subscribe(({ kind, fineClustersAdded }) => {
      if (kind === 'spawn') metrics.spawned.inc();
      if (kind === 'split') metrics.splits.inc();
      if (fineClustersAdded) metrics.fineClustersAdded.inc(fineClustersAdded);
    }),
  );
  return subscription;
}

/** The status report's image figures, read from the counters the router's chunks feed. */
export async function imageDecodeFigures(metrics: Metrics, decoder: string): Promise<NonNullable<StatusReport['images']>> {
  const byResult = new Map((await metrics.imageDecodes.get()).values.map((v) => [v.labels.result, v.value]));
  const decoded = byResult.get('ok') ?? 0;
  const failed = byResult.get('failed') ?? 0;
  const seconds = (await metrics.imageDecodeSeconds.get()).values[0]?.value ?? 0;
  const count = decoded + failed;
  return { decoder, decoded, failed, meanDecodeMs: count ? Number(((seconds * 1000) / count).toFixed(2)) : null };
}
