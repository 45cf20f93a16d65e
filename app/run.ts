/**
 * The composition root of `modestream run`: builds every component from the Config and wires the
 * topology. One process runs all roles by default; `roles` picks a subset for scale-out.
 *
 *   [pairs] --router--> [routed] --sharder--> LMDB shards <--controller (bootstrap, catch-up routing)
 *       \--> [pairs.dlq]                                    http: /healthz, /status
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { clusterInThread } from './cluster-thread.js';
import { openCore } from './core.js';
import { createRoutingSource, type RoutingSource } from '../src/cluster/routing.js';
import { snapshotsDirOf, type Config } from '../src/config.js';
import { withEmbeddingCache, type CacheLookups } from '../src/embed/cache.js';
import type { Logger } from '../src/logger.js';
import type { BackendInfo } from '../src/tensor/backend.js';
import type { CentroidStore } from '../state/centroids.js';
import type { ModelStore } from '../state/models.js';
import type { ShardStore } from '../state/shards.js';
import { createSnapshotStore } from '../state/snapshots.js';
import { createEventLog, type EventLog } from '../state/events.js';
import { startController, type RunningController } from '../streams/controller.js';
import { createKafka, createProducer, ensureTopics, partitionCount } from '../streams/kafka.js';
import type { RunningStage, StageOptions } from '../streams/stage.js';
import type { OnAppended } from '../streams/sharder.js';
import { startRouterRole, startSharderRole } from './roles.js';
import { startRouterThreads } from './router-threads.js';
import { startHttpServer, type RunningHttpServer } from './http.js';
import { createMetrics, type Metrics } from './metrics.js';
import { collectStatus, consumerPositions } from './status.js';
import { expertsOnly, startTrainingScheduler, type RunningScheduler } from './trainer.js';

export interface App {
  readonly backend: BackendInfo;
  readonly metrics: Metrics;
  readonly httpUrl?: string;
  readonly store: ShardStore;
  readonly centroids: CentroidStore;
  readonly models: ModelStore;
  readonly controller?: RunningController;
  readonly scheduler?: RunningScheduler;
  readonly events: EventLog;
  stop(): Promise<void>;
}

export interface StartAppOptions {
  config: Config;
  logger: Logger;
  /** Raw ingest latencies (ms, event time -> durable), for the pipeline benchmark's exact percentiles. */
  onLatencies?: (ms: Float64Array) => void;
}

export async function startApp({ config, logger, onLatencies }: StartAppOptions): Promise<App> {
  const core = await openCore(config, logger);
  // Read at scrape time; admin and the stores exist by the time anyone scrapes.
  const metrics = createMetrics({
    centroidEpoch: () => core.centroids.latestEpoch(),
    consumerLag: () => consumerPositions({ config, store: core.store, admin }),
  });
  const onChunk: StageOptions['onChunk'] = ({ stage, outcome, ms }) => {
    metrics.chunkDuration.observe({ stage }, ms / 1000);
    for (const outcomeName of ['routed', 'unrouted', 'deadLettered', 'written', 'duplicates'] as const) {
      const n = outcome[outcomeName];
      if (n) metrics.records.inc({ stage, outcome: OUTCOME_LABEL[outcomeName] }, n);
    }
  };
  const onAppended: OnAppended = ({ records, commitMs, durableAt }) => {
    metrics.lmdbCommit.observe(commitMs / 1000);
    const latencies = new Float64Array(records.length);
    records.forEach((r, i) => {
      latencies[i] = durableAt - r.ts;
      metrics.ingestLatency.observe(latencies[i]! / 1000);
    });
    onLatencies?.(latencies);
  };
  const { store, centroids, models, embedder } = core;
  const routing: RoutingSource = createRoutingSource({ centroids, embedder: embedder.fingerprint, logger });
  const roles = new Set(config.roles);
  const kafka: Kafka = createKafka({ settings: config.kafka, logger: logger.child({ component: 'kafka' }) });
  const admin: Admin = kafka.admin();
  await admin.connect();
  await ensureTopics({ admin, topics: config.topics, logger });
  const producer: Producer = createProducer(kafka);
  await producer.connect();

  const roleBase = { config, logger, kafka, producer, routing, onChunk };
  const onCacheLookups = ({ hits, misses }: CacheLookups) => {
    if (hits) metrics.embedCacheLookups.inc({ result: 'hit' }, hits);
    if (misses) metrics.embedCacheLookups.inc({ result: 'miss' }, misses);
  };
  metrics.embedderInfo.set({ kind: config.embedder.kind, fingerprint: embedder.fingerprint, dim: String(embedder.dim) }, 1);
  const stages: RunningStage[] = [];
  if (roles.has('sharder')) stages.push(await startSharderRole({ ...roleBase, store, onAppended }));
  if (roles.has('router')) {
    stages.push(
      config.pipeline.routerThreads > 0
        ? await startRouterThreads({ config, logger, count: config.pipeline.routerThreads, onChunk, onCacheLookups })
        : await startRouterRole({
            ...roleBase,
            // Only the router sees repeats worth caching; training and snapshots embed other text.
            embedder: withEmbeddingCache(embedder, { entries: config.pipeline.embedCache, onLookups: onCacheLookups }),
            routedPartitions: await partitionCount(admin, config.topics.routed),
          }),
    );
  }

  const events = createEventLog({ env: core.env });
  const controller = roles.has('controller')
    ? startController({
        store,
        centroids,
        routing,
        settings: config.clustering,
        drift: config.controller.drift,
        cluster: (sample, epoch) => clusterInThread({ sample, epoch, settings: config.clustering, embedder: embedder.fingerprint }, config.backend),
        logger: logger.child({ component: 'controller' }),
        onEvent: async (kind, message, facts) => {
          if (kind === 'spawn') metrics.spawned.inc();
          if (kind === 'split') metrics.splits.inc();
          if (facts?.fineClustersAdded) metrics.fineClustersAdded.inc(facts.fineClustersAdded);
          await events.record(kind, message);
        },
      })
    : undefined;

  const scheduler = roles.has('trainer')
    ? startTrainingScheduler({ config, configFile: await writeResolvedConfig(config), core, logger: logger.child({ component: 'trainer' }), events, metrics })
    : undefined;

  const snapshots = createSnapshotStore({ dir: snapshotsDirOf(config), keep: config.snapshots.keep });
  const http: RunningHttpServer | undefined = roles.has('http')
    ? await startHttpServer({
        host: config.http.host,
        port: config.http.port,
        logger,
        status: () => collectStatus({ config, store, centroids, models, admin, backend: core.backend, embedder, scheduler: scheduler?.view() ?? expertsOnly(core, config), events, snapshots }),
        metrics: () => metrics.registry.metrics(),
        health: () => stages.flatMap((s) => s.health()),
        snapshots,
      })
    : undefined;

  let stopping: Promise<void> | undefined;
  return {
    backend: core.backend,
    metrics,
    store,
    centroids,
    models,
    controller,
    scheduler,
    events,
    httpUrl: http?.url,
    stop() {
      stopping ??= (async () => {
        // Router first: no new routed records; then the sharder drains what it holds in flight.
        for (const stage of [...stages].reverse()) await stage.stop();
        await scheduler?.stop();
        await controller?.stop();
        await http?.close();
        await producer.disconnect();
        await admin.disconnect();
        routing.dispose();
        await core.close();
      })();
      return stopping;
    },
  };
}

/**
 * The resolved config as a file in the state directory: training children read it (`--config`) and so
 * train with exactly this process's settings, whatever mix of file, env and flags produced them.
 */
async function writeResolvedConfig(config: Config): Promise<string> {
  const dir = join(config.stateDir, 'run');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `config.${process.pid}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  return resolve(file);
}

const OUTCOME_LABEL = { routed: 'routed', unrouted: 'unrouted', deadLettered: 'dead_lettered', written: 'stored', duplicates: 'duplicate' } as const;
