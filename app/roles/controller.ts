/** The controller role: bootstrap, catch-up routing, online refinement and drift (streams/controller.ts). */
import { startController, type RunningController } from '../../streams/controller.js';
import { clusterInThread } from '../cluster-thread.js';
import { noConsumers, type RoleDefinition, type RunningRole } from './role.js';

export const controller: RoleDefinition<RunningController & RunningRole> = {
  name: 'controller',
  start: async ({ config, logger, core, routing, telemetry }) => ({
    ...startController({
      store: core.store,
      centroids: core.centroids,
      routing,
      settings: config.clustering,
      drift: config.controller.drift,
      cluster: (sample, epoch) => clusterInThread({ sample, epoch, settings: config.clustering, embedder: core.embedder.fingerprint }, config.backend),
      logger: logger.child({ component: 'controller' }),
      onEvent: (kind, message, facts) => telemetry.emit({ type: 'event', kind, message, ...facts }),
    }),
    health: noConsumers,
  }),
};
