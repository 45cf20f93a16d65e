/**
 * On a node with the http role, a new ensemble snapshot is assembled here when
 *   - a model version trained on another node arrives (applied by app/model-replica.ts), so every such
 *     node serves the cluster's newest experts; versions arriving together (a catch-up at start) make
 *     one snapshot, not one each;
 *   - an epoch brings an expert the served snapshot lacks (drift spawned it, on this node's controller or
 *     another's): the new expert is served with the seed's weights until it is trained (ARCHITECTURE.md
 *     section 3), so a pulled snapshot always routes to every expert of the newest epoch. Epochs that
 *     only move centers (online refinement) do not count: a snapshot per refinement would be churn.
 */
import { Subject, concatMap, debounceTime, type Subscription } from 'rxjs';
import { snapshotsDirOf, type Config } from '../src/config.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { createSnapshotStore } from '../state/snapshots.js';
import { publishSnapshot } from '../training/snapshot.js';
import type { Core } from './core.js';
import type { ModelRelease } from './models-log.js';
import type { Telemetry } from './telemetry.js';

export interface SnapshotAssembler {
  applied(release: ModelRelease): void;
  /** Stops listening and waits for the snapshot being written. */
  stop(): Promise<void>;
}

export function createSnapshotAssembler({ config, core, logger, telemetry, quietMs = 1000, epochPollMs = 2000 }: { config: Config; core: Core; logger: Logger; telemetry: Telemetry; quietMs?: number; epochPollMs?: number }): SnapshotAssembler {
  const reasons = new Subject<string>();
  let writing: Promise<void> = Promise.resolve();
  const subscription: Subscription = reasons
    .pipe(
      debounceTime(quietMs),
      concatMap((reason) =>
        (writing = publishSnapshot({ config, core }).then(
          (manifest) => telemetry.emit({ type: 'event', kind: 'snapshot', message: `snapshot v${manifest.version} assembled after ${reason} (epoch ${manifest.centroids.epoch}, ${manifest.experts.length} experts)` }),
          // No seed or epoch yet is normal early on; the next version tries again.
          (err: unknown) => logger.warn({ err: errorMessage(err) }, 'no snapshot assembled'),
        )),
      ),
    )
    .subscribe();

  const snapshots = createSnapshotStore({ dir: snapshotsDirOf(config), keep: config.snapshots.keep });
  let checkedEpoch: number | undefined;
  const checkEpoch = async () => {
    const model = core.centroids.latest();
    if (!model || model.epoch === checkedEpoch) return;
    const version = await snapshots.latest();
    const served = version === undefined ? undefined : (await snapshots.manifest(version))?.manifest;
    // Before the first snapshot there is nothing to complete: training publishes that one.
    if (!served) return;
    checkedEpoch = model.epoch;
    const missing = model.experts.filter((e) => !served.experts.some((x) => x.id === e));
    if (missing.length) reasons.next(`epoch ${model.epoch} brought expert${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  };
  const poll = setInterval(() => void checkEpoch().catch((err: unknown) => logger.debug({ err: errorMessage(err) }, 'snapshot epoch check failed')), epochPollMs);
  poll.unref();

  return {
    applied: (release: ModelRelease) => reasons.next(`${release.name} v${release.info.version} arrived from the models topic`),
    async stop() {
      clearInterval(poll);
      subscription.unsubscribe();
      await writing;
    },
  };
}
