/**
 * A producer's resend, for real: pairs sent twice to the pairs topic (a crawler retrying a batch) are
 * published once to the routed topic, even when the repeat reaches ANOTHER node whose state dir is
 * empty: that node rebuilds the partition's recent-ids window from the pairs topic before routing
 * (streams/recent-ids.ts), so the repeat cannot reach a second shard through another routing. A pair
 * first rejected and then sent again corrected is routed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { decodeRouted } from '../../src/contract/routed.js';
import { makePairs } from '../support/fixtures.js';
import { startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { readTopic } from '../support/topics.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');
const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING });
let admin: Admin;

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin?.disconnect();
});

async function send(topic: string, messages: { key: Buffer | null; value: Buffer }[]): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
}

/** Whether the router group committed every offset of the pairs topic. */
async function routedAll(topic: string, group: string): Promise<boolean> {
  const ends = await admin.fetchTopicOffsets(topic);
  const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return ends.every((e) => Number(committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? -1) >= Number(e.high));
}

/** The ids in the routed topic as a read-committed consumer (a sharder) sees them; a repeat would show within 2 s. */
async function routedIds(topic: string, expected: number): Promise<string[]> {
  return (await readTopic(kafka, topic, expected, { timeoutMs: 60_000, settleMs: 2000 })).flatMap((m) => {
    const decoded = decodeRouted(m.value);
    return decoded.ok ? [decoded.record.id] : [];
  });
}

describe('repeated pairs', () => {
  test('a resend reaching a node with an empty state dir is dropped; a corrected reject is routed', async () => {
    const deployment = testDeployment(brokers, { MODESTREAM_ROLES: 'router', MODESTREAM_TOPICS__PAIRS_PARTITIONS: '2', MODESTREAM_TOPICS__ROUTED_PARTITIONS: '4' });
    const other = mkdtempSync(join(tmpdir(), 'modestream-repeats-b-'));
    const pairs = makePairs(1200, { seed: 31, prefix: 'repeat' });
    const message = ({ key, value }: { key: Buffer; value: Buffer }) => ({ key, value });
    const rejected = { key: Buffer.from('repeat-fixed'), value: Buffer.from(JSON.stringify({ id: 'repeat-fixed', caption: '   ', image: { pixels: Buffer.alloc(16).toString('base64'), width: 4, height: 4, channels: 1 } })) };
    let a: Processor | undefined;
    let b: Processor | undefined;
    try {
      a = await startProcessor(deployment, { MODESTREAM_NODE__ID: 'node-a' });
      await send(deployment.topics.pairs, [...pairs.slice(0, 1000).map(message), rejected]);
      await waitFor('node A to route the first 1000 pairs', () => routedAll(deployment.topics.pairs, deployment.groups.router), { timeoutMs: 120_000 });
      await stopProcessor(a);
      a = undefined;

      // Node B: same group, an empty state dir. The last 300 pairs again, 200 new ones, the reject corrected.
      b = await startProcessor(deployment, { MODESTREAM_NODE__ID: 'node-b', MODESTREAM_STATE_DIR: other });
      const corrected = { key: rejected.key, value: Buffer.from(rejected.value.toString().replace('"   "', '"a corrected caption"')) };
      await send(deployment.topics.pairs, [...pairs.slice(700, 1000).map(message), ...pairs.slice(1000).map(message), corrected]);
      await waitFor('node B to route what came next', () => routedAll(deployment.topics.pairs, deployment.groups.router), { timeoutMs: 120_000 });
      const rebuilt = b.output().split('\n').filter((l) => l.includes('recent pair ids read back'));
      expect(rebuilt.length, b.output().slice(-3000)).toBeGreaterThanOrEqual(1);

      const ids = await routedIds(deployment.topics.routed, pairs.length + 1);
      const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
      expect(twice.slice(0, 5), `${twice.length} ids published twice`).toEqual([]);
      expect(new Set(ids)).toEqual(new Set([...pairs.map((p) => p.id), 'repeat-fixed']));
      console.info(`[repeats] 300 resent pairs dropped by a node with an empty state dir; windows rebuilt:\n${rebuilt.map((l) => `  ${l.slice(0, 300)}`).join('\n')}`);
    } finally {
      await stopProcessor(a);
      await stopProcessor(b);
      rmSync(deployment.stateDir, { recursive: true, force: true });
      rmSync(other, { recursive: true, force: true });
    }
  });
});
