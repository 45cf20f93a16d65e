/**
 * The model replica on a real broker and real LMDB stores: a version registered on one node reaches
 * another node's store through the models topic, and a node with an empty state dir gets every model's
 * newest version back from the (compacted) topic at start.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, test } from 'vitest';
import { startModelReplica, type ModelReplica } from '../../app/model-replica.js';
import { ConfigSchema } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { createModelStore, expertName, type ModelStore } from '../../state/models.js';
import { createKafka, createProducer, ensureTopics } from '../../streams/kafka.js';
import { clusterTopics } from '../../app/roles/registry.js';
import { freshStateEnvs } from '../support/state-env.js';
import { waitFor } from '../support/waits.js';

const freshEnv = freshStateEnvs('modestream-models-');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const version = (v: number) => ({ version: v, createdAt: 1_700_000_000_000 + v, steps: 10 * v, loss: 2 / v, records: 100 * v, backend: 'wasm', samplesPerSecond: 500, epoch: 1 });
/** Weights bigger than one chunk, so reassembly across messages is exercised. */
const weights = (v: number) => new Uint8Array(1_300_000).map((_, i) => (i * 31 + v) & 255);

describe('model replica', () => {
  test('a version trained on node A is applied on node B; an empty node C gets the newest versions from the topic', async () => {
    const tag = randomUUID().slice(0, 8);
    const config = ConfigSchema.parse({ kafka: { brokers: inject('brokers').split(',') }, topics: { models: `t${tag}.models`, control: `t${tag}.control`, leader: `t${tag}.leader`, nodes: `t${tag}.nodes` } });
    const kafka = createKafka({ settings: config.kafka, logger: silentLogger });
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics({ admin, topics: clusterTopics(config), settings: config.topics, logger: silentLogger });
    const producer = createProducer(kafka);
    await producer.connect();
    cleanups.push(async () => {
      await producer.disconnect();
      await admin.disconnect();
    });

    const node = async (): Promise<{ models: ModelStore; replica: ModelReplica; applied: string[] }> => {
      const models = createModelStore({ env: freshEnv() });
      const applied: string[] = [];
      const replica = await startModelReplica({ config, kafka, admin, producer, models, logger: silentLogger, onApplied: (r) => applied.push(`${r.name} v${r.info.version}`) });
      cleanups.push(() => replica.stop());
      await replica.caughtUp();
      return { models, replica, applied };
    };

    const a = await node();
    const b = await node();
    for (const v of [1, 2]) {
      await a.models.writeVersion(expertName(3), v, { modelJson: `{"v":${v}}`, weights: weights(v) });
      await a.models.register(expertName(3), version(v));
      await a.replica.publish(expertName(3), v);
    }
    await waitFor('node B to apply both versions', () => b.models.versions(expertName(3)).length === 2, { timeoutMs: 30_000 });
    expect(b.models.versions(expertName(3))).toEqual([version(1), version(2)]);
    const read = await b.models.readVersion(expertName(3), 2);
    expect(read.modelJson).toBe('{"v":2}');
    expect(Buffer.from(read.weights).equals(Buffer.from(weights(2)))).toBe(true);
    expect(b.applied).toEqual(['expert-3 v1', 'expert-3 v2']);
    // A's own publications came back to it and changed nothing.
    expect(a.applied).toEqual([]);
    expect(a.models.versions(expertName(3))).toHaveLength(2);

    // A node with an empty state dir: caughtUp() resolves after what the topic held at start is applied.
    const c = await node();
    expect(c.models.latest(expertName(3))).toEqual(version(2));
    expect(Buffer.from((await c.models.readVersion(expertName(3), 2)).weights).equals(Buffer.from(weights(2)))).toBe(true);
  }, 120_000);
});

describe('model store', () => {
  test('a version directory left by a writer killed before registering is replaced; a registered one is never overwritten', async () => {
    const models = createModelStore({ env: freshEnv() });
    // What a job killed between writeVersion and register leaves: the directory, no registry entry.
    await models.writeVersion(expertName(1), 1, { modelJson: '{"torn":true}', weights: weights(7) });
    expect(models.latest(expertName(1))).toBeUndefined();
    // The retried job publishes the same version number again.
    await models.writeVersion(expertName(1), 1, { modelJson: '{"v":1}', weights: weights(1) });
    await models.register(expertName(1), version(1));
    const read = await models.readVersion(expertName(1), 1);
    expect(read.modelJson).toBe('{"v":1}');
    expect(Buffer.from(read.weights).equals(Buffer.from(weights(1)))).toBe(true);
    await expect(models.writeVersion(expertName(1), 1, { modelJson: '{"v":"other"}', weights: weights(2) })).rejects.toThrow(/exists already/);
    expect((await models.readVersion(expertName(1), 1)).modelJson).toBe('{"v":1}');
  });
});
