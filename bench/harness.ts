/**
 * What the Kafka benchmarks share: a throwaway local broker, waiting on consumer-group progress, and
 * number formatting. Each benchmark keeps its own phases; only the plumbing lives here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { openCore } from '../app/core.js';
import { startLocalKafka, stopLocalKafka } from '../deploy/kafka/local-kafka.js';
import { clusterSample } from '../src/cluster/bootstrap.js';
import type { CentroidModel } from '../src/cluster/model.js';
import type { Config } from '../src/config.js';
import { silentLogger } from '../src/logger.js';
import { createSyntheticFeed } from './synthetic.js';

export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitUntil(done: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await done())) await sleep(100);
}

/** Records a consumer group has committed on a topic, summed over partitions. */
export async function committed(admin: ReturnType<Kafka['admin']>, groupId: string, topic: string): Promise<number> {
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  return (offsets[0]?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
}

export interface BenchBroker {
  brokers: string;
  close(): Promise<void>;
}

/** `--brokers` if given, else a local broker on ports of its own with a temporary data dir. */
export async function benchBroker(existing: string | undefined, port = 19292): Promise<BenchBroker> {
  if (existing) return { brokers: existing, close: async () => undefined };
  const dataDir = mkdtempSync(join(tmpdir(), 'modestream-bench-kafka-'));
  const settings = { port, controllerPort: port + 1, dataDir, heapMb: 768, startTimeoutMs: 180_000 };
  const { bootstrap } = await startLocalKafka(settings);
  return {
    brokers: bootstrap,
    async close() {
      await stopLocalKafka(settings);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Epoch 1 in `config`'s state dir, so routing does its full work from the first record: `count`
 * synthetic captions embedded by the configured embedder and clustered (`seconds`: the clustering).
 */
export async function bootstrapCenters(config: Config, count: number): Promise<{ model: CentroidModel; seconds: number; backend: string }> {
  const core = await openCore(config, silentLogger);
  try {
    const feed = createSyntheticFeed(1, 'boot');
    const captions = Array.from({ length: count }, () => (JSON.parse(feed.next().value.toString()) as { caption: string }).caption);
    const flat = await core.embedder.embed(captions);
    const sample = Array.from({ length: count }, (_, i) => flat.slice(i * core.embedder.dim, (i + 1) * core.embedder.dim));
    const t0 = performance.now();
    const model = await clusterSample({ sample, epoch: 1, settings: config.clustering, embedder: core.embedder.fingerprint });
    const seconds = (performance.now() - t0) / 1000;
    await core.centroids.publish(model);
    return { model, seconds, backend: core.backend.name };
  } finally {
    await core.close();
  }
}
