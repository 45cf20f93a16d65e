/**
 * The composition root of `modestream run`: builds every component from the Config and wires the
 * topology. One process runs all roles by default; `roles` picks a subset for scale-out.
 *
 *   [pairs] --router--> [routed] --sharder--> LMDB shards <--controller (bootstrap, catch-up routing)
 *       \--> [pairs.dlq]                                    http: /healthz, /status
 */
import type { Admin, Kafka, Producer } from 'kafkajs';
import { clusterInThread } from './cluster-thread.js';
import { createRoutingSource, type RoutingSource } from '../src/cluster/routing.js';
import { snapshotsDirOf, type Config } from '../src/config.js';
import { createEmbedder } from '../src/embed/embedder.js';
import type { CaptionEmbedder } from '../src/embed/embedder.js';
import type { Logger } from '../src/logger.js';
import { initBackend, type BackendInfo } from '../src/tensor/backend.js';
import { createCentroidStore, type CentroidStore } from '../state/centroids.js';
import { openStateEnv, type StateEnv } from '../state/env.js';
import { createModelStore, type ModelStore } from '../state/models.js';
import { createShardStore, type ShardStore } from '../state/shards.js';
import { createSnapshotStore } from '../state/snapshots.js';
import { startController, type RunningController } from '../streams/controller.js';
import { createKafka, createProducer, ensureTopics, partitionCount } from '../streams/kafka.js';
import type { RunningStage, StageOptions } from '../streams/stage.js';
import type { OnAppended } from '../streams/sharder.js';
import { startRouterRole, startSharderRole } from './roles.js';
import { startRouterThreads } from './router-threads.js';
import { startHttpServer, type RunningHttpServer } from './http.js';
import { createMetrics, type Metrics } from './metrics.js';
import { collectStatus } from './status.js';

export interface App {
  readonly backend: BackendInfo;
  readonly metrics: Metrics;
  readonly httpUrl?: string;
  readonly store: ShardStore;
  readonly centroids: CentroidStore;
  readonly models: ModelStore;
  readonly controller?: RunningController;
  stop(): Promise<void>;
}

/** Everything built from the config that both `run` and one-shot commands (bootstrap, status) need. */
export interface Core {
  env: StateEnv;
  store: ShardStore;
  centroids: CentroidStore;
  models: ModelStore;
  embedder: CaptionEmbedder;
  backend: BackendInfo;
  close(): Promise<void>;
}

export async function openCore(config: Config, logger: Logger): Promise<Core> {
  const backend = await initBackend(config.backend, logger);
  const env = openStateEnv({ dir: config.stateDir });
  const store = createShardStore({ env, reservoirSize: config.clustering.sample, reservoirSeed: config.clustering.seed });
  const centroids = createCentroidStore({ env });
  const models = createModelStore({ env });
  const embedder = await createEmbedder(config.embedder);
  return {
    env,
    store,
    centroids,
    models,
    embedder,
    backend,
    async close() {
      embedder.dispose();
      await env.close();
    },
  };
}

export interface StartAppOptions {
  config: Config;
  logger: Logger;
  /** Raw ingest latencies (ms, event time -> durable), for the pipeline benchmark's exact percentiles. */
  onLatencies?: (ms: Float64Array) => void;
}

export async function startApp({ config, logger, onLatencies }: StartAppOptions): Promise<App> {
  const core = await openCore(config, logger);
  const metrics = createMetrics();
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
  const stages: RunningStage[] = [];
  if (roles.has('sharder')) stages.push(await startSharderRole({ ...roleBase, store, onAppended }));
  if (roles.has('router')) {
    stages.push(
      config.pipeline.routerThreads > 0
        ? await startRouterThreads({ config, logger, count: config.pipeline.routerThreads, onChunk })
        : await startRouterRole({ ...roleBase, embedder, routedPartitions: await partitionCount(admin, config.topics.routed) }),
    );
  }

  const controller = roles.has('controller')
    ? startController({
        store,
        centroids,
        routing,
        settings: config.clustering,
        cluster: (sample, epoch) => clusterInThread({ sample, epoch, settings: config.clustering, embedder: embedder.fingerprint }, config.backend),
        logger: logger.child({ component: 'controller' }),
      })
    : undefined;

  const http: RunningHttpServer | undefined = roles.has('http')
    ? await startHttpServer({
        host: config.http.host,
        port: config.http.port,
        logger,
        status: () => collectStatus({ config, store, centroids, models, admin, backend: core.backend }),
        metrics: () => metrics.registry.metrics(),
        snapshots: createSnapshotStore({ dir: snapshotsDirOf(config), keep: config.snapshots.keep }),
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
    httpUrl: http?.url,
    stop() {
      stopping ??= (async () => {
        // Router first: no new routed records; then the sharder drains what it holds in flight.
        for (const stage of [...stages].reverse()) await stage.stop();
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

const OUTCOME_LABEL = { routed: 'routed', unrouted: 'unrouted', deadLettered: 'dead_lettered', written: 'stored', duplicates: 'duplicate' } as const;
