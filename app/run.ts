/**
 * The composition root of `modestream run`: opens the core, the Kafka clients and the telemetry port,
 * then starts the configured roles in registry order (app/roles/registry.ts). One process runs every
 * role by default; `roles` picks a subset for scale-out.
 *
 *   [pairs] --router--> [routed] --sharder--> LMDB shards <--controller (bootstrap, refinement, drift)
 *       \--> [pairs.dlq]                                    trainer -> snapshots; http: probes, /status
 *   every node (app/cluster/membership.ts): [control] -> LMDB epochs, [models] -> model store, [nodes] ->
 *   the cluster's status, caught up before the roles start; then its own heartbeat -> [nodes]
 */
import type { Logger } from '../src/logger.js';
import type { BackendInfo } from '../src/tensor/backend.js';
import { createRoutingSource } from '../src/cluster/routing.js';
import { countStates, judgeNodes } from '../src/nodes.js';
import { snapshotsDirOf, type Config } from '../src/config.js';
import { errorMessage } from '../src/errors.js';
import type { CentroidStore } from '../state/centroids.js';
import { createEventLog, type EventLog } from '../state/events.js';
import type { ModelStore } from '../state/models.js';
import type { ShardStore } from '../state/shards.js';
import { createSnapshotStore } from '../state/snapshots.js';
import { connectClient, createKafka, createProducer, ensureTopics } from '../streams/kafka.js';
import { concatMap, lastValueFrom } from 'rxjs';
import { remainingOf } from '../streams/restore.js';
import { openCore } from './core.js';
import { createMetrics, subscribeMetrics, type Metrics } from './metrics.js';
import type { ControllerRole } from './roles/controller.js';
import { ROLES, roleInputs, topicsOf } from './roles/registry.js';
import type { RoleName, RunningRole } from './roles/role.js';
import type { RunningSharder } from './roles/stages.js';
import { joinCluster } from './cluster/membership.js';
import { consumerPositions } from './status.js';
import { createTelemetry } from './telemetry.js';
import { expertFreshness, type RunningScheduler } from '../training/scheduler.js';

export interface App {
  readonly backend: BackendInfo;
  readonly metrics: Metrics;
  readonly httpUrl?: string;
  readonly store: ShardStore;
  readonly centroids: CentroidStore;
  readonly models: ModelStore;
  readonly controller?: ControllerRole;
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
  const kafka = createKafka({ settings: config.kafka, logger: logger.child({ component: 'kafka' }) });
  const admin = kafka.admin();
  const producer = createProducer(kafka);
  try {
    // Wrong credentials end here, as one AuthenticationError, before any role consumes.
    await connectClient(admin, config.kafka);
    await ensureTopics({ admin, topics: topicsOf(config), settings: config.topics, logger });
    await connectClient(producer, config.kafka);
  } catch (err) {
    await admin.disconnect().catch(() => undefined);
    await core.close();
    throw err;
  }
  const inputs = roleInputs(config);
  const running = new Map<RoleName, RunningRole>();
  const snapshots = createSnapshotStore({ dir: snapshotsDirOf(config), keep: config.snapshots.keep });
  // Telemetry: the roles emit, metrics / event log / latency probe subscribe.
  const telemetry = createTelemetry();
  // Kafka is the system of record (ARCHITECTURE.md section 4): before any role starts, the local stores
  // hold every epoch and model version the cluster's topics held, and the other nodes are known.
  const cluster = await joinCluster({ config, kafka, admin, producer, core, snapshots, telemetry, logger });
  const metrics = createMetrics({
    centroidEpoch: () => core.centroids.latestEpoch(),
    consumerLag: () => consumerPositions({ inputs, store: core.store, admin }),
    experts: () => expertFreshness(core, config),
    snapshotVersion: () => snapshots.latest(),
    clusterNodes: () => countStates(judgeNodes(cluster.nodes.heartbeats(), Date.now())),
    restores: () => restoreFigures(running.get('sharder')),
  });
  const roles = ROLES.filter((r) => config.roles.includes(r.name));
  subscribeMetrics(metrics, telemetry, {
    embedder: { kind: config.embedder.kind, fingerprint: core.embedder.fingerprint, dim: core.embedder.dim },
    stages: roles.flatMap((r) => (r.outcomes ? [{ stage: r.name, outcomes: r.outcomes }] : [])),
  });
  const events = createEventLog({ env: core.env });
  // In emission order; stop() waits for the last one before closing LMDB.
  const recorded = lastValueFrom(
    telemetry.on('event').pipe(concatMap((e) => events.record(e.kind, e.message).catch((err: unknown) => logger.warn({ err: errorMessage(err), kind: e.kind }, 'event not recorded')))),
    { defaultValue: undefined },
  );
  const latencies = onLatencies && telemetry.on('appended').subscribe(({ records, durableAt }) => onLatencies(Float64Array.from(records, (r) => durableAt - r.ts)));

  const routing = createRoutingSource({ centroids: core.centroids, embedder: core.embedder.fingerprint, logger });
  const { control, nodes, modelReplica } = cluster;
  const context = { config, logger, core, kafka, admin, producer, routing, modelReplica, control, telemetry, metrics, events, snapshots, inputs, running, nodes };
  for (const role of roles) running.set(role.name, await role.start(context));
  cluster.heartbeat(running);

  let stopping: Promise<void> | undefined;
  return {
    backend: core.backend,
    metrics,
    store: core.store,
    centroids: core.centroids,
    models: core.models,
    controller: running.get('controller') as ControllerRole | undefined,
    scheduler: running.get('trainer') as (RunningScheduler & RunningRole) | undefined,
    events,
    httpUrl: (running.get('http') as { url?: string } | undefined)?.url,
    stop() {
      stopping ??= (async () => {
        // Reverse start order: http and the trainer first, then the router (no new routed records),
        // then the sharder drains what it holds in flight.
        for (const role of [...roles].reverse()) await running.get(role.name)?.stop();
        // Once the roles are down: the last heartbeat, marked stopped, says so truthfully.
        await cluster.leave();
        telemetry.close();
        await recorded;
        latencies?.unsubscribe();
        await producer.disconnect();
        await admin.disconnect();
        routing.dispose();
        await core.close();
      })();
      return stopping;
    },
  };
}

/** The sharder's restore figures for the scrape (none when this process runs no sharder). */
function restoreFigures(role: RunningRole | undefined): { remaining: { partition: number; records: number }[]; total: number } {
  const sharder = role as Partial<RunningSharder> | undefined;
  if (!sharder?.restores) return { remaining: [], total: 0 };
  return { remaining: sharder.restores().map((p) => ({ partition: p.partition, records: remainingOf(p) })), total: sharder.restoredTotal?.() ?? 0 };
}
