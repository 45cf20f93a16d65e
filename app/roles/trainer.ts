/** The trainer role: trains the seed and due experts as child jobs and publishes snapshots (training/scheduler.ts). */
import { partitionCount } from '../../streams/kafka.js';
import { startSeedSampleFollower } from '../seed-sample-follower.js';
import { seedSource, trainingPlacement } from '../../training/placement.js';
import { startTrainingScheduler, type RunningScheduler } from '../../training/scheduler.js';
import type { ControllerRole } from './controller.js';
import { noConsumers, type RoleDefinition, type RunningRole } from './role.js';
import type { RunningSharder } from './stages.js';

export const trainer: RoleDefinition<RunningScheduler & RunningRole> = {
  name: 'trainer',
  start: async ({ config, core, logger, telemetry, modelReplica, running, admin, kafka }) => {
    // Absent roles run in other processes sharing this state dir: then this trainer trains everything.
    const sharder = running.get('sharder') as RunningSharder | undefined;
    const controller = running.get('controller') as ControllerRole | undefined;
    const placement = {
      owned: sharder && (() => sharder.owned()),
      leads: controller && (() => controller.leadership().leader),
      routedPartitions: await partitionCount(admin, config.topics.routed),
    };
    // Every trainer node keeps the sample: whichever node leads later trains the seed from it.
    const sample = await startSeedSampleFollower({ config, kafka, sample: core.seedSample, logger });
    const scheduler = startTrainingScheduler({ config, core, logger: logger.child({ component: 'trainer' }), telemetry, trains: trainingPlacement(placement), seedFrom: seedSource(placement), onTrained: (name, version) => modelReplica.publish(name, version) });
    return {
      ...scheduler,
      async stop() {
        await scheduler.stop();
        await sample.stop();
      },
      health: noConsumers,
    };
  },
};
