/**
 * On a node with the http role, a model version trained on another node (applied by app/model-replica.ts)
 * is followed by a new ensemble snapshot assembled here, so every such node serves the cluster's newest
 * experts. Versions arriving together (a catch-up at start) make one snapshot, not one each.
 */
import { Subject, concatMap, debounceTime, type Subscription } from 'rxjs';
import type { Config } from '../src/config.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { ModelRelease } from './models-log.js';
import { publishSnapshot } from '../training/snapshot.js';
import type { Core } from './core.js';
import type { Telemetry } from './telemetry.js';

export interface SnapshotAssembler {
  applied(release: ModelRelease): void;
  /** Stops listening and waits for the snapshot being written. */
  stop(): Promise<void>;
}

export function createSnapshotAssembler({ config, core, logger, telemetry, quietMs = 1000 }: { config: Config; core: Core; logger: Logger; telemetry: Telemetry; quietMs?: number }): SnapshotAssembler {
  const releases = new Subject<ModelRelease>();
  let writing: Promise<void> = Promise.resolve();
  const subscription: Subscription = releases
    .pipe(
      debounceTime(quietMs),
      concatMap((last) =>
        (writing = publishSnapshot({ config, core }).then(
          (manifest) => telemetry.emit({ type: 'event', kind: 'snapshot', message: `snapshot v${manifest.version} assembled after ${last.name} v${last.info.version} arrived from the models topic (epoch ${manifest.centroids.epoch}, ${manifest.experts.length} experts)` }),
          // No seed or epoch yet is normal early on; the next version tries again.
          (err: unknown) => logger.warn({ err: errorMessage(err) }, 'no snapshot assembled'),
        )),
      ),
    )
    .subscribe();
  return {
    applied: (release) => releases.next(release),
    async stop() {
      subscription.unsubscribe();
      await writing;
    },
  };
}
