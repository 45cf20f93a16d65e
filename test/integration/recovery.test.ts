/**
 * Nothing lost, nothing duplicated, for real: processes killed with SIGKILL mid-stream, the broker
 * stopped and started under a running processor, and a consumer group that gains and loses a member.
 * After each, every produced pair id is stored in exactly one shard exactly once.
 */
import { rmSync } from 'node:fs';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { describe, expect, inject, test } from 'vitest';
import { startLocalKafka, stopLocalKafka } from '../../deploy/kafka/local-kafka.js';
import { createShardStore } from '../../state/shards.js';
import { openStateEnv } from '../../state/env.js';
import { makePairs, type FixturePair } from '../support/fixtures.js';
import { startProcessor, testDeployment, type Processor, type TestDeployment } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Random moments, but reproducible from the seed printed on failure. */
const seed = Number(process.env.MODESTREAM_TEST_SEED ?? Date.now() % 100_000);
let state = seed;
const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 4294967296);

function kafkaClient() {
  return new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 300, maxRetryTime: 3000 } });
}

/** Sends all pairs in batches; a batch that fails (broker down) is sent again, so input may repeat. */
async function produceAll(producer: Producer, topic: string, pairs: FixturePair[], batch = 1000): Promise<void> {
  for (let i = 0; i < pairs.length; i += batch) {
    const messages = pairs.slice(i, i + batch).map(({ key, value }) => ({ key, value }));
    for (let attempt = 0; ; attempt++) {
      try {
        await producer.send({ topic, acks: -1, messages });
        break;
      } catch (err) {
        if (attempt > 60) throw err;
        await sleep(1000);
      }
    }
  }
}

/** Waits until all `pairs` are stored and routed, then checks each is stored exactly once. */
async function expectExactlyOnce(deployment: TestDeployment, pairs: FixturePair[], timeoutMs = 300_000): Promise<void> {
  const env = openStateEnv({ dir: deployment.stateDir, readOnly: true });
  const store = createShardStore({ env, reservoirSize: 0 });
  try {
    await waitFor(`${pairs.length} pairs stored and routed`, () => store.totalRecords() >= pairs.length && store.unroutedCount() === 0, { timeoutMs });
    const audit = store.audit();
    expect(audit.problems, `seed ${seed}`).toEqual([]);
    expect(audit.ids, `seed ${seed}`).toBe(pairs.length);
    const stored = new Map([...store.ids()].map((r) => [r.id, r]));
    const missing = pairs.filter((p) => !stored.has(p.id)).map((p) => p.id);
    expect(missing.slice(0, 10), `seed ${seed}: ${missing.length} missing`).toEqual([]);
    expect([...stored.values()].every((r) => r.expert >= 0)).toBe(true);
  } finally {
    await env.close();
  }
}

/** A processor's warnings and errors, then its last lines: what a stalled stream's failure message needs. */
function troubles(processor: Processor): string {
  const lines = processor.output().split('\n').filter(Boolean);
  const level = (l: string) => Number(/"level":(\d+)/.exec(l)?.[1] ?? 0);
  return [...lines.filter((l) => level(l) >= 40).slice(-30), '...', ...lines.slice(-15)].map((l) => l.slice(0, 600)).join('\n');
}

/** Records on the input topic (the sum of its partitions' end offsets). */
async function producedCount(deployment: TestDeployment): Promise<number> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(deployment.topics.pairs)).reduce((sum, p) => sum + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
}

function storedCount(deployment: TestDeployment): number {
  const env = openStateEnv({ dir: deployment.stateDir, readOnly: true });
  try {
    return createShardStore({ env, reservoirSize: 0 }).totalRecords();
  } finally {
    void env.close();
  }
}

describe('recovery', () => {
  test('kill -9 the processor three times while 50k pairs stream in', async () => {
    const deployment = testDeployment(brokers);
    const pairs = makePairs(50_000, { seed: 11, prefix: 'crash' });
    const producer = kafkaClient().producer();
    await producer.connect();
    let processor: Processor = await startProcessor(deployment);
    try {
      const producing = produceAll(producer, deployment.topics.pairs, pairs, 500);
      for (let kill = 0; kill < 3; kill++) {
        // Moments spread over the stream (a random point in each of 15-30%, 40-55%, 65-80% stored), so
        // every kill lands mid-stream whatever this machine's speed.
        const at = Math.round(pairs.length * (0.15 + 0.25 * kill + 0.15 * random()));
        // Read from the running processor itself (status.json), as ops would watch it.
        const url = /"status":"(http:\/\/[^"]+)\/status\.json"/.exec(processor.output())?.[1];
        const stored = async () => ((await (await fetch(`${url}/status.json`)).json()) as { totalRecords: number }).totalRecords;
        const reached = async () => {
          const n = await stored();
          return n >= at ? n : undefined;
        };
        const before = await waitFor(`${at} pairs stored`, reached, { timeoutMs: 120_000, intervalMs: 100 }).catch(async (err: unknown) => {
          throw new Error(`${String(err)}; ${storedCount(deployment)} stored, ${await producedCount(deployment)} produced; the processor's warnings and last lines:\n${troubles(processor)}`);
        });
        processor.kill('SIGKILL');
        const { signal } = await processor.exited;
        expect(signal).toBe('SIGKILL');
        const t0 = Date.now();
        processor = await startProcessor(deployment);
        console.info(`[seed ${seed}] kill ${kill + 1}: SIGKILL with ${before} pairs stored; restarted in ${Date.now() - t0} ms`);
      }
      const t1 = Date.now();
      await producing;
      await expectExactlyOnce(deployment, pairs);
      console.info(`[seed ${seed}] produced and checked ${Date.now() - t1} ms after the last restart`);
    } finally {
      processor.kill('SIGTERM');
      await processor.exited;
      await producer.disconnect();
      rmSync(deployment.stateDir, { recursive: true, force: true });
    }
  });

  test('a broker stop/start mid-stream: the processor recovers by itself', async () => {
    const dataDir = inject('brokerDataDir');
    const port = inject('brokerPort');
    const controllerPort = inject('brokerControllerPort');
    if (dataDir === null || port === null || controllerPort === null) {
      console.warn('external broker (MODESTREAM_TEST_BROKERS): cannot restart it, test skipped');
      return;
    }
    const broker = { port, controllerPort, dataDir, heapMb: 512, startTimeoutMs: 180_000 };
    const deployment = testDeployment(brokers);
    const pairs = makePairs(20_000, { seed: 12, prefix: 'restart' });
    const producer = kafkaClient().producer();
    await producer.connect();
    const processor = await startProcessor(deployment);
    try {
      const producing = produceAll(producer, deployment.topics.pairs, pairs, 500);
      await waitFor('some pairs stored before the restart', () => storedCount(deployment) > 2000, { timeoutMs: 120_000 });
      await stopLocalKafka(broker);
      const storedWhileDown = storedCount(deployment);
      await sleep(3000);
      await startLocalKafka(broker);
      console.info(`[broker restart] ${storedWhileDown} pairs stored when the broker went down`);
      await producing;
      await expectExactlyOnce(deployment, pairs);
      expect(processor.child.exitCode).toBeNull();
    } finally {
      processor.kill('SIGTERM');
      await processor.exited;
      await producer.disconnect();
      rmSync(deployment.stateDir, { recursive: true, force: true });
    }
  });

  test('two processors in one group: one joins, one leaves mid-stream', async () => {
    const deployment = testDeployment(brokers);
    const pairs = makePairs(30_000, { seed: 13, prefix: 'group' });
    const producer = kafkaClient().producer();
    await producer.connect();
    const first = await startProcessor(deployment);
    let second: Processor | undefined;
    try {
      const producing = produceAll(producer, deployment.topics.pairs, pairs, 500);
      await waitFor('a first share stored by one member', () => storedCount(deployment) > 3000, { timeoutMs: 120_000 });
      second = await startProcessor(deployment);
      await waitFor('the second member to be assigned partitions', () => second!.output().includes('stage started'), { timeoutMs: 60_000 });
      await sleep(2000 + random() * 3000);
      first.kill('SIGTERM');
      const { code } = await first.exited;
      expect(code).toBe(0);
      await producing;
      await expectExactlyOnce(deployment, pairs);
    } finally {
      first.kill('SIGTERM');
      second?.kill('SIGTERM');
      await Promise.all([first.exited, second?.exited]);
      await producer.disconnect();
      rmSync(deployment.stateDir, { recursive: true, force: true });
    }
  });
});
