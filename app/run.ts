/**
 * The composition root of `modestream run`: opens the core, the Kafka clients and the telemetry port,
 * then starts the configured roles in registry order (app/roles/registry.ts). One process runs every
 * role by default; `roles` picks a subset for scale-out.
 *
 *   [pairs] --router--> [routed] --sharder--> LMDB shards <--controller (bootstrap, catch-up routing)
 *       \--> [pairs.dlq]                                    trainer -> snapshots; http: probes, /status
 *   [control] --follower (every node, caught up before the roles)--> LMDB epochs; the elected controller
 *   publishes its epochs to [control] (app/control.ts, streams/leader.ts)
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
import { followControl } from './control.js';
import { remainingOf } from '../streams/restore.js';
import { openCore } from './core.js';
import { createMetrics, subscribeMetrics, type Metrics } from './metrics.js';
import type { ControllerRole } from './roles/controller.js';
import { ROLES, roleInputs, topicsOf } from './roles/registry.js';
import type { RoleName, RunningRole } from './roles/role.js';
import { startHeartbeats } from './cluster/heartbeat.js';
import { followNodes } from './cluster/directory.js';
import { nodeIdOf } from './node-id.js';
import type { RunningSharder } from './roles/stages.js';
import { consumerPositions } from './status.js';
import { startModelReplica } from './model-replica.js';
import { createSnapshotAssembler } from './snapshot-assembler.js';
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
  // Kafka is the system of record for epochs (ARCHITECTURE.md section 3): before any role starts, the
  // local store holds every epoch the control log held, so a router on a new machine routes at once.
  const control = await followControl({ config, kafka, admin, centroids: core.centroids, logger });

  const running = new Map<RoleName, RunningRole>();
  const snapshots = createSnapshotStore({ dir: snapshotsDirOf(config), keep: config.snapshots.keep });
  // The cluster as the nodes topic tells it (ARCHITECTURE.md section 4, "Cluster status"): read from
  // the start on every node, for its status and `modestream_cluster_nodes`.
  const node = nodeIdOf(config);
  const startedAt = Date.now();
  const nodes = await followNodes({ kafka, config, node, logger: logger.child({ component: 'nodes' }) });
  // Telemetry: the roles emit, metrics / event log / latency probe subscribe.
  const telemetry = createTelemetry();
  const metrics = createMetrics({
    centroidEpoch: () => core.centroids.latestEpoch(),
    consumerLag: () => consumerPositions({ inputs, store: core.store, admin }),
    experts: () => expertFreshness(core, config),
    snapshotVersion: () => snapshots.latest(),
    clusterNodes: () => countStates(judgeNodes(nodes.heartbeats(), Date.now())),
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

  // Trained versions of the whole cluster; a node serving snapshots assembles one when a version arrives.
  const assembler = config.roles.includes('http') ? createSnapshotAssembler({ config, core, logger, telemetry }) : undefined;
  const modelReplica = await startModelReplica({ config, kafka, admin, producer, models: core.models, logger, onApplied: assembler?.applied });
  await modelReplica.caughtUp();

  const routing = createRoutingSource({ centroids: core.centroids, embedder: core.embedder.fingerprint, logger });
  const context = { config, logger, core, kafka, admin, producer, routing, modelReplica, control, telemetry, metrics, events, snapshots, inputs, running, nodes };
  for (const role of roles) running.set(role.name, await role.start(context));
  // Every node heartbeats whatever its roles; started once the roles run, so the first one shows them.
  const heartbeats = startHeartbeats({
    sources: {
      config,
      node,
      startedAt,
      running,
      httpUrl: () => (running.get('http') as { url?: string } | undefined)?.url,
      expertStats: () => core.store.expertStats(),
      centroidEpoch: () => core.centroids.latestEpoch(),
      snapshotVersion: () => snapshots.latest(),
    },
    producer,
    topic: config.topics.nodes,
    heartbeatMs: config.node.heartbeatMs,
    logger: logger.child({ component: 'heartbeat' }),
  });

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
        await modelReplica.stop();
        await assembler?.stop();
        // Once the roles are down: the last heartbeat, marked stopped, says so truthfully.
        await heartbeats.stop();
        await nodes.stop();
        telemetry.close();
        await recorded;
        latencies?.unsubscribe();
        await control.stop();
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
