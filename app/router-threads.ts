/**
 * Runs the router role in worker threads (pipeline.routerThreads of them, members of one consumer
 * group). A thread that dies is restarted with backoff; ingestion of what it owned resumes from the
 * group's committed offsets, so nothing is lost (its uncommitted chunk is routed again; its open
 * transaction, which the restarted thread's producer aborts, is never seen: ARCHITECTURE.md section 4).
 */
import { Worker } from 'node:worker_threads';
// The router threads decode images with sharp: loaded here too, its native libraries stay open for the
// process's life, so a thread that exits (or is restarted) cannot unload them under the others (glibc).
import 'sharp';
import type { Config } from '../src/config.js';
import type { CacheLookups } from '../src/embed/cache.js';
import { EnvironmentError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { StageHealth } from '../streams/health.js';
import type { RunningStage, StageOptions } from '../streams/stage.js';
import type { ToParent, ToWorker } from './router-worker.js';

const WORKER_URL = new URL('./router-worker.js', import.meta.url);
const STOP_TIMEOUT_MS = 60_000;

export interface RouterThreadsOptions {
  config: Config;
  logger: Logger;
  count: number;
  onChunk?: StageOptions['onChunk'];
  onCacheLookups?: (lookups: CacheLookups) => void;
}

export async function startRouterThreads({ config, logger, count, onChunk, onCacheLookups }: RouterThreadsOptions): Promise<RunningStage> {
  let stopping = false;
  const threads = new Map<number, Worker>();
  const health = new Map<number, StageHealth>();
  const setHealth = (index: number, state: StageHealth['state'], error?: string) =>
    health.set(index, { stage: `router-${index}`, state, since: Date.now(), restarts: 0, ...(error ? { error } : {}) });

  const spawnThread = (index: number, attempt = 0): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(WORKER_URL, { workerData: { config, index } });
      threads.set(index, worker);
      let ready = false;
      worker.on('message', (m: ToParent) => {
        if (m.type === 'chunk') onChunk?.(m.info);
        else if (m.type === 'cache') onCacheLookups?.(m.lookups);
        else if (m.type === 'health') health.set(index, { ...m.health, stage: `router-${index}` });
        else if (m.type === 'ready') {
          ready = true;
          resolve();
        } else if (m.type === 'failed') {
          logger.error({ thread: index, err: m.error }, 'router thread failed to start');
          if (!ready) reject(new EnvironmentError(`router thread ${index} failed to start: ${m.error}`));
        }
      });
      worker.on('error', (err) => logger.error({ thread: index, err: err.message }, 'router thread crashed'));
      worker.on('exit', (code) => {
        threads.delete(index);
        if (stopping || !ready) return;
        setHealth(index, 'restarting', `thread exited with code ${code}`);
        const delay = Math.min(30_000, 500 * 2 ** attempt);
        logger.warn({ thread: index, code, restartInMs: delay }, 'router thread exited; restarting');
        setTimeout(() => {
          if (!stopping) spawnThread(index, attempt + 1).catch((err: unknown) => logger.error({ thread: index, err: String(err) }, 'router thread restart failed'));
        }, delay).unref();
      });
    });

  for (let i = 0; i < count; i++) setHealth(i, 'starting');
  await Promise.all(Array.from({ length: count }, (_, i) => spawnThread(i)));
  logger.info({ threads: count }, 'router threads started');
  return {
    async stop() {
      stopping = true;
      await Promise.all(
        [...threads.values()].map(
          (worker) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => void worker.terminate(), STOP_TIMEOUT_MS);
              worker.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              worker.postMessage({ type: 'stop' } satisfies ToWorker);
            }),
        ),
      );
      for (const i of health.keys()) setHealth(i, 'stopped');
    },
    health: () => [...health.values()],
  };
}
