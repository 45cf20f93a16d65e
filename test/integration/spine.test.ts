/**
 * The spine end to end against the real broker: pairs produced with kafkajs and with kcat are validated,
 * embedded, routed and stored once each; every invalid message is in the DLQ with its original bytes
 * and a reason; `status --json` agrees with both.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { createShardStore } from '../../state/shards.js';
import { openStateEnv } from '../../state/env.js';
import { makeInvalidMessages, makePairs } from '../support/fixtures.js';
import { readStatus, startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { readTopic } from '../support/topics.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');
const kcat = spawnSync('kcat', ['-V']).status === 0;

describe('spine: produce -> router -> sharder -> LMDB, invalid -> DLQ', () => {
  const deployment = testDeployment(brokers);
  const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  let processor: Processor;

  beforeAll(async () => {
    processor = await startProcessor(deployment);
  });

  afterAll(async () => {
    await stopProcessor(processor);
    rmSync(deployment.stateDir, { recursive: true, force: true });
  });

  test('every valid pair lands once in a shard, every invalid one in the DLQ with a reason', async () => {
    if (!kcat) throw new Error('kcat is not installed (Debian package kcat); .ci/run installs it');
    const viaKafkajs = makePairs(900, { seed: 1, prefix: 'kjs' });
    const viaKcat = makePairs(700, { seed: 2, prefix: 'kcat' });
    const invalidKjs = makeInvalidMessages('kjs-bad');
    const invalidKcat = makeInvalidMessages('kcat-bad').filter((m) => m.key === null);

    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: deployment.topics.pairs, acks: -1, messages: [...viaKafkajs, ...invalidKjs].map(({ key, value }) => ({ key, value })) });
    await producer.disconnect();

    // kcat: one message per line, key and value split at the first tab.
    const lines = [...viaKcat.map((p) => `${p.id}\t${p.value.toString()}`), ...invalidKcat.map((m) => `\t${m.value.toString()}`)];
    execFileSync('kcat', ['-P', '-b', brokers, '-t', deployment.topics.pairs, '-K', '\t', '-X', 'message.max.bytes=1000000'], { input: `${lines.join('\n')}\n` });

    const valid = viaKafkajs.length + viaKcat.length;
    const invalid = invalidKjs.length + invalidKcat.length;

    const env = openStateEnv({ dir: deployment.stateDir, readOnly: true });
    const store = createShardStore({ env, reservoirSize: 0 });
    try {
      // Bootstrap happens after 500 pairs; records stored before it are routed by the catch-up pass.
      await waitFor('all valid pairs routed into expert shards', () => store.totalRecords() === valid && store.unroutedCount() === 0, { timeoutMs: 180_000 });
      const audit = store.audit();
      expect(audit.problems).toEqual([]);
      expect(audit.ids).toBe(valid);
      const stored = new Set([...store.ids()].map((r) => r.id));
      for (const p of [...viaKafkajs, ...viaKcat]) expect(stored.has(p.id), p.id).toBe(true);
    } finally {
      await env.close();
    }

    const dead = await readTopic(kafka, deployment.topics.dlq, invalid, { timeoutMs: 60_000 });
    expect(dead).toHaveLength(invalid);
    const byValue = new Map(dead.map((m) => [m.value.toString('base64'), m]));
    for (const m of [...invalidKjs, ...invalidKcat]) {
      const letter = byValue.get(m.value.toString('base64'));
      expect(letter, `dead letter for ${m.value.toString().slice(0, 60)}`).toBeDefined();
      const headers = letter!.headers;
      expect(String(headers['modestream.error.reason'])).toBe(m.reason);
      expect(String(headers['modestream.error.detail']).length).toBeGreaterThan(5);
      expect(String(headers['modestream.source.topic'])).toBe(deployment.topics.pairs);
      expect(Number(headers['modestream.source.offset'])).toBeGreaterThanOrEqual(0);
    }

    const report = await readStatus(deployment, ['--verify']);
    expect(report.totalRecords).toBe(valid);
    expect(report.experts.reduce((s, e) => s + e.records, 0)).toBe(valid);
    expect(report.experts.map((e) => e.id).sort()).toEqual([0, 1, 2, 3]);
    expect(report.deadLettered).toBe(invalid);
    expect(report.centroids?.epoch).toBeGreaterThanOrEqual(1);
    expect(report.partitions.filter((p) => p.stage === 'router')).toHaveLength(4);
    for (const p of report.partitions) expect(p.lag, `${p.topic}/${p.partition}`).toBe(0);
  });
});
