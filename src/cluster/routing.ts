/**
 * Routing with one centroid epoch: a caption embedding goes to its nearest fine center (squared L2,
 * ARCHITECTURE.md section 2 step 3) and to that center's expert. The fine centers stay resident on the tensor
 * backend; one call routes a whole chunk with one matmul.
 */
import type { Route } from '../contract/routed.js';
import type { Logger } from '../logger.js';
import type { CentroidModel } from './model.js';
import { createNearestCenters } from './nearest.js';

export interface Routing {
  readonly epoch: number;
  readonly model: CentroidModel;
  /** Routes `embeddings` (row-major, count x dim). */
  route(embeddings: Float32Array): Promise<Route[]>;
  /** Frees the centers once calls in flight are done. */
  dispose(): void;
}

export function createRouting(model: CentroidModel): Routing {
  const nearest = createNearestCenters({ centers: model.fine, dim: model.dim });
  let inFlight = 0;
  let disposed = false;
  return {
    epoch: model.epoch,
    model,
    async route(embeddings) {
      if (disposed) throw new Error(`routing for epoch ${model.epoch} was disposed`);
      inFlight++;
      try {
        const { index, dist2 } = await nearest.assign(embeddings);
        return Array.from(index, (row, i) => ({
          epoch: model.epoch,
          fine: model.fineIds[row]!,
          expert: model.fineToExpert[row]!,
          dist2: Math.max(0, dist2[i]!),
        }));
      } finally {
        inFlight--;
        if (disposed && inFlight === 0) nearest.dispose();
      }
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      if (inFlight === 0) nearest.dispose();
    },
  };
}

/** Where the current model comes from (the centroid store); cheap to ask on every chunk. */
export interface CentroidSource {
  latestEpoch(): number;
  latest(): CentroidModel | undefined;
}

export interface RoutingSource {
  /** Routing for the newest epoch, or undefined before the first bootstrap. */
  current(): Routing | undefined;
  dispose(): void;
}

/**
 * Follows the newest centroid epoch. A model built in another embedding space (the embedder's
 * fingerprint differs) is never used: its routes would be meaningless.
 */
export function createRoutingSource({ centroids, embedder, logger }: { centroids: CentroidSource; embedder: string; logger: Logger }): RoutingSource {
  let routing: Routing | undefined;
  let refused = 0;
  return {
    current() {
      const epoch = centroids.latestEpoch();
      if (epoch === 0 || epoch === routing?.epoch || epoch === refused) return routing;
      const model = centroids.latest();
      if (!model) return routing;
      if (model.embedder !== embedder) {
        refused = epoch;
        logger.error({ epoch, modelEmbedder: model.embedder, embedder }, 'centroid epoch was built with another embedder; run `modestream bootstrap` to recluster');
        return routing;
      }
      routing?.dispose();
      routing = createRouting(model);
      logger.info({ epoch, fine: model.fineIds.length, experts: model.experts.length }, 'routing with new centroid epoch');
      return routing;
    },
    dispose() {
      routing?.dispose();
      routing = undefined;
    },
  };
}
