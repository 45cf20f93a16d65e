/**
 * The controller's loop: on every tick, at most one of each, in order —
 *   1. bootstrap: no centroid epoch yet and the reservoir is full -> cluster it -> publish epoch 1;
 *   2. catch-up: records stored unrouted (before epoch 1 existed) -> route them into expert shards.
 * Ticks never overlap (exhaustMap drops a tick while the previous one runs), and a failed tick is
 * logged and retried on the next one: the controller never takes ingestion down with it.
 */
import { exhaustMap, interval, startWith, type Subscription } from 'rxjs';
import type { CentroidModel } from '../src/cluster/model.js';
import type { RoutingSource } from '../src/cluster/routing.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { CentroidStore } from '../state/centroids.js';
import type { ShardStore } from '../state/shards.js';

export interface ControllerDeps {
  store: ShardStore;
  centroids: CentroidStore;
  routing: RoutingSource;
  /** Reservoir size at which centers are bootstrapped. */
  sampleSize: number;
  /** Clusters a sample into epoch `epoch` (the clustering settings are bound by the caller). */
  cluster: (sample: Float32Array[], epoch: number) => Promise<CentroidModel>;
  logger: Logger;
  tickMs?: number;
  /** Records moved per catch-up transaction. */
  catchUpBatch?: number;
}

export interface RunningController {
  stop(): Promise<void>;
  /** Resolves after the next complete tick (tests, `bootstrap --wait`). */
  tick(): Promise<void>;
}

export function startController(deps: ControllerDeps): RunningController {
  const { logger, tickMs = 1000 } = deps;
  let current: Promise<void> = Promise.resolve();
  const runTick = () => (current = controllerTick(deps).catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'controller tick failed; retrying next tick')));
  const subscription: Subscription = interval(tickMs)
    .pipe(startWith(0), exhaustMap(() => runTick()))
    .subscribe();
  return {
    async stop() {
      subscription.unsubscribe();
      await current;
    },
    async tick() {
      await current;
      await runTick();
    },
  };
}

export async function controllerTick({ store, centroids, routing, sampleSize, cluster, logger, catchUpBatch = 2000 }: ControllerDeps): Promise<void> {
  if (centroids.latestEpoch() === 0 && store.reservoirSeen() >= sampleSize) {
    const { embeddings } = store.reservoirSample();
    logger.info({ sample: embeddings.length }, 'bootstrapping centroids from the reservoir sample');
    const started = performance.now();
    const model = await cluster(embeddings, 1);
    const won = await centroids.publish(model);
    logger.info(
      { epoch: model.epoch, fine: model.fineIds.length, experts: model.experts.length, inertia: model.stats.inertia, ms: Math.round(performance.now() - started), published: won },
      won ? 'centroid epoch published' : 'another process published this epoch first; using theirs',
    );
  }
  const current = routing.current();
  if (!current) return;
  let moved = 0;
  while (store.unroutedCount() > 0) {
    const n = await store.routeStored(catchUpBatch, async (embeddings) => {
      const dim = current.model.dim;
      const flat = new Float32Array(embeddings.length * dim);
      embeddings.forEach((e, i) => flat.set(e, i * dim));
      return current.route(flat);
    });
    if (n === 0) break;
    moved += n;
  }
  if (moved) logger.info({ moved, epoch: current.epoch }, 'routed records stored before the first epoch');
}
