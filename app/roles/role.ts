/**
 * What a role is (ARCHITECTURE.md section 2): one capability of `modestream run` that declares the topic
 * it consumes, with its group and where its position lives, the topics it uses, the outcomes it counts
 * and how it starts, stops and reports its health. run.ts, topic creation, the status page's lag rows
 * and the metrics' label sets are all driven from the registry (registry.ts): a new stage is one file
 * plus one registry line.
 */
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { RoutingSource } from '../../src/cluster/routing.js';
import type { Config } from '../../src/config.js';
import type { Logger } from '../../src/logger.js';
import type { EventLog } from '../../state/events.js';
import type { ControlFollower } from '../../streams/control-follower.js';
import type { SnapshotStore } from '../../state/snapshots.js';
import type { StageHealth } from '../../streams/health.js';
import type { OutcomeName } from '../../streams/stage.js';
import type { NodeDirectory } from '../cluster/directory.js';
import type { Core } from '../core.js';
import type { ModelReplica } from '../model-replica.js';
import type { Metrics } from '../metrics.js';
import type { Telemetry } from '../telemetry.js';

export type RoleName = Config['roles'][number];


export interface RoleInput {
  topic: string;
  group: string;
  /** Where the role's position in the topic lives: Kafka's committed offset, or what LMDB made durable. */
  position: 'committed' | 'durable';
}

/** A role's input with the role's name: one lag row per partition. */
export type StageInput = RoleInput & { stage: RoleName };

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  /** Topic-level configs at creation (cleanup.policy, retention.ms, ...); an existing topic is left as it is. */
  configs?: Readonly<Record<string, string>>;
}

/** What a role gets to start with: the process's core, its Kafka clients, and the roles started before it. */
export interface RoleContext {
  config: Config;
  logger: Logger;
  core: Core;
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
  routing: RoutingSource;
  /** Every trained model version of the cluster, in this node's model store (app/model-replica.ts). */
  modelReplica: ModelReplica;
  /** The control log's follower, caught up before any role starts (app/control.ts). */
  control: ControlFollower;
  telemetry: Telemetry;
  metrics: Metrics;
  events: EventLog;
  snapshots: SnapshotStore;
  /** Every consuming role's input (registry.ts roleInputs): the status page's lag rows. */
  inputs: readonly StageInput[];
  /** Roles already running, by name (registry order): http reads their health and the trainer's view. */
  running: ReadonlyMap<RoleName, RunningRole>;
  /** Every node's newest heartbeat, followed on the nodes topic (app/cluster/directory.ts): cluster status. */
  nodes?: NodeDirectory;
}

export interface RunningRole {
  stop(): Promise<void>;
  /** The role's Kafka consumers for the probes (none for roles without one). */
  health(): StageHealth[];
}

export interface RoleDefinition<R extends RunningRole = RunningRole> {
  name: RoleName;
  input?(config: Config): RoleInput;
  /** Every topic the role reads or writes, with its partition count (created when missing). */
  topics?(config: Config): TopicSpec[];
  outcomes?: readonly OutcomeName[];
  start(context: RoleContext): Promise<R>;
}

/** A role without Kafka consumers has nothing for the probes to watch. */
export const noConsumers = (): StageHealth[] => [];
