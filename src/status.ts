/**
 * The status report: what `modestream status --json` prints and GET /status.json serves. The schema is
 * the contract for scripts and tests that read it.
 */
import { z } from 'zod';
import { RestoreProgress } from './nodes.js';

const Spread = z.object({ min: z.number(), max: z.number(), mean: z.number(), cv: z.number() });

export const StatusReport = z.object({
  generatedAt: z.string(),
  brokers: z.array(z.string()),
  backend: z.object({ name: z.string(), adapter: z.string().optional() }).optional(),
  /**
   * The caption embedder that defines the routing space: the configured kind (and pulled model), with
   * the dimension and fingerprint of the loaded embedder, or of the newest epoch when none is loaded.
   */
  embedder: z.object({
    kind: z.string(),
    model: z.string().optional(),
    dim: z.number().int().nullable(),
    fingerprint: z.string().nullable(),
    /** True when the newest epoch was built in another space than the configured embedder's. */
    mismatch: z.boolean(),
  }),
  centroids: z
    .object({
      epoch: z.number().int(),
      fine: z.number().int(),
      experts: z.number().int(),
      dim: z.number().int(),
      inertia: z.number(),
      sampleSize: z.number().int(),
      balanced: z.boolean(),
      oneStage: z.boolean(),
      fineSpread: Spread,
      expertSpread: Spread,
      createdAt: z.string(),
    })
    .nullable(),
  experts: z.array(
    z.object({
      id: z.number().int(),
      records: z.number().int(),
      fineClusters: z.number().int(),
      firstRecordAt: z.string().nullable(),
      lastRecordAt: z.string().nullable(),
      /** Freshness: the newest trained version, and what arrived since its job started. */
      version: z.number().int().nullable(),
      lastTrainedAt: z.string().nullable(),
      pending: z.number().int(),
      oldestPendingAgeSeconds: z.number().nullable(),
      /** fresh | stale (due for retraining) | queued | training | failed (retrying with backoff) | untrained */
      state: z.enum(['fresh', 'stale', 'queued', 'training', 'failed', 'untrained']),
    }),
  ),
  /** Jobs waiting for the trainer, highest priority first. */
  trainingQueue: z.array(z.object({ name: z.string(), reason: z.string(), priority: z.number() })),
  /** The newest published ensemble snapshot. */
  snapshot: z.object({ version: z.number().int(), createdAt: z.string(), epoch: z.number().int() }).nullable(),
  /** Recent controller events, newest first. */
  events: z.array(z.object({ at: z.string(), kind: z.enum(['bootstrap', 'epoch', 'spawn', 'split', 'retrain', 'snapshot', 'failure', 'leader']), message: z.string() })),
  /** Records stored before the first centroid epoch, waiting for the controller to route them. */
  unrouted: z.number().int(),
  totalRecords: z.number().int(),
  deadLettered: z.number().int().nullable(),
  reservoir: z.object({ seen: z.number().int(), capacity: z.number().int() }),
  partitions: z.array(
    z.object({
      topic: z.string(),
      partition: z.number().int(),
      /** The consuming role; its position is the group's committed offset (router) or the offset durable in LMDB (sharder). */
      stage: z.string(),
      position: z.number().int().nullable(),
      end: z.number().int().nullable(),
      lag: z.number().int().nullable(),
    }),
  ),
  /**
   * The routed partitions this process's sharder is restoring or restored on assignment (streams/restore.ts);
   * absent where no sharder runs here (e.g. the CLI's status).
   */
  restores: z
    .array(z.object({ topic: z.string(), partition: z.number().int(), from: z.number().int(), target: z.number().int(), applied: z.number().int(), state: z.enum(['restoring', 'live']) }))
    .optional(),
  /**
   * The router's ingestion decode of encoded images since this process started: the decoder, how many
   * decoded or failed (dead-lettered), and the mean decoder time per image. Absent where no router runs here.
   */
  images: z.object({ decoder: z.string(), decoded: z.number().int(), failed: z.number().int(), meanDecodeMs: z.number().nullable() }).optional(),
  /** Published models (seed, experts): newest version and how it was trained. */
  models: z.array(
    z.object({
      name: z.string(),
      version: z.number().int(),
      trainedAt: z.string(),
      steps: z.number().int(),
      loss: z.number(),
      records: z.number().int(),
      backend: z.string(),
      samplesPerSecond: z.number(),
    }),
  ),
  /** Training jobs: progress of the running ones, outcome of the last ones. */
  jobs: z.array(
    z.object({
      name: z.string(),
      state: z.enum(['running', 'done', 'failed']),
      step: z.number().int(),
      totalSteps: z.number().int(),
      loss: z.number().nullable(),
      samplesPerSecond: z.number().nullable(),
      backend: z.string(),
      adapter: z.string().optional(),
      updatedAt: z.string(),
      error: z.string().optional(),
    }),
  ),
  /** Set when Kafka could not be reached: LMDB figures are still shown. */
  kafkaError: z.string().optional(),
  /**
   * Every node that ever heartbeat on the nodes topic, by id (src/nodes.ts): live while its newest
   * heartbeat is younger than 3 of its intervals, stopped after a clean stop, else dead. Defaults keep
   * a report from a node older than the nodes topic valid.
   */
  nodes: z.array(
    z.object({
      id: z.string(),
      host: z.string(),
      pid: z.number().int(),
      roles: z.array(z.string()),
      httpUrl: z.string().nullable(),
      state: z.enum(['live', 'dead', 'stopped']),
      startedAt: z.string(),
      lastHeartbeatAt: z.string(),
      /** Seconds since its newest heartbeat, against the reporting node's clock. */
      heartbeatAgeSeconds: z.number(),
      leader: z.boolean().nullable(),
      partitions: z.object({ routed: z.array(z.number().int()) }),
      restores: z.array(RestoreProgress),
      centroidEpoch: z.number().int(),
      snapshotVersion: z.number().int().nullable(),
      version: z.string(),
    }),
  ).default([]),
  /** The cluster's view of the experts (null until the nodes topic could be read). */
  cluster: z
    .object({
      /** P: expert e lives on routed partition e mod P. */
      routedPartitions: z.number().int(),
      experts: z.array(
        z.object({
          id: z.number().int(),
          partition: z.number().int(),
          /** The live node whose sharder holds the partition; null while none does. */
          owner: z.string().nullable(),
          /** Summed over the live nodes' heartbeats. */
          records: z.number().int(),
          restore: RestoreProgress.nullable(),
          /** This node's view of the expert's training (null when it knows nothing of the expert). */
          freshness: z.object({ state: z.string(), version: z.number().int().nullable(), pending: z.number().int(), oldestPendingAgeSeconds: z.number().nullable() }).nullable(),
        }),
      ),
    })
    .nullable()
    .default(null),
  /** Set when the nodes topic could not be read. */
  nodesError: z.string().optional(),
});

export type StatusReport = z.infer<typeof StatusReport>;
