/**
 * Stored values are parsed on read: a corrupt counter, offset, sample, event or job record in a real
 * LMDB environment (temp dir, in-process) is a StateError that names the key, not a wrong type that
 * crashes somewhere else; and a corrupt counter aborts the whole append, offset included.
 */
import { describe, expect, test } from 'vitest';
import { encodeRouted, type RoutedRecord } from '../../src/contract/routed.js';
import { StateError } from '../../src/errors.js';
import { createEventLog } from '../../state/events.js';
import { createModelStore } from '../../state/models.js';
import { createShardStore, type EncodedRecord } from '../../state/shards.js';
import { freshStateEnvs } from '../support/state-env.js';

const freshEnv = freshStateEnvs('modestream-corrupt-');

function record(id: string, expert: number): EncodedRecord {
  const r: RoutedRecord = {
    id,
    caption: `caption ${id}`,
    ts: 1_700_000_000_000,
    image: { kind: 'embedding', values: new Float32Array([0.5]) },
    embedding: new Float32Array([1, 0, 0, 0]),
    route: { epoch: 1, fine: expert * 10, expert, dist2: 4 },
    origin: { topic: 'pairs', partition: 0, offset: '0' },
  };
  return { record: r, bytes: encodeRouted(r) };
}

/** The StateError `fn` throws (sync or async). */
async function stateError(fn: () => unknown): Promise<StateError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof StateError) return err;
    throw err;
  }
  throw new Error('expected a StateError');
}

describe('corrupt stored values', () => {
  test('a corrupt expert counter names its key, on read and on append, and the append writes nothing', async () => {
    const env = freshEnv();
    const store = createShardStore({ env, reservoirSize: 10 });
    await store.append([record('a', 3)], { topic: 'routed', partition: 0, nextOffset: 1 });
    await env.meta.put(['expert', 3], { records: 'many', nextSeq: 1 });

    expect((await stateError(() => store.expertStats())).message).toBe('corrupt expert counter ["expert",3]: records: Invalid input: expected number, received string');
    expect((await stateError(() => store.shardSize(3))).message).toContain('["expert",3]');
    const failed = await stateError(() => store.append([record('b', 3)], { topic: 'routed', partition: 0, nextOffset: 2 }));
    expect(failed.message).toContain('corrupt expert counter ["expert",3]');
    // One transaction: neither the record, its dedup key, the sample nor the offset moved.
    expect(store.locate('b')).toBeUndefined();
    expect(store.reservoirSeen()).toBe(1);
    expect(store.nextOffset('routed', 0)).toBe(1);
  });

  test('corrupt offsets, fine counters, reservoir and novelty values name their keys', async () => {
    const env = freshEnv();
    const store = createShardStore({ env, reservoirSize: 10, noveltyThreshold: () => 1 });
    await store.append([record('a', 1)], { topic: 'routed', partition: 0, nextOffset: 1 });
    expect(store.noveltyCount()).toBe(1);

    // The same named DB, opened without its value type, to store what the typed one refuses.
    const offsets = env.root.openDB<unknown, [string, number]>({ name: 'offsets' });
    await offsets.put(['routed', 0], 'one');
    expect((await stateError(() => store.nextOffset('routed', 0))).message).toContain('input offset ["routed",0]');
    expect((await stateError(() => store.storedOffsets())).message).toContain('input offset ["routed",0]');

    await env.meta.put(['fine', 10], { n: 1 });
    expect((await stateError(() => store.fineCounts())).message).toContain('fine counter ["fine",10]');

    await env.meta.put(['reservoir'], { seen: -1 });
    expect((await stateError(() => store.reservoirSeen())).message).toBe('corrupt reservoir state ["reservoir"]: seen: Too small: expected number to be >=0');
    await env.meta.put(['reservoir'], { seen: 1 });
    await env.reservoir.put(0, { id: 'a', emb: 'not bytes' });
    expect((await stateError(() => store.reservoirSample())).message).toContain('reservoir slot 0: emb');

    await env.novelty.put(0, { id: 'a', embedding: [1, 2] });
    expect((await stateError(() => store.noveltyBuffer(10))).message).toContain('novelty candidate 0: embedding');
    await env.meta.put(['novelty'], { routed: 1, candidates: 1 });
    expect((await stateError(() => store.noveltyStats())).message).toContain('novelty stats ["novelty"]: dropped');
  });

  test('a corrupt controller event names its key', async () => {
    const env = freshEnv();
    const events = createEventLog({ env });
    await events.record('bootstrap', 'centers ready', 1000);
    expect(events.count('bootstrap')).toBe(1);
    await env.events.put([2000, 7, 0], { at: 2000, kind: 'reboot', message: 'x' });

    const err = await stateError(() => events.recent());
    expect(err.message).toMatch(/^corrupt controller event \[2000,7,0\]: kind: /);
    expect((await stateError(() => events.count('bootstrap'))).message).toContain('[2000,7,0]');
  });

  test('a corrupt training job record or checkpoint job.json is a StateError naming it', async () => {
    const env = freshEnv();
    const models = createModelStore({ env });
    await env.jobs.put('expert-2', { name: 'expert-2', state: 'running', step: 'ten' });
    expect((await stateError(() => models.job('expert-2'))).message).toContain('corrupt training job expert-2: ');
    expect((await stateError(() => models.jobs())).message).toContain('training job expert-2');
    expect(models.job('expert-9')).toBeUndefined();

    const files = { modelJson: '{}', weights: new Uint8Array(4), optimizerJson: '{}', optimizerWeights: new Uint8Array(4) };
    await models.writeCheckpoint('seed', 10, { ...files, job: JSON.stringify({ name: 'seed', totalSteps: 100 }) });
    const facts = await stateError(() => models.readCheckpoint('seed'));
    expect(facts.message).toMatch(/^corrupt job facts .*seed\/job\/ckpt-000000010\/job\.json: batch: /);
    await models.writeCheckpoint('seed', 20, { ...files, job: '{"name": ' });
    expect((await stateError(() => models.readCheckpoint('seed'))).message).toMatch(/^corrupt job facts .*ckpt-000000020\/job\.json: /);
  });
});
