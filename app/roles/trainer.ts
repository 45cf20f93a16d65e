/** The trainer role: trains the seed and due experts as child jobs and publishes snapshots (training/scheduler.ts). */
import { partitionCount } from '../../streams/kafka.js';
import { trainingPlacement } from '../../training/placement.js';
import { startTrainingScheduler, type RunningScheduler } from '../../training/scheduler.js';
import { noConsumers, type RoleDefinition, type RunningRole } from './role.js';

export const trainer: RoleDefinition<RunningScheduler & RunningRole> = {
  name: 'trainer',
  start: async ({ config, core, logger, telemetry, modelReplica, running, admin }) => {
    const sharder = running.get('sharder');
    const controller = running.get('controller');
    const trains = trainingPlacement({
      owned: sharder && 'owned' in sharder ? () => (sharder as { owned(): readonly number[] }).owned() : undefined,
      leads: controller && 'leadership' in controller ? () => (controller as { leadership(): { leader: boolean } }).leadership().leader : undefined,
      routedPartitions: await partitionCount(admin, config.topics.routed),
    });
    return {
      ...startTrainingScheduler({ config, core, logger: logger.child({ component: 'trainer' }), telemetry, trains, onTrained: (name, version) => modelReplica.publish(name, version) }),
      health: noConsumers,
    };
  },
};
