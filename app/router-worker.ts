/**
 * A router in its own thread: the router's CPU work (validation, embedding, the routing matmul,
 * encoding) runs beside the sharder's instead of taking turns with it on one event loop. The thread
 * holds its own Kafka client, embedder and tensor backend, and reads centroid epochs from the shared
 * LMDB environment. It reports each chunk and its embedding-cache lookups to the parent (metrics) and
 * stops on request.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createRoutingSource } from '../src/cluster/routing.js';
import type { Config } from '../src/config.js';
import { withEmbeddingCache, type CacheLookups } from '../src/embed/cache.js';
import { createEmbedder } from '../src/embed/embedder.js';
import { errorMessage } from '../src/errors.js';
import { initBackend } from '../src/tensor/backend.js';
import { createCentroidStore } from '../state/centroids.js';
import { openStateEnv } from '../state/env.js';
import { connectClient, createKafka, createProducer, partitionCount } from '../streams/kafka.js';
import { createLogger } from './logger.js';
import { startRouterRole } from './roles/stages.js';
import type { StageHealth } from '../streams/health.js';
import type { StageOptions } from '../streams/stage.js';

export type ToParent =
  | { type: 'ready' }
  | { type: 'chunk'; info: Parameters<NonNullable<StageOptions['onChunk']>>[0] }
  | { type: 'cache'; lookups: CacheLookups }
  | { type: 'health'; health: StageHealth }
  | { type: 'stopped' }
  | { type: 'failed'; error: string };
export type ToWorker = { type: 'stop' };

const { config, index } = workerData as { config: Config; index: number };
const port = parentPort!;
const send = (m: ToParent) => port.postMessage(m);
const logger = createLogger(config, 'modestream', { thread: `router-${index}` });

try {
  await initBackend(config.backend);
  const embedder = withEmbeddingCache(await createEmbedder(config.embedder, { modelsDir: config.modelsDir }), {
    entries: config.pipeline.embedCache,
    onLookups: (lookups) => send({ type: 'cache', lookups }),
  });
  const env = openStateEnv({ dir: config.stateDir });
  const routing = createRoutingSource({ centroids: createCentroidStore({ env }), embedder: embedder.fingerprint, logger });
  const kafka = createKafka({ settings: config.kafka, logger: logger.child({ component: 'kafka' }) });
  const admin = kafka.admin();
  await connectClient(admin, config.kafka);
  const routedPartitions = await partitionCount(admin, config.topics.routed);
  await admin.disconnect();
  const producer = createProducer(kafka);
  await connectClient(producer, config.kafka);
  const stage = await startRouterRole({
    config,
    logger,
    kafka,
    producer,
    routing,
    embedder,
    routedPartitions,
    onChunk: (info) => send({ type: 'chunk', info }),
  });
  // The parent answers the probes: tell it whenever the consumer's state changes.
  let reported = '';
  const reportHealth = setInterval(() => {
    const [health] = stage.health();
    if (health && health.state !== reported) {
      reported = health.state;
      send({ type: 'health', health });
    }
  }, 500);
  reportHealth.unref();
  port.on('message', (message: ToWorker) => {
    if (message.type !== 'stop') return;
    clearInterval(reportHealth);
    void (async () => {
      await stage.stop();
      await producer.disconnect();
      routing.dispose();
      embedder.dispose();
      await env.close();
      send({ type: 'stopped' });
      port.close();
    })();
  });
  send({ type: 'ready' });
} catch (err) {
  send({ type: 'failed', error: errorMessage(err) });
  port.close();
}
