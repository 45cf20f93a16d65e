/**
 * The shard store on a real LMDB environment: dedup inside and across appends, forward-only offsets,
 * the reservoir, moving unrouted records, the audit, and two processes appending the same ids at once.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { RoutedRecord } from '../../src/contract/routed.js';
import { f32ToBytes } from '../../src/codec/bytes.js';
import { encodeRouted } from '../../src/contract/routed.js';
import { createShardStore, type EncodedRecord } from '../../state/shards.js';
import { ROOT } from '../support/processor.js';
import { freshStateEnvs } from '../support/state-env.js';

function routed(id: string, expert: number | null, dim = 4): RoutedRecord {
  const embedding = new Float32Array(dim).map((_, i) => (i === id.length % dim ? 1 : 0));
  return {
    id,
    caption: `caption ${id}`,
    ts: 1_700_000_000_000,
    image: { kind: 'pixels', width: 2, height: 2, channels: 1, data: Uint8Array.from([1, 2, 3, 4]) },
    embedding,
    route: expert === null ? null : { epoch: 1, fine: expert * 10, expert, dist2: 0.5 },
    origin: { topic: 'pairs', partition: 0, offset: '0' },
  };
}

/** A record as the sharder hands it to the store: decoded, with its wire bytes. */
function record(id: string, expert: number | null): EncodedRecord {
  const r = routed(id, expert);
  return { record: r, bytes: encodeRouted(r) };
}

const freshEnv = freshStateEnvs('modestream-shards-');

describe('shard store', () => {
  test('appends once per pair id, within a chunk and across chunks, and reads back what it stored', async () => {
    const store = createShardStore({ env: freshEnv(), reservoirSize: 0 });
    const first = await store.append([record('a', 0), record('b', 1), record('a', 0)], { topic: 'routed', partition: 0, nextOffset: 3 });
    expect(first).toEqual({ written: 2, duplicates: 1 });
    const second = await store.append([record('b', 1), record('c', 1)], { topic: 'routed', partition: 1, nextOffset: 2 });
    expect(second).toEqual({ written: 1, duplicates: 1 });
    expect(store.totalRecords()).toBe(3);
    expect(store.expertStats().map((s) => [s.expert, s.records])).toEqual([
      [0, 1],
      [1, 2],
    ]);
    const [stored] = [...store.read(1)];
    expect(stored!.record.id).toBe('b');
    expect(Array.from(stored!.record.embedding)).toEqual(Array.from(routed('b', 1).embedding));
    expect(stored!.record.image).toEqual(routed('b', 1).image);
    expect(store.audit()).toEqual({ records: 3, ids: 3, problems: [] });
  });

  test('offsets only move forward', async () => {
    const store = createShardStore({ env: freshEnv(), reservoirSize: 0 });
    await store.append([record('a', 0)], { topic: 'routed', partition: 2, nextOffset: 10 });
    await store.append([record('b', 0)], { topic: 'routed', partition: 2, nextOffset: 5 });
    expect(store.nextOffset('routed', 2)).toBe(10);
    expect(store.nextOffset('routed', 3)).toBeUndefined();
  });

  test('the reservoir keeps at most its capacity and has seen every new record', async () => {
    const store = createShardStore({ env: freshEnv(), reservoirSize: 50 });
    for (let chunk = 0; chunk < 4; chunk++) {
      await store.append(
        Array.from({ length: 40 }, (_, i) => record(`r${chunk}-${i}`, 0)),
        { topic: 'routed', partition: 0, nextOffset: (chunk + 1) * 40 },
      );
    }
    await store.append([record('r0-0', 0)], { topic: 'routed', partition: 0, nextOffset: 161 });
    const { seen, embeddings } = store.reservoirSample();
    expect(seen).toBe(160);
    expect(embeddings).toHaveLength(50);
    expect(embeddings.every((e) => e.length === 4)).toBe(true);
  });

  test('unrouted records move into expert shards once, with counters kept right', async () => {
    const store = createShardStore({ env: freshEnv(), reservoirSize: 0 });
    await store.append([record('u1', null), record('u2', null), record('u3', null), record('x', 2)], { topic: 'routed', partition: 0, nextOffset: 4 });
    expect(store.unroutedCount()).toBe(3);
    const moved = await store.routeStored(2, async (embeddings) => embeddings.map(() => ({ epoch: 1, fine: 7, expert: 3, dist2: 0.1 })));
    expect(moved).toBe(2);
    await store.routeStored(10, async (embeddings) => embeddings.map(() => ({ epoch: 1, fine: 8, expert: 2, dist2: 0.2 })));
    expect(store.unroutedCount()).toBe(0);
    expect(store.totalRecords()).toBe(4);
    expect(store.locate('u1')?.expert).toBe(3);
    expect(store.locate('u3')?.expert).toBe(2);
    expect(Object.fromEntries(store.fineCounts())).toEqual({ 7: 2, 8: 1, 20: 1 });
    expect(store.audit().problems).toEqual([]);
  });

  test('history re-read by a restore is stored and sampled but not flagged as a novelty candidate again', async () => {
    const store = createShardStore({ env: freshEnv(), reservoirSize: 10, noveltyThreshold: () => 0.1 });
    await store.append([record('live', 1)], { topic: 'routed', partition: 0, nextOffset: 1 });
    await store.append([record('old-1', 1), record('old-2', 2)], { topic: 'routed', partition: 1, nextOffset: 2 }, { history: true });
    expect(store.totalRecords()).toBe(3);
    expect(store.reservoirSeen()).toBe(3);
    expect(store.noveltyBuffer(10).ids).toEqual(['live']);
  });

  test('novelty candidates are judged in arrival order, whatever their ids; a judged buffer is cleared through its last', async () => {
    const store = createShardStore({ env: freshEnv(), reservoirSize: 0, noveltyThreshold: () => 0.1 });
    await store.append([record('zeta', 1), record('alpha', 1)], { topic: 'routed', partition: 0, nextOffset: 2 });
    await store.append([record('mu', 2)], { topic: 'routed', partition: 1, nextOffset: 1 });
    const first = store.noveltyBuffer(2);
    expect(first.ids).toEqual(['zeta', 'alpha']);
    expect(first.embeddings[0]).toEqual(routed('zeta', 1).embedding);
    // Flagged between the read and the judgement: not cleared with the judged buffer.
    await store.append([record('beta', 2)], { topic: 'routed', partition: 1, nextOffset: 2 });
    await store.clearNovelty(first.through, 2);
    expect(store.noveltyBuffer(10).ids).toEqual(['mu', 'beta']);
    expect(store.noveltyCount()).toBe(2);
    expect(store.noveltyStats()).toEqual({ routed: 4, candidates: 4, dropped: 2 });
  });

  test('a novelty buffer stored by pair id (an older state dir) is judged first, before new candidates', async () => {
    const env = freshEnv();
    await env.noveltyById.put('old-b', f32ToBytes(routed('old-b', 1).embedding));
    await env.noveltyById.put('old-a', f32ToBytes(routed('old-a', 1).embedding));
    await env.meta.put(['novelty'], { routed: 40, candidates: 2, dropped: 0 });
    const store = createShardStore({ env, reservoirSize: 0, noveltyThreshold: () => 0.1 });
    expect(store.noveltyCount()).toBe(2);
    await store.append([record('new', 1)], { topic: 'routed', partition: 0, nextOffset: 1 });
    expect(store.noveltyBuffer(10).ids).toEqual(['old-a', 'old-b', 'new']);
    expect(store.noveltyCount()).toBe(3);
    expect(env.noveltyById.getCount()).toBe(0);
  });

  test('the audit finds a record stored twice', async () => {
    const env = freshEnv();
    const store = createShardStore({ env, reservoirSize: 0 });
    await store.append([record('a', 0)], { topic: 'routed', partition: 0, nextOffset: 1 });
    await env.shards.put([1, 99], encodeRouted(routed('a', 1)));
    const audit = store.audit();
    expect(audit.problems).toContain('2 stored records but 1 distinct ids');
  });

  test('two processes appending overlapping ids into one environment store each id once', async () => {
    const env = freshEnv();
    const script = join(env.dir, 'append.mjs');
    // Each process appends ids 0..1999 in chunks of 100 (the same ids in both), racing on every chunk.
    writeFileSync(
      script,
      `import { openStateEnv } from '${join(ROOT, 'dist/state/env.js')}';
       import { createShardStore } from '${join(ROOT, 'dist/state/shards.js')}';
       import { encodeRouted } from '${join(ROOT, 'dist/src/contract/routed.js')}';
       const env = openStateEnv({ dir: process.argv[2] });
       const store = createShardStore({ env, reservoirSize: 100 });
       const part = Number(process.argv[3]);
       for (let c = 0; c < 20; c++) {
         const records = Array.from({ length: 100 }, (_, i) => {
           const record = { id: 'p' + (c * 100 + i), caption: 'c', ts: 0, embedding: new Float32Array([1, 0, 0, 0]),
             image: { kind: 'embedding', values: new Float32Array([0.5]) },
             route: { epoch: 1, fine: 1, expert: (c + i) % 3, dist2: 0 }, origin: { topic: 't', partition: part, offset: String(c) } };
           return { record, bytes: encodeRouted(record) };
         });
         await store.append(records, { topic: 'routed', partition: part, nextOffset: (c + 1) * 100 });
       }
       await env.close();`,
    );
    const run = (part: number) =>
      new Promise<number | null>((resolve) => spawn(process.execPath, [script, env.dir, String(part)], { stdio: 'inherit' }).once('exit', resolve));
    expect(await Promise.all([run(0), run(1)])).toEqual([0, 0]);
    const store = createShardStore({ env, reservoirSize: 100 });
    expect(store.audit()).toEqual({ records: 2000, ids: 2000, problems: [] });
    expect(store.reservoirSeen()).toBe(2000);
    expect(store.nextOffset('routed', 0)).toBe(2000);
    expect(store.nextOffset('routed', 1)).toBe(2000);
  });
});
