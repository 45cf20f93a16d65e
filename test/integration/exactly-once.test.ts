/**
 * The router's exactly-once publish (pipeline.exactlyOnce), for real: node A (no centroid epoch in its
 * state dir, so it publishes pairs 'unrouted' to a partition chosen by id hash) sends a chunk and dies
 * before committing its input offset (MODESTREAM_TEST_CRASH_AFTER_SEND: exit 137 between send and
 * commit). Node B (another state dir, holding epoch 1) gets the redelivered chunk and routes it to
 * expert mod P: other partitions. A read-committed reader of the routed topic (as the sharders are) must
 * then see each pair exactly once, routed by B. With exactlyOnce off, A's records stay visible too:
 * the same pair in two partitions, owned by two nodes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { ConfigSchema } from '../../src/config.js';
import { decodeRouted, type RoutedRecord } from '../../src/contract/routed.js';
import { createHashedEmbedder } from '../../src/embed/hashed.js';
import { initBackend } from '../../src/tensor/backend.js';
import { createCentroidStore } from '../../state/centroids.js';
import { openStateEnv } from '../../state/env.js';
import { makePairs } from '../support/fixtures.js';
import { runCli, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { waitFor } from '../support/waits.js';
import { bootstrapModel } from '../unit/stream-fakes.js';

const brokers = inject('brokers');
const PAIRS = 60;
const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING });
let admin: Admin;
/** Node B's state dir: epoch 1, bootstrapped in the processes' embedding space (hashed, defaults). */
let routedStateDir: string;

beforeAll(async () => {
  await initBackend('wasm');
  const settings = ConfigSchema.parse({ embedder: { kind: 'hashed' } }).embedder;
  if (settings.kind !== 'hashed') throw new Error('expected the hashed embedder');
  const embedder = createHashedEmbedder(settings);
  const model = await bootstrapModel(embedder, 200);
  embedder.dispose();
  routedStateDir = mkdtempSync(join(tmpdir(), 'modestream-eos-b-'));
  const env = openStateEnv({ dir: routedStateDir });
  await createCentroidStore({ env }).publish(model);
  await env.close();
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  await admin?.disconnect();
  rmSync(routedStateDir, { recursive: true, force: true });
});

/** Every record a read-committed consumer (kafkajs's default, like the sharder's) sees, once B's routed ones are all there. */
async function readCommitted(topic: string): Promise<RoutedRecord[]> {
  const consumer = kafka.consumer({ groupId: `eos-reader-${Date.now()}` });
  const records: RoutedRecord[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const decoded = decodeRouted(message.value);
      if (!decoded.ok) throw new Error(decoded.detail);
      records.push(decoded.record);
    },
  });
  try {
    // B's transaction becomes readable once A's open one is aborted (transaction timeout + the broker's check).
    await waitFor(`${PAIRS} routed records in ${topic}`, () => records.filter((r) => r.route !== null).length >= PAIRS, { timeoutMs: 90_000 });
    // A's records, where visible, precede B's in their partitions; a moment more lets every partition catch up.
    await new Promise((r) => setTimeout(r, 3000));
  } finally {
    await consumer.disconnect();
  }
  return records;
}

/**
 * `modestream run`, started again if it exits at once because the brand-new topics have no leader yet
 * ("not the leader for that topic-partition" on a fresh single-node broker): a start-up race, not this test's subject.
 */
async function startNode(env: Record<string, string>, extra: Record<string, string>): Promise<Processor> {
  for (let attempt = 1; ; attempt++) {
    const p = runCli(['run'], { ...env, ...extra });
    try {
      await p.waitForLog('modestream running', 120_000);
      return p;
    } catch (err) {
      if (attempt >= 3 || !/not the leader/.test(p.output())) throw err;
    }
  }
}

async function crashThenRedeliver(exactlyOnce: boolean): Promise<{ records: RoutedRecord[]; ids: string[] }> {
  const deployment = testDeployment(brokers, {
    MODESTREAM_ROLES: 'router',
    // Inline router: the crash hook's exit takes the whole process down, as kill -9 would.
    MODESTREAM_PIPELINE__ROUTER_THREADS: '0',
    MODESTREAM_PIPELINE__EXACTLY_ONCE: String(exactlyOnce),
    MODESTREAM_TOPICS__PAIRS_PARTITIONS: '1',
    MODESTREAM_TOPICS__ROUTED_PARTITIONS: '4',
    MODESTREAM_CONTROLLER__SEED_SAMPLE__RATE: '0',
    MODESTREAM_KAFKA__TRANSACTION_TIMEOUT_MS: '3000',
  });
  const pairs = makePairs(PAIRS, { seed: 21, prefix: `eos-${exactlyOnce}` });
  let b: Processor | undefined;
  try {
    const a = await startNode(deployment.env, { MODESTREAM_NODE__ID: 'node-a', MODESTREAM_TEST_CRASH_AFTER_SEND: '1' });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: deployment.topics.pairs, acks: -1, messages: pairs.map(({ key, value }) => ({ key, value })) });
    await producer.disconnect();
    const { code } = await a.exited;
    expect(code, a.output().slice(-3000)).toBe(137);
    // A committed nothing: the whole chunk is redelivered to B.
    const [afterA] = await admin.fetchOffsets({ groupId: deployment.groups.router, topics: [deployment.topics.pairs] });
    expect(afterA!.partitions.map((p) => p.offset)).toEqual(['-1']);

    b = await startNode(deployment.env, { MODESTREAM_NODE__ID: 'node-b', MODESTREAM_STATE_DIR: routedStateDir });
    await waitFor(
      'node B to commit the redelivered chunk',
      async () => {
        const [offsets] = await admin.fetchOffsets({ groupId: deployment.groups.router, topics: [deployment.topics.pairs] });
        return offsets!.partitions[0]!.offset === String(PAIRS);
      },
      { timeoutMs: 90_000 },
    );
    return { records: await readCommitted(deployment.topics.routed), ids: pairs.map((p) => p.id) };
  } finally {
    await stopProcessor(b);
    rmSync(deployment.stateDir, { recursive: true, force: true });
  }
}

describe('exactly-once publish (router)', () => {
  test('a chunk sent and not committed by a dead node is invisible; its redelivery, routed differently, is seen once', async () => {
    const { records, ids } = await crashThenRedeliver(true);
    expect(records.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(records.every((r) => r.route?.epoch === 1)).toBe(true);
  });

  test('with pipeline.exactlyOnce=false the same crash leaves both routings visible (what the transaction prevents)', async () => {
    const { records, ids } = await crashThenRedeliver(false);
    expect(new Set(records.map((r) => r.id))).toEqual(new Set(ids));
    expect(records.filter((r) => r.route === null)).toHaveLength(PAIRS);
    expect(records).toHaveLength(2 * PAIRS);
  });
});
