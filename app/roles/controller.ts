/**
 * The controller role: bootstrap, catch-up routing, online refinement and drift (streams/controller.ts),
 * run only while this node leads the controller group (streams/leader.ts), publishing epochs through
 * the control topic under its term's claim (ARCHITECTURE.md section 4, "Election").
 */
import { startController, type RunningController } from '../../streams/controller.js';
import { createLogPublisher } from '../../streams/control-publisher.js';
import { joinLeaderGroup, runLeaderTerms, type Leadership } from '../../streams/leader.js';
import { clusterInThread } from '../cluster-thread.js';
import { nodeIdOf } from '../node-id.js';
import { noConsumers, type RoleDefinition, type RunningRole } from './role.js';

export interface ControllerRole extends RunningController, RunningRole {
  /** Whether this node leads now, since when and under which claim (heartbeats, status). */
  leadership(): Leadership;
}

export const controller: RoleDefinition<ControllerRole> = {
  name: 'controller',
  start: async ({ config, logger: parent, core, kafka, producer, routing, control, telemetry, metrics }) => {
    const logger = parent.child({ component: 'controller' });
    const node = nodeIdOf(config);
    const group = await joinLeaderGroup({ kafka, topic: config.topics.leader, groupId: config.groups.controller, settings: config.kafka, logger });
    let ticking: RunningController | undefined;
    metrics.controllerLeader.set(0);
    const terms = runLeaderTerms({
      group,
      follower: control,
      producer,
      controlTopic: config.topics.control,
      node,
      logger,
      retryMs: Math.max(1000, 2 * config.kafka.heartbeatIntervalMs),
      work: (claim, fenced) => {
        const running = startController({
          store: core.store,
          centroids: createLogPublisher({ producer, topic: config.topics.control, follower: control, source: core.centroids, node, claim: () => claim, logger, onFenced: fenced }),
          routing,
          settings: config.clustering,
          drift: config.controller.drift,
          cluster: (sample, epoch) => clusterInThread({ sample, epoch, settings: config.clustering, embedder: core.embedder.fingerprint }, config.backend),
          logger,
          onEvent: (kind, message, facts) => telemetry.emit({ type: 'event', kind, message, ...facts }),
        });
        ticking = running;
        return {
          async stop() {
            // Awaits the tick in flight: nothing is published after the term has ended here.
            await running.stop();
            if (ticking === running) ticking = undefined;
          },
        };
      },
      onChange: ({ leader, claim }) => {
        metrics.controllerLeader.set(leader ? 1 : 0);
        telemetry.emit({ type: 'event', kind: 'leader', message: leader ? `node ${node} leads the controller (claim ${claim})` : `node ${node} no longer leads the controller` });
      },
    });
    return {
      stop: () => terms.stop(),
      // One tick when leading; a follower has nothing to tick.
      tick: async () => ticking?.tick(),
      leadership: () => terms.leadership(),
      health: noConsumers,
    };
  },
};
