/**
 * Every role `modestream run` knows, in start order (stopped in reverse): the sharder before the router
 * so routed records find a consumer, http last so it sees every other role. Topic creation, the lag rows
 * and the per-stage metric labels are derived from here.
 */
import type { Config } from '../../src/config.js';
import { controller } from './controller.js';
import { http } from './http.js';
import type { RoleDefinition, RoleName, StageInput, TopicSpec } from './role.js';
import { router } from './router.js';
import { sharder } from './sharder.js';
import { trainer } from './trainer.js';

export const ROLES: readonly RoleDefinition[] = [sharder, router, controller, trainer, http];

export function roleNamed(name: RoleName): RoleDefinition {
  const role = ROLES.find((r) => r.name === name);
  if (!role) throw new Error(`no role '${name}' in the registry`);
  return role;
}

/** The topics every role reads or writes, once each. */
export function topicsOf(config: Config): TopicSpec[] {
  const byName = new Map<string, TopicSpec>();
  for (const spec of [...clusterTopics(config), ...ROLES.flatMap((r) => r.topics?.(config) ?? [])]) if (!byName.has(spec.topic)) byName.set(spec.topic, spec);
  return [...byName.values()];
}

/**
 * Topics every node uses whatever its roles (ARCHITECTURE.md section 4): the cluster's own records.
 * One partition each where order is the point (epochs and claims, the election); compacted where the
 * newest value per key is the state (an epoch chunk, a node's heartbeat, a model version); the seed
 * sample is an ordinary topic (every trainer node reads all of it).
 */
export function clusterTopics(config: Config): TopicSpec[] {
  const compacted = { 'cleanup.policy': 'compact' };
  return [
    { topic: config.topics.control, numPartitions: 1, configs: compacted },
    { topic: config.topics.leader, numPartitions: 1 },
    { topic: config.topics.nodes, numPartitions: 1, configs: compacted },
    { topic: config.topics.models, numPartitions: 1, configs: { ...compacted, 'max.message.bytes': String(config.kafka.maxBytesPerPartition) } },
    { topic: config.topics.sample, numPartitions: 1 },
  ];
}

/** The consuming roles' inputs: one lag row per partition of each (status page, `modestream_consumer_lag`). */
export function roleInputs(config: Config): StageInput[] {
  return ROLES.flatMap((r) => (r.input ? [{ stage: r.name, ...r.input(config) }] : []));
}
