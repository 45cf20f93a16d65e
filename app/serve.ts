/** `modestream serve`: the snapshot routes alone over HTTP, for evaluators, without the rest of an instance. */
import { snapshotsDirOf, type Config } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import { createSnapshotStore } from '../state/snapshots.js';
import { startHttpServer, type RunningHttpServer } from './http.js';

export async function startSnapshotServer(config: Config, logger: Logger): Promise<RunningHttpServer> {
  return startHttpServer({ host: config.http.host, port: config.http.port, logger, snapshots: createSnapshotStore({ dir: snapshotsDirOf(config), keep: config.snapshots.keep }) });
}
