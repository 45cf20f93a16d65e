/**
 * The status report of `modestream status`, built without a running instance: opens the state directory
 * read-only (safe next to `modestream run`) and, unless told not to, asks the brokers for offsets and
 * reads the nodes topic (every node's newest heartbeat).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { snapshotsDirOf, type Config } from '../src/config.js';
import { AuthenticationError, EnvironmentError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { StatusReport } from '../src/status.js';
import { createCentroidStore } from '../state/centroids.js';
import { openStateEnv } from '../state/env.js';
import { createEventLog } from '../state/events.js';
import { createModelStore } from '../state/models.js';
import { createShardStore, type ShardStore } from '../state/shards.js';
import { createSnapshotStore } from '../state/snapshots.js';
import { createKafka, explainKafkaError } from '../streams/kafka.js';
import { roleInputs } from './roles/registry.js';
import { collectStatus } from './status.js';
import { readNodes } from './cluster/directory.js';
import { expertsOnly } from '../training/scheduler.js';

export type ShardAudit = ReturnType<ShardStore['audit']>;

export interface StatusReportOptions {
  /** Contact the brokers for offsets and the dead-letter count (default true). */
  kafka?: boolean;
  /** Also audit the shards: every pair id stored exactly once. */
  verify?: boolean;
}

export async function readStatusReport(config: Config, logger: Logger, { kafka = true, verify = false }: StatusReportOptions = {}): Promise<{ report: StatusReport; audit?: ShardAudit }> {
  if (!existsSync(join(config.stateDir, 'lmdb'))) {
    throw new EnvironmentError(`no modestream state in ${config.stateDir} (set --state-dir, or start \`modestream run\` first)`);
  }
  const env = openStateEnv({ dir: config.stateDir, readOnly: true });
  const store = createShardStore({ env, reservoirSize: config.clustering.sample });
  const centroids = createCentroidStore({ env });
  const models = createModelStore({ env });
  const client = kafka ? createKafka({ settings: config.kafka, logger, retries: 1 }) : undefined;
  const admin = client?.admin();
  try {
    // An unreachable broker still leaves the LMDB figures; refused credentials are a configuration error.
    await admin?.connect().catch((err: unknown) => {
      const explained = explainKafkaError(err, config.kafka);
      if (explained instanceof AuthenticationError) throw explained;
    });
    const scheduler = expertsOnly({ store, centroids, models }, config);
    const snapshots = createSnapshotStore({ dir: snapshotsDirOf(config) });
    // The cluster as the nodes topic tells it: with no node running here, the newest heartbeat of each.
    const nodes = client && admin ? () => readNodes({ kafka: client, admin, config, logger }) : undefined;
    const report = await collectStatus({ config, store, centroids, models, admin, inputs: roleInputs(config), scheduler, events: createEventLog({ env }), snapshots, nodes });
    return verify ? { report, audit: store.audit() } : { report };
  } finally {
    await admin?.disconnect().catch(() => undefined);
    await env.close();
  }
}
