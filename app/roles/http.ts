/**
 * The http role: status page and JSON, Prometheus metrics, probes over every running role's consumers,
 * and snapshots for evaluators (app/http.ts). Last in the registry, so every other role is running.
 */
import { startHttpServer } from '../http.js';
import { decoderName } from '../../src/image/decode.js';
import { imageDecodeFigures } from '../metrics.js';
import { collectStatus } from '../status.js';
import { expertsOnly, type RunningScheduler } from '../../training/scheduler.js';
import type { RunningSharder } from './stages.js';
import { noConsumers, type RoleDefinition, type RunningRole } from './role.js';

export const http: RoleDefinition<RunningRole & { url: string }> = {
  name: 'http',
  async start({ config, logger, core, admin, metrics, events, snapshots, running, inputs, nodes }) {
    const { store, centroids, models, embedder, backend } = core;
    const scheduler = () => (running.get('trainer') as RunningScheduler | undefined)?.view() ?? expertsOnly(core, config);
    const server = await startHttpServer({
      host: config.http.host,
      port: config.http.port,
      logger,
      status: () => collectStatus({ config, store, centroids, models, admin, inputs, backend, embedder, scheduler: scheduler(), events, snapshots, restores: (running.get('sharder') as Partial<RunningSharder> | undefined)?.restores, ...(running.has('router') ? { images: () => imageDecodeFigures(metrics, decoderName) } : {}), ...(nodes ? { nodes: () => nodes.heartbeats() } : {}) }),
      metrics: () => metrics.registry.metrics(),
      health: () => [...running.values()].flatMap((r) => r.health()),
      snapshots,
      auth: { token: config.http.token, protectMetrics: config.http.protectMetrics },
    });
    return { url: server.url, stop: () => server.close(), health: noConsumers };
  },
};
