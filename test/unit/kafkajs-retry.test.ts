/**
 * kafkajs 2.2.4's producer retry, as patched by patches/kafkajs+2.2.4.patch (applied by `npm ci`
 * through patch-package). Unpatched, `sendMessages` remembers answers per BROKER across retries: when
 * one broker answers NOT_LEADER and the refreshed metadata moves that partition to a broker that has
 * already answered for its own partitions, the retry skips that broker, so the moved partition's
 * messages are never sent and the send resolves as if they were. In a chunk transaction the input
 * offset then commits with part of the chunk missing (pairs lost around a broker restart). The patch
 * remembers answers per PARTITION and resends every unanswered one to its current leader. This test
 * fails if the patch is not applied.
 */
import { createRequire } from 'node:module';
import { describe, expect, test } from 'vitest';

const require = createRequire(import.meta.url);
type Produced = { topic: string; partitions: { partition: number; messages: { value: string }[] }[] }[];
type SendMessages = (args: { acks: number; timeout?: number; topicMessages: { topic: string; messages: { value: string; partition: number }[] }[] }) => Promise<{ topicName: string; partition: number }[]>;

const createSendMessages = require('kafkajs/src/producer/sendMessages.js') as (deps: unknown) => SendMessages;
const createRetry = require('kafkajs/src/retry/index.js') as (opts: unknown) => unknown;
const { DefaultPartitioner } = require('kafkajs/src/producer/partitioners/index.js') as { DefaultPartitioner: () => unknown };
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode: (code: number) => Error };

const NOT_LEADER_FOR_PARTITION = 6;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A cluster of brokers 1-3 whose partition leaders change on `refreshMetadata` to `after`; a broker
 * in `failOnce` answers its first produce with NOT_LEADER_FOR_PARTITION. Records what was written.
 */
function fakeCluster(before: Record<number, number>, after: Record<number, number>, failOnce: Set<number>) {
  let leaders = before;
  const written: { broker: number; partition: number; values: string[] }[] = [];
  const brokers = new Map<number, unknown>();
  const brokerOf = (nodeId: number) => {
    if (!brokers.has(nodeId)) {
      brokers.set(nodeId, {
        nodeId,
        async produce({ topicData }: { topicData: Produced }) {
          if (failOnce.delete(nodeId)) throw createErrorFromCode(NOT_LEADER_FOR_PARTITION);
          for (const { partitions } of topicData) for (const p of partitions) written.push({ broker: nodeId, partition: p.partition, values: p.messages.map((m) => m.value) });
          return { topics: topicData.map(({ topic, partitions }) => ({ topicName: topic, partitions: partitions.map((p) => ({ partition: p.partition, errorCode: 0, baseOffset: '0' })) })) };
        },
      });
    }
    return brokers.get(nodeId);
  };
  const cluster = {
    async addMultipleTargetTopics() {},
    async refreshMetadataIfNecessary() {},
    async refreshMetadata() {
      leaders = after;
    },
    isConnected: () => true,
    removeBroker() {},
    findTopicPartitionMetadata: () => Object.entries(leaders).map(([partitionId, leader]) => ({ partitionId: Number(partitionId), leader })),
    findLeaderForPartitions(_topic: string, partitions: string[]) {
      const out: Record<number, number[]> = {};
      for (const p of partitions.map(Number)) (out[leaders[p]!] ??= []).push(p);
      return out;
    },
    findBroker: async ({ nodeId }: { nodeId: string | number }) => brokerOf(Number(nodeId)),
  };
  return { cluster, written };
}

const eosManager = {
  isTransactional: () => false,
  acquireBrokerLock: async () => {},
  releaseBrokerLock: async () => {},
  addPartitionsToTransaction: async () => {},
  getSequence: () => 0,
  updateSequence() {},
  getProducerId: () => -1,
  getProducerEpoch: () => 0,
  getTransactionalId: () => undefined,
};

function sender(cluster: unknown): SendMessages {
  return createSendMessages({ logger: silent, cluster, partitioner: DefaultPartitioner(), eosManager, retrier: createRetry({ retries: 3, initialRetryTime: 1, maxRetryTime: 5 }) });
}

const messages = (partitions: number[]) => partitions.map((partition) => ({ partition, value: `m${partition}` }));

describe('kafkajs producer retries (patched)', () => {
  test('a partition whose leader moved to a broker that already answered is still sent', async () => {
    // Broker 2 led partitions 2 and 3 and stops leading; partition 2 moves to broker 1, which answered
    // for 0 and 1 in the first attempt, and 3 moves to broker 3.
    const { cluster, written } = fakeCluster({ 0: 1, 1: 1, 2: 2, 3: 2 }, { 0: 1, 1: 1, 2: 1, 3: 3 }, new Set([2]));
    const answers = await sender(cluster)({ acks: -1, topicMessages: [{ topic: 'routed', messages: messages([0, 1, 2, 3]) }] });

    expect(written.map((w) => w.partition).sort()).toEqual([0, 1, 2, 3]);
    expect(written.find((w) => w.partition === 2)?.broker).toBe(1);
    expect(answers.map((a) => a.partition).sort()).toEqual([0, 1, 2, 3]);
  });

  test('partitions that were answered are not sent again', async () => {
    const { cluster, written } = fakeCluster({ 0: 1, 1: 2 }, { 0: 1, 1: 3 }, new Set([2]));
    await sender(cluster)({ acks: -1, topicMessages: [{ topic: 'routed', messages: messages([0, 1]) }] });
    expect(written.map((w) => `${w.partition}@${w.broker}`).sort()).toEqual(['0@1', '1@3']);
  });
});
