/**
 * What the Kafka benchmarks share: a throwaway local broker, waiting on consumer-group progress, and
 * number formatting. Each benchmark keeps its own phases; only the plumbing lives here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { startLocalKafka, stopLocalKafka } from '../deploy/kafka/local-kafka.js';

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
