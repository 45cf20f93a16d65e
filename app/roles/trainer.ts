/** The trainer role: trains the seed and due experts as child jobs and publishes snapshots (training/scheduler.ts). */
import { startTrainingScheduler, type RunningScheduler } from '../../training/scheduler.js';
import { noConsumers, type RoleDefinition, type RunningRole } from './role.js';

export const trainer: RoleDefinition<RunningScheduler & RunningRole> = {
  name: 'trainer',
  start: async ({ config, core, logger, telemetry, modelReplica }) => ({
    ...startTrainingScheduler({ config, core, logger: logger.child({ component: 'trainer' }), telemetry, onTrained: (name, version) => modelReplica.publish(name, version) }),
    health: noConsumers,
  }),
};
