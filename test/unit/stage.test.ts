/**
 * The stage loop (fetch -> process -> commit) against a fake consumer: the eachBatch handler startStage
 * registers is called with hand-made batches. Checks the order of effects (commit after the chunk's
 * topology completed), skipping of applied messages, and where processing stops (stale partition,
 * stopped consumer, commit refused by a rebalance).
 */
import { concatMap, type OperatorFunction } from 'rxjs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { createStageHealth } from '../../streams/health.js';
import type { InputMessage } from '../../streams/messages.js';
import { startStage, type ChunkOutcome, type StageOptions } from '../../streams/stage.js';
import { fakeBatch, fakeConsumer, kafkaMessage, type FakeConsumer } from './stream-fakes.js';

const TOPIC = 'modestream.routed';
const messages = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => kafkaMessage(from + i));

/** A topology that takes a while (so a commit not waiting for it would show) and logs what it saw. */
function recordingTopology(log: string[]): OperatorFunction<InputMessage[], ChunkOutcome> {
  return concatMap(async (chunk) => {
    await sleep(5);
    log.push(`chunk ${chunk.map((m) => m.offset).join(',')}`);
    return { messages: chunk.length, nextOffset: Number(chunk[chunk.length - 1]!.offset) + 1 };
  });
}

async function start(overrides: Partial<StageOptions> = {}) {
  const fake = fakeConsumer();
  const log: string[] = [];
  fake.onCommit = (offset) => void log.push(`commit ${offset}`);
  const chunks: ChunkOutcome[] = [];
  const stage = await startStage({
    name: 'sharder',
    consumer: fake.consumer,
    topic: TOPIC,
    topology: recordingTopology(log),
    chunkSize: 3,
    logger: silentLogger,
    onChunk: ({ outcome }) => void chunks.push(outcome),
    ...overrides,
  });
  return { fake, log, chunks, stage, handle: fake.eachBatch() };
}

const rebalance = () => Object.assign(new Error('The group is rebalancing, so a rejoin is needed'), { name: 'KafkaJSProtocolError', type: 'REBALANCE_IN_PROGRESS' });
const committed = (fake: FakeConsumer) => fake.commits.map((c) => `${c.topic}/${c.partition}@${c.offset}`);

describe('startStage', () => {
  test('subscribes from the beginning and runs without auto-commit or auto-resolve', async () => {
    const { fake } = await start();
    expect(fake.subscribed).toEqual([{ topics: [TOPIC], fromBeginning: true }]);
    expect(fake.runConfig()).toMatchObject({ autoCommit: false, eachBatchAutoResolve: false });
  });

  test('each chunk is committed, offset = last + 1, only after its topology completed', async () => {
    const { fake, log, chunks, handle } = await start();
    const batch = fakeBatch(TOPIC, 4, messages(0, 7));
    await handle(batch.payload);
    expect(log).toEqual(['chunk 0,1,2', 'commit 3', 'chunk 3,4,5', 'commit 6', 'chunk 6', 'commit 7']);
    expect(committed(fake)).toEqual([`${TOPIC}/4@3`, `${TOPIC}/4@6`, `${TOPIC}/4@7`]);
    expect(batch.resolved).toEqual(['2', '5', '6']);
    expect(batch.heartbeats).toBe(3);
    expect(chunks.map((c) => c.messages)).toEqual([3, 3, 1]);
  });

  test('the last chunk commits past what kafkajs hid at the batch end (transaction markers), so the lag can reach 0', async () => {
    const { fake, log, handle } = await start();
    const batch = fakeBatch(TOPIC, 2, messages(0, 5));
    // Offsets 5 and 6 were commit markers: in the batch's range, not among its messages.
    Object.assign(batch.payload.batch, { lastOffset: () => '6' });
    await handle(batch.payload);
    expect(log).toEqual(['chunk 0,1,2', 'commit 3', 'chunk 3,4', 'commit 7']);
    expect(committed(fake)).toEqual([`${TOPIC}/2@3`, `${TOPIC}/2@7`]);
    expect(batch.resolved).toEqual(['2', '4']);
  });

  test('a topology that committed its offsets in its own transaction is not committed again', async () => {
    const log: string[] = [];
    const transactional: OperatorFunction<InputMessage[], ChunkOutcome> = concatMap(async (chunk) => {
      log.push(`transaction ${chunk.map((m) => m.offset).join(',')}`);
      return { messages: chunk.length, nextOffset: Number(chunk[chunk.length - 1]!.offset) + 1, offsetsCommitted: true };
    });
    const { fake, chunks, handle } = await start({ topology: transactional });
    const batch = fakeBatch(TOPIC, 0, messages(0, 4));
    await handle(batch.payload);
    expect(log).toEqual(['transaction 0,1,2', 'transaction 3']);
    expect(fake.commits).toEqual([]);
    // kafkajs still learns how far the partition was processed, and the chunks are reported.
    expect(batch.resolved).toEqual(['2', '3']);
    expect(chunks).toHaveLength(2);
  });

  test('messages below appliedUpTo are skipped; the rest is processed from there', async () => {
    const { fake, log, handle } = await start({ appliedUpTo: (topic, partition) => (topic === TOPIC && partition === 1 ? 4 : undefined) });
    await handle(fakeBatch(TOPIC, 1, messages(0, 7)).payload);
    expect(log).toEqual(['chunk 4,5,6', 'commit 7']);
    expect(committed(fake)).toEqual([`${TOPIC}/1@7`]);
  });

  test('a batch that was applied entirely moves the committed offset up to what is durable, without processing', async () => {
    const { fake, log, chunks, handle } = await start({ appliedUpTo: () => 10 });
    await handle(fakeBatch(TOPIC, 0, messages(3, 8)).payload);
    expect(log).toEqual(['commit 10']);
    expect(committed(fake)).toEqual([`${TOPIC}/0@10`]);
    expect(chunks).toEqual([]);
  });

  test('processing stops at the next chunk boundary once the partition is stale (revoked or seeked)', async () => {
    const { fake, log, handle } = await start();
    const batch = fakeBatch(TOPIC, 0, messages(0, 9));
    fake.onCommit = (offset) => {
      log.push(`commit ${offset}`);
      batch.stale = true;
    };
    await handle(batch.payload);
    expect(log).toEqual(['chunk 0,1,2', 'commit 3']);
    expect(batch.resolved).toEqual(['2']);
  });

  test('processing stops at the next chunk boundary once the consumer stops running', async () => {
    const { log, handle } = await start();
    const batch = fakeBatch(TOPIC, 0, messages(0, 9));
    batch.running = false;
    await handle(batch.payload);
    expect(log).toEqual([]);
  });

  test('a commit refused by a rebalance stops further chunks without failing the batch', async () => {
    const { fake, log, chunks, handle } = await start();
    fake.onCommit = (offset) => {
      log.push(`commit ${offset}`);
      throw rebalance();
    };
    await expect(handle(fakeBatch(TOPIC, 0, messages(0, 9)).payload)).resolves.toBeUndefined();
    expect(log).toEqual(['chunk 0,1,2', 'commit 3']);
    expect(fake.commits).toEqual([]);
    // The chunk's effects are durable all the same: it was processed and reported.
    expect(chunks).toHaveLength(1);
  });

  test('a rebalance error wrapped by kafkajs retries is recognised too; any other commit failure fails the batch', async () => {
    const wrapped = await start();
    wrapped.fake.onCommit = () => {
      throw Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: rebalance() });
    };
    await expect(wrapped.handle(fakeBatch(TOPIC, 0, messages(0, 6)).payload)).resolves.toBeUndefined();
    expect(wrapped.log).toEqual(['chunk 0,1,2']);

    const broken = await start();
    broken.fake.onCommit = () => {
      throw Object.assign(new Error('disk on fire'), { name: 'KafkaJSError' });
    };
    await expect(broken.handle(fakeBatch(TOPIC, 0, messages(0, 6)).payload)).rejects.toThrow('disk on fire');
    expect(broken.log).toEqual(['chunk 0,1,2']);
  });

  test('a health tracker goes to running on the first committed chunk and to stopped on stop()', async () => {
    const health = createStageHealth({ stage: 'sharder', maxRestarts: 3, now: () => 42 });
    const { fake, stage, handle } = await start({ health });
    expect(health.view().state).toBe('starting');
    expect(stage.health()).toEqual([{ stage: 'sharder', state: 'starting', since: 42, restarts: 0 }]);
    await handle(fakeBatch(TOPIC, 0, messages(0, 2)).payload);
    expect(health.view().state).toBe('running');
    await stage.stop();
    expect(health.view().state).toBe('stopped');
    expect(fake.disconnected).toBe(true);
  });

  test('without a tracker the stage reports itself running', async () => {
    const { stage } = await start();
    expect(stage.health()).toEqual([{ stage: 'sharder', state: 'running', since: 0, restarts: 0 }]);
  });
});
