/**
 * The controller's loop: on every tick, at most one of each, in order —
 *   1. bootstrap: no centroid epoch yet and the reservoir is full -> cluster it -> publish epoch 1;
 *   2. refine: records stored since the epoch's `refinedThrough` update a draft of the fine centers
 *      (mini-batch k-means); once the draft has moved more than `moveThreshold`, it is published as the
 *      next epoch, with the new `refinedThrough`, in one conditional write;
 *   3. drift: a full novelty buffer becomes new fine centers (joining experts or spawning one), and an
 *      expert holding far more than its share is split (src/cluster/drift.ts); every change is an event.
 * Records follow an epoch on every node, not here: the sharder's catch-up (streams/catch-up.ts) routes
 * each node's unrouted records and moves the records of split-off fine clusters. Only the novelty-driven
 * relocation (buffered pairs given new fine clusters) still runs here, on the controller's node, for now.
 * Ticks never overlap (exhaustMap drops a tick while the previous one runs), and a failed tick is
 * logged and retried on the next one: the controller never takes ingestion down with it.
 */
import { exhaustMap, interval, startWith, type Subscription } from 'rxjs';
import type { ClusteringSettings, ControllerSettings } from '../src/config.js';
import { withRadii } from '../src/cluster/bootstrap.js';
import { noveltyMaxRatio } from '../src/cluster/novelty.js';
import { planNovelty, planSplit } from '../src/cluster/drift.js';
import type { CentroidModel } from '../src/cluster/model.js';
import { meanDisplacement, refineCenters, refinedEpoch } from '../src/cluster/online.js';
import { createRouting, type RoutingSource } from '../src/cluster/routing.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { CentroidPublisher, ControllerShards } from './ports.js';

export interface ControllerDeps {
  store: ControllerShards;
  centroids: CentroidPublisher;
  routing: RoutingSource;
  /** Reservoir size at which centers are bootstrapped, and the online refinement settings. */
  settings: Pick<ClusteringSettings, 'sample' | 'refine'>;
  /** Clusters a sample into epoch `epoch` (the clustering settings are bound by the caller). */
  cluster: (sample: Float32Array[], epoch: number) => Promise<CentroidModel>;
  logger: Logger;
  tickMs?: number;
  /** Spawning and splitting experts; absent or disabled: the set of experts stays as bootstrapped. */
  drift?: ControllerSettings['drift'];
  /** Every bootstrap, epoch, spawn and split (the event log, metrics). */
  onEvent?: (kind: 'bootstrap' | 'epoch' | 'spawn' | 'split', message: string, facts?: { fineClustersAdded?: number }) => void | Promise<void>;
}

export interface RunningController {
  stop(): Promise<void>;
  /** Resolves after the next complete tick (tests, `bootstrap --wait`). */
  tick(): Promise<void>;
}

export function startController(deps: ControllerDeps): RunningController {
  const { logger, tickMs = 1000 } = deps;
  const refiner = createRefiner(deps);
  let current: Promise<void> = Promise.resolve();
  const runTick = () => (current = controllerTick(deps, refiner).catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'controller tick failed; retrying next tick')));
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

export async function controllerTick(deps: ControllerDeps, refiner = createRefiner(deps)): Promise<void> {
  const { store, centroids, settings, cluster, logger } = deps;
  if (centroids.latestEpoch() === 0 && store.reservoirSeen() >= settings.sample) {
    const { embeddings } = store.reservoirSample();
    logger.info({ sample: embeddings.length }, 'bootstrapping centroids from the reservoir sample');
    const started = performance.now();
    const clustered = await cluster(embeddings, 1);
    // Novelty radii come from the same sample the centers came from (src/cluster/novelty.ts).
    const model = deps.drift ? await withRadii(clustered, embeddings, deps.drift) : clustered;
    const won = await centroids.publish(model);
    logger.info(
      { epoch: model.epoch, fine: model.fineIds.length, experts: model.experts.length, inertia: model.stats.inertia, noveltyMaxRatio: model.maxRatio, ms: Math.round(performance.now() - started), published: won },
      won ? 'centroid epoch published' : 'another process published this epoch first; using theirs',
    );
    if (won) await deps.onEvent?.('bootstrap', `centroids bootstrapped from ${embeddings.length} sampled captions: ${model.fineIds.length} fine clusters, ${model.experts.length} experts`);
  }
  // Catch-up routing of records stored unrouted moved to every node's sharder (streams/catch-up.ts):
  // each node routes its OWN records, wherever the controller runs.
  if (settings.refine.enabled) await refiner.step();
  if (deps.drift?.enabled) await driftStep(deps, deps.drift);
}

/** Re-routes records with a newly published model and moves those whose expert changed. */
async function relocateWith(deps: ControllerDeps, model: CentroidModel, ids: readonly string[], embeddings: readonly Float32Array[]): Promise<number> {
  const routing = createRouting(model);
  try {
    let moved = 0;
    for (let i = 0; i < ids.length; i += 2000) {
      const batch = embeddings.slice(i, i + 2000);
      const flat = new Float32Array(batch.length * model.dim);
      batch.forEach((e, j) => flat.set(e, j * model.dim));
      const routes = await routing.route(flat);
      moved += await deps.store.relocate(routes.map((route, j) => ({ id: ids[i + j]!, route })));
    }
    return moved;
  } finally {
    routing.dispose();
  }
}

async function driftStep(deps: ControllerDeps, drift: ControllerSettings['drift']): Promise<void> {
  const { store, centroids, logger, onEvent } = deps;
  const base = centroids.latest();
  if (!base) return;

  // An epoch stored before novelty radii existed (or published by `modestream bootstrap`) flags no
  // candidates: derive its radii from the reservoir sample, the data its centers were clustered from.
  if (!base.radii) {
    const { embeddings } = store.reservoirSample();
    if (embeddings.length === 0 || embeddings[0]!.length !== base.dim) {
      logger.warn({ epoch: base.epoch }, 'centroid epoch has no novelty radii and no reservoir sample to derive them from: no novelty candidates');
      return;
    }
    const next = { ...(await withRadii(base, embeddings, drift)), epoch: base.epoch + 1, createdAt: Date.now() };
    if (await centroids.publish(next)) {
      logger.info({ epoch: next.epoch, sample: embeddings.length }, 'novelty radii derived from the reservoir sample');
      await onEvent?.('epoch', `epoch ${next.epoch}: novelty radii of ${next.fineIds.length} fine clusters derived from ${embeddings.length} sampled captions`);
    }
    return;
  }

  if (store.noveltyCount() >= drift.bufferSize) {
    // Exactly bufferSize per judgement, the size the rule was measured at: a catch-up after a slow
    // bootstrap can buffer several times that at once, and a bigger buffer changes the clusters' shape.
    const { ids, embeddings, through } = store.noveltyBuffer(drift.bufferSize);
    const novel = new Float32Array(embeddings.length * base.dim);
    embeddings.forEach((e, i) => novel.set(e, i * base.dim));
    const plan = await planNovelty({ model: base, novel, settings: drift, seed: base.epoch });
    const stats = store.noveltyStats();
    // What the judgement saw, per buffer cluster: size, distance ratio (new center / nearest old), verdict.
    const judged = plan?.judged.map((j) => ({ size: j.size, ratio: Number(j.ratio.toFixed(3)), keep: j.keep, ...(j.reason ? { reason: j.reason } : {}) }));
    const candidateRate = stats.routed ? Number((stats.candidates / stats.routed).toFixed(4)) : undefined;
    if (plan?.model) {
      if (await centroids.publish(plan.model)) {
        const moved = await relocateWith(deps, plan.model, ids, embeddings);
        const joined = Object.entries(plan.joined).map(([e, f]) => `${f.length} -> expert ${e}`);
        const spawned = Object.entries(plan.spawned).map(([e, f]) => `expert ${e} (${f.length} fine clusters)`);
        const message = `epoch ${plan.model.epoch}: ${ids.length} novel pairs became ${Object.values(plan.joined).flat().length + Object.values(plan.spawned).flat().length} new fine clusters (${[...joined, spawned.length ? `new ${spawned.join(', ')}` : ''].filter(Boolean).join('; ')}); ${moved} pairs moved, ${plan.dropped} dropped`;
        logger.info({ epoch: plan.model.epoch, joined: plan.joined, spawned: plan.spawned, moved, dropped: plan.dropped, judged, spawnDistance: Number(plan.spawnDistance.toFixed(3)), candidateRate }, 'novelty buffer clustered');
        await onEvent?.(spawned.length ? 'spawn' : 'epoch', message, { fineClustersAdded: plan.model.fineIds.length - base.fineIds.length });
      }
    } else {
      // A stationary stream's tail: dropping it is what keeps the same tail from being re-clustered.
      logger.info({ epoch: base.epoch, buffered: ids.length, dropped: ids.length, maxRatio: Number(noveltyMaxRatio(base, drift).toFixed(3)), judged, candidateRate }, 'novelty buffer judged: nothing new; candidates dropped');
    }
    await store.clearNovelty(through, plan ? plan.dropped : ids.length);
    return;
  }

  const current = centroids.latest()!;
  // Shares by the current epoch's map (fine counts), not by shard: the nodes move a split's records
  // a moment later (streams/catch-up.ts), and the expert must not look as big as before until they do.
  const records = new Map<number, number>();
  const fineCounts = store.fineCounts();
  current.fineIds.forEach((fine, row) => {
    const expert = current.fineToExpert[row]!;
    records.set(expert, (records.get(expert) ?? 0) + (fineCounts.get(fine) ?? 0));
  });
  const split = await planSplit({ model: current, records, settings: drift, seed: current.epoch });
  if (split && (await centroids.publish(split.model))) {
    // The split expert's records of the moved fine clusters change shard on every node, each its own
    // (streams/catch-up.ts), once its sharder sees the epoch.
    logger.info({ epoch: split.model.epoch, expert: split.expert, newExpert: split.newExpert, fineMoved: split.moved.length }, 'expert split');
    await onEvent?.('split', `epoch ${split.model.epoch}: expert ${split.expert} split; ${split.moved.length} fine clusters (and their pairs, on every node) moved to new expert ${split.newExpert}`);
  }
}

/**
 * The refinement draft lives in memory between ticks; it is rebuilt from the newest epoch whenever
 * someone (this process or another) published one, so two controllers never merge their drafts.
 */
function createRefiner({ store, centroids, routing, settings, logger, onEvent }: ControllerDeps) {
  let draft: { base: CentroidModel; fine: Float32Array; counts: Float64Array; through: Record<number, number>; applied: number } | undefined;
  return {
    async step(): Promise<void> {
      const base = centroids.latest();
      const current = routing.current();
      if (!base || !current || current.epoch !== base.epoch) return;
      if (draft?.base.epoch !== base.epoch) draft = { base, fine: base.fine, counts: base.counts, through: { ...base.refinedThrough }, applied: 0 };
      const { dim } = base;
      const rowOfFine = new Map(Array.from(base.fineIds, (id, row) => [id, row]));
      // Up to `batch` new records per tick, taken across experts so none starves.
      const experts = Array.from(base.experts);
      const perExpert = Math.max(1, Math.ceil(settings.refine.batch / experts.length));
      const embeddings: Float32Array[] = [];
      const through = { ...draft.through };
      for (const expert of experts) {
        for (const { seq, record } of store.read(expert, { fromSeq: draft.through[expert] ?? 0, limit: perExpert })) {
          embeddings.push(record.embedding);
          through[expert] = seq + 1;
        }
      }
      if (embeddings.length === 0) return;
      const flat = new Float32Array(embeddings.length * dim);
      embeddings.forEach((e, i) => flat.set(e, i * dim));
      // Mini-batch k-means assigns each point to its nearest center now (the published epoch's).
      const routes = await current.route(flat);
      const rows = routes.map((r) => rowOfFine.get(r.fine)!);
      const refined = refineCenters({ fine: draft.fine, counts: draft.counts, dim }, flat, rows);
      draft = { ...draft, fine: refined.fine, counts: refined.counts, through, applied: draft.applied + refined.applied };
      const moved = meanDisplacement(draft.fine, base.fine, dim);
      if (moved <= settings.refine.moveThreshold) return;
      const next = { ...refinedEpoch(base, refined), refinedThrough: through };
      const won = await centroids.publish(next);
      logger.info({ epoch: next.epoch, applied: draft.applied, moved: Number(moved.toFixed(4)), published: won }, won ? 'refined centers published as a new epoch' : 'another process published first; refining from its epoch');
      if (won) await onEvent?.('epoch', `epoch ${next.epoch}: fine centers refined on ${draft.applied} pairs (moved ${moved.toFixed(3)})`);
      draft = undefined;
    },
  };
}
