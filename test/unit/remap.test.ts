/**
 * Records of an older epoch under the current one (src/cluster/remap.ts): a split maps fine ids to a new
 * expert, so a record appended (live or restored) with an older route goes to the current expert of its
 * fine cluster, and the node-local catch-up (streams/catch-up.ts) moves the local records an epoch moved
 * and routes the unrouted ones. Restoring after a split gives the same shards as live processing.
 */
import { lastValueFrom, of } from 'rxjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CentroidModel } from '../../src/cluster/model.js';
import { expertsToRescan, fineToExpertOf, remapRoute } from '../../src/cluster/remap.js';
import { createRouting } from '../../src/cluster/routing.js';
import { encodeRouted, UNROUTED, type Route, type RoutedRecord } from '../../src/contract/routed.js';
import type { CaptionEmbedder } from '../../src/embed/embedder.js';
import { createHashedEmbedder } from '../../src/embed/hashed.js';
import { initBackend } from '../../src/tensor/backend.js';
import { createShardStore } from '../../state/shards.js';
import { catchUpPass } from '../../streams/catch-up.js';
import { createLane } from '../../streams/lane.js';
import type { InputMessage } from '../../streams/messages.js';
import { sharderTopology } from '../../streams/sharder.js';
import type { ChunkOutcome } from '../../streams/stage.js';
import { freshStateEnvs } from '../support/state-env.js';
import { bootstrapModel, capturingProducer, fashionCaptions, fixedRoutingSource, inputMessage } from './stream-fakes.js';
import type { Logger } from '../../src/logger.js';

const quiet = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {}, child: () => quiet } as unknown as Logger;
const freshEnv = freshStateEnvs('modestream-remap-');

let embedder: CaptionEmbedder;
let model: CentroidModel;
/** Epoch 2: expert `from` split; its fine clusters in `moved` go to the new expert `to`. */
let split: CentroidModel;
let moved: Set<number>;
let from: number;
let to: number;
let embeddings: Float32Array;
let routes: Route[];
const captions = fashionCaptions(96);

beforeAll(async () => {
  await initBackend('wasm');
  embedder = createHashedEmbedder({ kind: 'hashed', dim: 32, seed: 0, wordNgrams: 2, charNgrams: [3, 4] });
  model = await bootstrapModel(embedder, 200);
  embeddings = await embedder.embed(captions);
  const routing = createRouting(model);
  routes = await routing.route(embeddings);
  routing.dispose();
  // Split the expert with the most routed captions; half of its fine clusters (those routed to) move.
  const byExpert = new Map<number, Set<number>>();
  for (const r of routes) byExpert.set(r.expert, (byExpert.get(r.expert) ?? new Set()).add(r.fine));
  from = [...byExpert.entries()].sort((a, b) => b[1].size - a[1].size)[0]![0];
  const fines = [...byExpert.get(from)!].sort((a, b) => a - b);
  expect(fines.length).toBeGreaterThan(1);
  moved = new Set(fines.slice(0, Math.floor(fines.length / 2)));
  to = Math.max(...model.experts) + 1;
  split = {
    ...model,
    epoch: 2,
    fineToExpert: Int32Array.from(model.fineIds, (fine, row) => (moved.has(fine) ? to : model.fineToExpert[row]!)),
    experts: Int32Array.from([...model.experts, to]),
    coarse: Float32Array.from([...model.coarse, ...model.coarse.slice(0, model.dim)]),
  };
});

afterAll(() => embedder.dispose());

function record(i: number, route: Route | null): RoutedRecord {
  return {
    id: `pair-${i}`,
    caption: captions[i]!,
    ts: 1_700_000_000_000 + i,
    image: { kind: 'pixels', width: 2, height: 2, channels: 1, data: Uint8Array.from([i % 256, 1, 2, 3]) },
    embedding: embeddings.slice(i * 32, (i + 1) * 32),
    route,
    origin: { topic: 'pairs', partition: 0, offset: String(i) },
  };
}

const chunkOf = (records: RoutedRecord[], first: number): InputMessage[] =>
  records.map((r, i) => inputMessage({ topic: 'routed', partition: 0, offset: first + i, value: encodeRouted(r) }));

/** Where each stored id lives: expert by pair id. */
function placement(store: ReturnType<typeof createShardStore>): Map<string, number> {
  return new Map([...store.ids()].map((r) => [r.id, r.expert]));
}

/** The expert epoch 2 gives caption i. */
const expertUnderSplit = (i: number) => (moved.has(routes[i]!.fine) ? to : routes[i]!.expert);

describe('remapRoute', () => {
  test('an older route goes to the current expert of its fine cluster; otherwise it is kept as it is', () => {
    const map = new Map([[7, 3], [8, 5]]);
    const old = { epoch: 1, fine: 7, expert: 2, dist2: 0.5 };
    expect(remapRoute(old, map, 4)).toEqual({ epoch: 4, fine: 7, expert: 3, dist2: 0.5 });
    const same = { epoch: 1, fine: 8, expert: 5, dist2: 0.5 };
    expect(remapRoute(same, map, 4)).toBe(same);
    const unknown = { epoch: 1, fine: 99, expert: 1, dist2: 0 };
    expect(remapRoute(unknown, map, 4)).toBe(unknown);
    // A route newer than the map (a node behind the epoch) is not taken back.
    const newer = { epoch: 6, fine: 7, expert: 9, dist2: 0 };
    expect(remapRoute(newer, map, 4)).toBe(newer);
  });

  test('expertsToRescan: the old experts of the fine clusters that changed; everything stored when the old map is unknown', () => {
    expect(expertsToRescan(fineToExpertOf(model), fineToExpertOf(split), [])).toEqual([from]);
    expect(expertsToRescan(fineToExpertOf(model), fineToExpertOf(model), [0, 1])).toEqual([]);
    expect(expertsToRescan(undefined, fineToExpertOf(split), [3, 1, UNROUTED, 3])).toEqual([1, 3]);
  });
});

describe('fine counters (what a split is judged by)', () => {
  test('a record given another fine cluster of the same expert moves its fine count too', async () => {
    const store = createShardStore({ env: freshEnv(), reservoirSize: 0 });
    const r = record(0, { epoch: 1, fine: 3, expert: 1, dist2: 0.1 });
    await store.append([{ record: r, bytes: encodeRouted(r) }], { topic: 'routed', partition: 0, nextOffset: 1 });
    expect(store.fineCounts().get(3)).toBe(1);
    expect(await store.relocate([{ id: r.id, route: { epoch: 2, fine: 40, expert: 1, dist2: 0 } }])).toBe(0);
    expect(store.fineCounts().get(3)).toBe(0);
    expect(store.fineCounts().get(40)).toBe(1);
  });
});

describe('older-epoch records in the sharder and the node-local catch-up', () => {
  const n = 48;

  test('appending epoch-1 records after a split stores them under the split experts, re-encoded', async () => {
    const store = createShardStore({ env: freshEnv(), reservoirSize: 0 });
    const topology = sharderTopology({ store, routing: fixedRoutingSource(split), producer: capturingProducer().producer, dlqTopic: 'dlq', lane: createLane() });
    const outcome = (await lastValueFrom(of(chunkOf(Array.from({ length: n }, (_, i) => record(i, routes[i]!)), 0)).pipe(topology))) as ChunkOutcome;
    expect(outcome).toMatchObject({ written: n, nextOffset: n });
    const where = placement(store);
    for (let i = 0; i < n; i++) expect(where.get(`pair-${i}`), `pair-${i}`).toBe(expertUnderSplit(i));
    const movedOne = Array.from({ length: n }, (_, i) => i).find((i) => moved.has(routes[i]!.fine))!;
    const loc = store.locate(`pair-${movedOne}`)!;
    expect(store.get(loc.expert, loc.seq)!.route).toMatchObject({ epoch: 2, expert: to, fine: routes[movedOne]!.fine });
  });

  test('live then split (catch-up moves local records) equals restore after the split', async () => {
    // Live: half routed with epoch 1, half unrouted (before epoch 1), then epoch 2 arrives.
    const live = createShardStore({ env: freshEnv(), reservoirSize: 0 });
    const routing = fixedRoutingSource();
    const deps = { store: live, routing, producer: capturingProducer().producer, dlqTopic: 'dlq', lane: createLane() };
    const unrouted = Array.from({ length: n / 2 }, (_, i) => record(i, null));
    await lastValueFrom(of(chunkOf(unrouted, 0)).pipe(sharderTopology(deps)));
    expect(live.unroutedCount()).toBe(n / 2);
    routing.publish(model);
    const routed = Array.from({ length: n / 2 }, (_, k) => record(n / 2 + k, routes[n / 2 + k]!));
    await lastValueFrom(of(chunkOf(routed, n / 2)).pipe(sharderTopology(deps)));
    const catchUp = { store: live, routing, lane: deps.lane, logger: quiet, batch: 7 };
    await catchUpPass(catchUp, routing.current()!, undefined, fineToExpertOf(model));
    expect(live.unroutedCount()).toBe(0);
    routing.publish(split);
    await catchUpPass(catchUp, routing.current()!, fineToExpertOf(model), fineToExpertOf(split));

    // Restore: a new node replays the same partition with epoch 2 current.
    const restored = createShardStore({ env: freshEnv(), reservoirSize: 0 });
    const routing2 = fixedRoutingSource(split);
    await lastValueFrom(of(chunkOf([...unrouted, ...routed], 0)).pipe(sharderTopology({ ...deps, store: restored, routing: routing2, lane: createLane() })));

    const a = placement(live);
    const b = placement(restored);
    expect(a.size).toBe(n);
    expect([...b.entries()].sort()).toEqual([...a.entries()].sort());
    for (let i = 0; i < n; i++) expect(a.get(`pair-${i}`)).toBe(expertUnderSplit(i));
    expect([...a.values()]).toContain(to);
    expect(live.audit().problems).toEqual([]);
    expect(restored.audit().problems).toEqual([]);
    // A restarted node (old map unknown) rescans and finds nothing left to move.
    await catchUpPass(catchUp, routing.current()!, undefined, fineToExpertOf(split));
    expect(placement(live)).toEqual(a);
    routing.dispose();
    routing2.dispose();
  });
});
