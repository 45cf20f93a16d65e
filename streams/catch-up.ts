/**
 * Node-local catch-up (ARCHITECTURE.md section 4): each node brings ITS OWN shards to the newest centroid
 * epoch, whichever node runs the controller. Whenever the routing source has an epoch this node has not
 * caught up with:
 *   1. records stored unrouted (before epoch 1) are routed into their experts' shards;
 *   2. records whose fine cluster the epoch maps to another expert (a split) move to that expert's shard.
 * The first pass of a process rescans every local shard (it cannot know which epoch they reflect); later
 * passes only the old experts of the fine clusters that changed expert. Each batch runs in the lane it
 * shares with the sharder's appends (streams/lane.ts). The novelty-driven relocation (buffered records
 * given new fine clusters) still runs in the controller, on the controller's node only.
 */
import { exhaustMap, interval, startWith, type Subscription } from 'rxjs';
import { expertsToRescan, fineToExpertOf, remapRoute, type FineToExpert } from '../src/cluster/remap.js';
import type { Routing, RoutingSource } from '../src/cluster/routing.js';
import { UNROUTED } from '../src/contract/routed.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { Lane } from './lane.js';
import type { CatchUpShards } from './ports.js';

export interface CatchUpDeps {
  store: CatchUpShards;
  routing: RoutingSource;
  lane: Lane;
  logger: Logger;
  pollMs?: number;
  /** Records per transaction. */
  batch?: number;
}

export interface RunningCatchUp {
  stop(): Promise<void>;
  /** Resolves after a complete pass (tests). */
  pass(): Promise<void>;
}

export function startCatchUp(deps: CatchUpDeps): RunningCatchUp {
  const { logger, pollMs = 1000 } = deps;
  let caughtUp: { epoch: number; map: FineToExpert } | undefined;
  let current: Promise<void> = Promise.resolve();
  const runPass = () =>
    (current = (async () => {
      const routing = deps.routing.current();
      if (!routing) return;
      const pending = deps.store.unroutedCount() > 0;
      if (!pending && routing.epoch === caughtUp?.epoch) return;
      const map = fineToExpertOf(routing.model);
      await catchUpPass(deps, routing, caughtUp?.map, map);
      caughtUp = { epoch: routing.epoch, map };
    })().catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'catch-up pass failed; retrying')));
  const subscription: Subscription = interval(pollMs)
    .pipe(startWith(0), exhaustMap(() => runPass()))
    .subscribe();
  return {
    async stop() {
      subscription.unsubscribe();
      await current;
    },
    async pass() {
      await current;
      await runPass();
    },
  };
}

/** One pass with one epoch: unrouted records first, then the records the epoch moves to another expert. */
export async function catchUpPass({ store, lane, logger, routing: source, batch = 2000 }: CatchUpDeps, routing: Routing, before: FineToExpert | undefined, after: FineToExpert): Promise<void> {
  const { epoch } = routing;
  let routed = 0;
  while (store.unroutedCount() > 0) {
    const n = await lane.run(() =>
      store.routeStored(batch, (embeddings) => {
        // The newest routing at each batch: the source disposes an older one when an epoch is published
        // (the controller refines right after the bootstrap), and any epoch's route is a valid one.
        const now = source.current() ?? routing;
        const flat = new Float32Array(embeddings.length * now.model.dim);
        embeddings.forEach((e, i) => flat.set(e, i * now.model.dim));
        return now.route(flat);
      }),
    );
    if (n === 0) break;
    routed += n;
  }
  if (routed) logger.info({ routed, epoch }, 'routed records stored before the first epoch');

  const experts = expertsToRescan(before, after, store.expertStats().filter((s) => s.records > 0 && s.expert !== UNROUTED).map((s) => s.expert));
  let moved = 0;
  for (const expert of experts) {
    for (let fromSeq = 0; ; ) {
      const n = await lane.run(async () => {
        const records = [...store.read(expert, { fromSeq, limit: batch })];
        if (records.length === 0) return 0;
        fromSeq = records[records.length - 1]!.seq + 1;
        const entries = records.flatMap(({ record }) => {
          const next = record.route && remapRoute(record.route, after, epoch);
          return next && next !== record.route ? [{ id: record.id, route: next }] : [];
        });
        if (entries.length) moved += await store.relocate(entries);
        return records.length;
      });
      if (n === 0) break;
    }
  }
  if (moved) logger.info({ moved, epoch, experts }, 'local records moved to the experts of the current epoch');
}
