/**
 * This process as a node of the cluster (ARCHITECTURE.md section 4). Before any role starts it follows
 * what Kafka holds for everyone: the epochs on the control topic and the trained versions on the models
 * topic (both caught up first, so a node on a new machine routes and serves at once) and the other
 * nodes' heartbeats. Once its roles run, it heartbeats itself. `leave` undoes it all after the roles.
 */
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Config } from '../../src/config.js';
import type { Logger } from '../../src/logger.js';
import type { SnapshotStore } from '../../state/snapshots.js';
import { followControl, type ControlFollower } from '../control.js';
import type { Core } from '../core.js';
import { startModelReplica, type ModelReplica } from '../model-replica.js';
import { nodeIdOf } from '../node-id.js';
import type { RoleName, RunningRole } from '../roles/role.js';
import { createSnapshotAssembler } from '../snapshot-assembler.js';
import type { Telemetry } from '../telemetry.js';
import { followNodes, type NodeDirectory } from './directory.js';
import { startHeartbeats, type RunningHeartbeats } from './heartbeat.js';

export interface Membership {
  readonly node: string;
  readonly control: ControlFollower;
  readonly nodes: NodeDirectory;
  readonly modelReplica: ModelReplica;
  /** Starts the heartbeats once the roles run, so the first one shows them. */
  heartbeat(running: ReadonlyMap<RoleName, RunningRole>): void;
  /** After the roles stopped: the last heartbeat (marked stopped) goes out, then the followers stop. */
  leave(): Promise<void>;
}

export async function joinCluster({ config, kafka, admin, producer, core, snapshots, telemetry, logger }: { config: Config; kafka: Kafka; admin: Admin; producer: Producer; core: Core; snapshots: SnapshotStore; telemetry: Telemetry; logger: Logger }): Promise<Membership> {
  const node = nodeIdOf(config);
  const startedAt = Date.now();
  const control = await followControl({ config, kafka, admin, centroids: core.centroids, logger });
  const nodes = await followNodes({ kafka, config, node, logger: logger.child({ component: 'nodes' }) });
  // A node serving snapshots assembles one whenever a version trained elsewhere arrives.
  const assembler = config.roles.includes('http') ? createSnapshotAssembler({ config, core, logger, telemetry }) : undefined;
  const modelReplica = await startModelReplica({ config, kafka, admin, producer, models: core.models, logger, onApplied: assembler?.applied });
  await modelReplica.caughtUp();
  let heartbeats: RunningHeartbeats | undefined;

  return {
    node,
    control,
    nodes,
    modelReplica,
    heartbeat(running) {
      heartbeats = startHeartbeats({
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
    },
    async leave() {
      await modelReplica.stop();
      await assembler?.stop();
      await heartbeats?.stop();
      await nodes.stop();
      await control.stop();
    },
  };
}
