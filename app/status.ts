/**
 * Gathers the status report from LMDB (always available, also while `run` holds the environment) and
 * from Kafka (end offsets, the router group's committed offsets, the dead-letter count). Kafka being
 * down does not hide the LMDB figures.
 */
import type { Admin } from 'kafkajs';
import type { Config } from '../src/config.js';
import { errorMessage } from '../src/errors.js';
import type { StatusReport } from '../src/status.js';
import type { BackendInfo } from '../src/tensor/backend.js';
import type { CentroidStore } from '../state/centroids.js';
import type { EventLog } from '../state/events.js';
import { expertName, type ModelStore } from '../state/models.js';
import type { SnapshotStore } from '../state/snapshots.js';
import type { SchedulerView } from '../training/scheduler.js';
import type { ShardStore } from '../state/shards.js';
import type { StageInput } from './roles/role.js';
import { UNROUTED } from '../src/contract/routed.js';
import { topicMessageCount } from '../streams/kafka.js';
import type { NodeHeartbeat } from '../src/nodes.js';
import { clusterStatus } from './cluster/report.js';

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export interface StatusSources {
  config: Config;
  store: ShardStore;
  centroids: CentroidStore;
  models: ModelStore;
  admin?: Admin;
  backend?: BackendInfo;
  /** The loaded caption embedder, where this process has one (the CLI's status does not load it). */
  embedder?: { dim: number; fingerprint: string };
  /** Freshness, queue, running and failing jobs (from the training scheduler when this process runs one). */
  scheduler?: SchedulerView;
  events?: EventLog;
  snapshots?: SnapshotStore;
  /** The consuming roles' inputs, for the lag rows (app/roles/registry.ts roleInputs). */
  inputs?: readonly StageInput[];
  /** Every node's newest heartbeat (app/cluster/directory.ts): the report's `nodes` and `cluster`. */
  nodes?: () => Promise<readonly NodeHeartbeat[]> | readonly NodeHeartbeat[];
  /** The running sharder's restores on assignment (streams/restore.ts), where this process runs one. */
  restores?: () => StatusReport['restores'];
  /** The running router's image decoding (app/metrics.ts imageDecodeFigures), where this process runs one. */
  images?: () => Promise<StatusReport['images']>;
}

export async function collectStatus({ config, store, centroids, models, admin, backend, embedder, scheduler, events, snapshots, inputs = [], nodes, restores, images }: StatusSources): Promise<StatusReport> {
  const freshness = new Map((scheduler?.experts ?? []).map((f) => [f.expert, f]));
  const queued = new Set(scheduler?.queue.map((q) => q.name));
  const running = new Set(scheduler?.running);
  const stateOf = (id: number) => {
    const name = expertName(id);
    const f = freshness.get(id);
    if (running.has(name)) return 'training' as const;
    if (scheduler?.failing[name]) return 'failed' as const;
    if (queued.has(name)) return 'queued' as const;
    if (!models.latest(name)) return 'untrained' as const;
    return f?.due ? ('stale' as const) : ('fresh' as const);
  };
  const model = centroids.latest();
  const fineByExpert = new Map<number, number>();
  if (model) model.fineToExpert.forEach((e) => fineByExpert.set(e, (fineByExpert.get(e) ?? 0) + 1));
  const shardStats = new Map(store.expertStats().map((s) => [s.expert, s]));
  const expertIds = new Set<number>([...(model ? Array.from(model.experts) : []), ...shardStats.keys()]);
  expertIds.delete(UNROUTED);

  const report: StatusReport = {
    generatedAt: new Date().toISOString(),
    brokers: config.kafka.brokers,
    embedder: {
      kind: config.embedder.kind,
      ...('model' in config.embedder && config.embedder.model ? { model: config.embedder.model } : {}),
      dim: embedder?.dim ?? model?.dim ?? null,
      fingerprint: embedder?.fingerprint ?? model?.embedder ?? null,
      mismatch: Boolean(embedder && model && model.embedder !== embedder.fingerprint),
    },
    centroids: model
      ? {
          epoch: model.epoch,
          fine: model.fineIds.length,
          experts: model.experts.length,
          dim: model.dim,
          inertia: model.stats.inertia,
          sampleSize: model.stats.sampleSize,
          balanced: model.stats.balanced,
          oneStage: model.stats.oneStage,
          fineSpread: model.stats.fineSpread,
          expertSpread: model.stats.expertSpread,
          createdAt: new Date(model.createdAt).toISOString(),
        }
      : null,
    experts: [...expertIds]
      .sort((a, b) => a - b)
      .map((id) => {
        const s = shardStats.get(id);
        return {
          id,
          records: s?.records ?? 0,
          fineClusters: fineByExpert.get(id) ?? 0,
          firstRecordAt: iso(s?.firstRecordAt),
          lastRecordAt: iso(s?.lastRecordAt),
          version: freshness.get(id)?.version ?? models.latest(expertName(id))?.version ?? null,
          lastTrainedAt: iso(freshness.get(id)?.lastTrainedAt ?? models.latest(expertName(id))?.createdAt),
          pending: freshness.get(id)?.pending ?? s?.records ?? 0,
          oldestPendingAgeSeconds: freshness.get(id)?.oldestPendingAgeSeconds ?? null,
          state: stateOf(id),
        };
      }),
    unrouted: store.unroutedCount(),
    totalRecords: 0,
    deadLettered: null,
    reservoir: { seen: store.reservoirSeen(), capacity: config.clustering.sample },
    partitions: [],
    trainingQueue: scheduler?.queue ?? [],
    snapshot: await latestSnapshot(snapshots),
    events: (events?.recent(50) ?? []).map((e) => ({ at: new Date(e.at).toISOString(), kind: e.kind, message: e.message })),
    models: models.names().flatMap((name) => {
      const v = models.latest(name);
      return v ? [{ name, version: v.version, trainedAt: new Date(v.createdAt).toISOString(), steps: v.steps, loss: v.loss, records: v.records, backend: v.backend, samplesPerSecond: v.samplesPerSecond }] : [];
    }),
    jobs: models.jobs().map(({ name, state, step, totalSteps, loss, samplesPerSecond, backend, adapter, updatedAt, error }) => ({
      name,
      state,
      step,
      totalSteps,
      loss,
      samplesPerSecond,
      backend,
      ...(adapter ? { adapter } : {}),
      updatedAt: new Date(updatedAt).toISOString(),
      ...(error ? { error } : {}),
    })),
    nodes: [],
    cluster: null,
  };
  const restoring = restores?.();
  if (restoring) report.restores = restoring;
  const decoding = await images?.();
  if (decoding) report.images = decoding;
  report.totalRecords = report.experts.reduce((sum, e) => sum + e.records, report.unrouted);
  if (backend) report.backend = backend.adapter ? { name: backend.name, adapter: backend.adapter } : { name: backend.name };

  if (admin) {
    try {
      await addKafkaFigures(report, { config, store, admin, inputs });
    } catch (err) {
      report.kafkaError = errorMessage(err);
    }
  }
  if (nodes) {
    try {
      Object.assign(report, clusterStatus({ heartbeats: await nodes(), now: Date.now(), routedPartitions: config.topics.routedPartitions, routedTopic: config.topics.routed, experts: report.experts }));
    } catch (err) {
      report.nodesError = errorMessage(err);
    }
  }
  return report;
}

async function latestSnapshot(snapshots: SnapshotStore | undefined): Promise<StatusReport['snapshot']> {
  const version = await snapshots?.latest();
  if (version === undefined) return null;
  const found = await snapshots!.manifest(version).catch(() => undefined);
  return found ? { version, createdAt: found.manifest.createdAt, epoch: found.manifest.centroids.epoch } : null;
}

async function addKafkaFigures(report: StatusReport, { config, store, admin, inputs }: { config: Config; store: ShardStore; admin: Admin; inputs: readonly StageInput[] }): Promise<void> {
  const [deadLettered, partitions] = await Promise.all([topicMessageCount(admin, config.topics.dlq), consumerPositions({ inputs, store, admin })]);
  report.deadLettered = deadLettered;
  report.partitions.push(...partitions);
}

/**
 * For each consuming role (app/roles/registry.ts roleInputs), each partition of its input: the end
 * offset, the role's position (the group's committed offset, or the offset LMDB made durable) and the lag
 * between. For the status report and, at every scrape, the `modestream_consumer_lag` gauge.
 */
/** LMDB's position, moved past what Kafka's committed offset skipped; none where this node applied nothing. */
function maxDefined(durable: number | undefined, committed: number | undefined): number | undefined {
  return durable === undefined ? undefined : Math.max(durable, committed ?? -1);
}

export async function consumerPositions({ inputs, store, admin }: { inputs: readonly StageInput[]; store: Pick<ShardStore, 'nextOffset'>; admin: Admin }): Promise<StatusReport['partitions']> {
  const perInput = await Promise.all(
    inputs.map(async ({ stage, topic, group, position }) => {
      const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
      const byPartition = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      return ends
        .sort((a, b) => a.partition - b.partition)
        .map((p) => {
          const end = Number(p.high);
          const kafkaAt = byPartition.get(p.partition);
          // LMDB's offset is the last applied record + 1; Kafka's may be past the transaction markers that
          // follow it (streams/stage.ts), which are nothing to apply.
          const at = position === 'committed' ? kafkaAt : maxDefined(store.nextOffset(topic, p.partition), kafkaAt);
          const known = at === undefined || at < 0 ? null : at;
          return { topic, partition: p.partition, stage, position: known, end, lag: end - (known ?? Number(p.low)) };
        });
    }),
  );
  return perInput.flat();
}
