/**
 * The sharder topology on chunks of the routed topic, against an in-memory ShardWriter (the port the
 * LMDB store implements): records land with the chunk's position, undecodable bytes are dead-lettered
 * as they arrived, records routed before the first epoch are routed here once one exists, and a
 * redelivered chunk is all duplicates.
 */
import { lastValueFrom, of } from 'rxjs';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CentroidModel } from '../../src/cluster/model.js';
import { createRouting } from '../../src/cluster/routing.js';
import { encodeRouted, type Route, type RoutedRecord } from '../../src/contract/routed.js';
import type { CaptionEmbedder } from '../../src/embed/embedder.js';
import { createHashedEmbedder } from '../../src/embed/hashed.js';
import { initBackend } from '../../src/tensor/backend.js';
import { DLQ_HEADERS, type InputMessage } from '../../streams/messages.js';
import { sharderTopology, type IsHistory, type OnAppended } from '../../streams/sharder.js';
import type { ChunkOutcome } from '../../streams/stage.js';
import { bootstrapModel, capturingProducer, decodedOrThrow, fashionCaptions, fixedRoutingSource, headerText, inputMessage, memoryShardWriter } from './stream-fakes.js';

const ROUTED = 'modestream.routed';
const DLQ = 'modestream.pairs.dlq';

let embedder: CaptionEmbedder;
let model: CentroidModel;
let embeddings: Float32Array;
let routes: Route[];
const captions = fashionCaptions(48).filter((_, i) => i % 4 === 0);

beforeAll(async () => {
  await initBackend('wasm');
  embedder = createHashedEmbedder({ kind: 'hashed', dim: 32, seed: 0, wordNgrams: 2, charNgrams: [3, 4] });
  model = await bootstrapModel(embedder, 200);
  embeddings = await embedder.embed(captions);
  const routing = createRouting(model);
  routes = await routing.route(embeddings);
  routing.dispose();
});

afterAll(() => embedder.dispose());

/** The i-th caption as the router publishes it: routed, or unrouted (before the first epoch). */
function record(i: number, routed: boolean): RoutedRecord {
  return {
    id: `pair-${i}`,
    caption: captions[i]!,
    ts: 1_700_000_000_000 + i,
    image: { kind: 'pixels', width: 2, height: 2, channels: 1, data: Uint8Array.from([i, 1, 2, 3]) },
    embedding: embeddings.slice(i * 32, (i + 1) * 32),
    route: routed ? routes[i]! : null,
    origin: { topic: 'pairs', partition: 0, offset: String(100 + i) },
  };
}

function chunkOf(values: (Buffer | null)[], firstOffset = 20): InputMessage[] {
  return values.map((value, i) => inputMessage({ topic: ROUTED, partition: 2, offset: firstOffset + i, value, headers: { trace: `t${i}` } }));
}

function setup(routing = fixedRoutingSource(model), isHistory?: IsHistory) {
  const store = memoryShardWriter();
  const sink = capturingProducer();
  const appended: Parameters<OnAppended>[0][] = [];
  const topology = sharderTopology({ store, routing, producer: sink.producer, dlqTopic: DLQ, onAppended: (info) => void appended.push(info), isHistory });
  const run = (chunk: InputMessage[]) => lastValueFrom(of(chunk).pipe(topology)) as Promise<ChunkOutcome>;
  return { store, sink, appended, run };
}

describe('sharderTopology', () => {
  test('decodable records are appended with the chunk position; their bytes are stored as they arrived', async () => {
    const { store, sink, appended, run } = setup();
    const values = [0, 1, 2, 3].map((i) => encodeRouted(record(i, true)));
    const outcome = await run(chunkOf(values));
    expect(outcome).toEqual({ messages: 4, nextOffset: 24, written: 4, duplicates: 0, deadLettered: 0 });
    expect(store.appends).toEqual([{ ids: ['pair-0', 'pair-1', 'pair-2', 'pair-3'], position: { topic: ROUTED, partition: 2, nextOffset: 24 } }]);
    values.forEach((bytes, i) => expect(Buffer.compare(store.stored.get(`pair-${i}`)!.bytes, bytes)).toBe(0));
    expect(store.stored.get('pair-2')!.record.route).toEqual(routes[2]);
    expect(store.nextOffset(ROUTED, 2)).toBe(24);
    // Nothing to dead-letter: the producer is not called at all.
    expect(sink.sends).toEqual([]);
    expect(appended).toHaveLength(1);
    expect(appended[0]!.records.map((r) => r.id)).toEqual(['pair-0', 'pair-1', 'pair-2', 'pair-3']);
  });

  test('a chunk a restore re-reads is appended as history (no novelty test); the chunks after it are not', async () => {
    const { store, run } = setup(fixedRoutingSource(model), (partition, offset) => partition === 2 && offset < 24);
    await run(chunkOf([0, 1].map((i) => encodeRouted(record(i, true))), 20));
    await run(chunkOf([2, 3].map((i) => encodeRouted(record(i, true))), 24));
    expect(store.appends.map((a) => a.history ?? false)).toEqual([true, false]);
  });

  test('undecodable messages go to the DLQ with their original bytes and reason; the rest is still appended', async () => {
    const { store, sink, run } = setup();
    const packr = new Packr({ useRecords: false });
    const garbage = Buffer.from([0xc1, 0xff, 0x00]);
    const wrongShape = packr.pack({ v: 2, id: 'from-the-future' });
    const chunk = chunkOf([encodeRouted(record(0, true)), garbage, null, wrongShape, encodeRouted(record(1, true))], 50);
    const outcome = await run(chunk);
    expect(outcome).toEqual({ messages: 5, nextOffset: 55, written: 2, duplicates: 0, deadLettered: 3 });
    expect(store.appends[0]!.ids).toEqual(['pair-0', 'pair-1']);

    expect(sink.sends).toHaveLength(1);
    expect(sink.sends[0]).toMatchObject({ topic: DLQ, acks: -1 });
    const dead = sink.messagesTo(DLQ);
    expect(dead.map((m) => m.value)).toEqual([garbage, null, wrongShape]);
    expect(dead.map((m) => headerText(m, DLQ_HEADERS.reason))).toEqual(['invalid-routed-record', 'invalid-routed-record', 'invalid-routed-record']);
    expect(dead.map((m) => headerText(m, DLQ_HEADERS.offset))).toEqual(['51', '52', '53']);
    expect(dead.map((m) => headerText(m, 'trace'))).toEqual(['t1', 't2', 't3']);
    expect(headerText(dead[0]!, DLQ_HEADERS.detail)).toMatch(/msgpack/);
    expect(headerText(dead[1]!, DLQ_HEADERS.detail)).toBe('empty routed record');
    expect(headerText(dead[2]!, DLQ_HEADERS.detail)).toMatch(/^routed record: /);
  });

  test('records published before the first epoch are routed here once an epoch exists', async () => {
    const routing = fixedRoutingSource();
    const { store, run } = setup(routing);
    const early = chunkOf([record(0, false), record(1, false)].map(encodeRouted), 0);
    const unchanged = early.map((m) => m.value!);
    // No epoch yet: stored unrouted, bytes untouched (the controller's catch-up routes them later).
    expect(await run(early)).toMatchObject({ written: 2, duplicates: 0 });
    expect(store.stored.get('pair-0')!.record.route).toBeNull();
    expect(Buffer.compare(store.stored.get('pair-0')!.bytes, unchanged[0]!)).toBe(0);

    routing.publish(model);
    const values = [record(2, false), record(3, true), record(4, false)].map(encodeRouted);
    expect(await run(chunkOf(values, 2))).toEqual({ messages: 3, nextOffset: 5, written: 3, duplicates: 0, deadLettered: 0 });
    for (const i of [2, 3, 4]) {
      const { record: stored, bytes } = store.stored.get(`pair-${i}`)!;
      expect(stored.route).toEqual(routes[i]);
      // What is stored is the re-routed record, not the unrouted bytes that arrived.
      expect(decodedOrThrow(bytes).route).toEqual(routes[i]);
    }
    // An already routed record keeps the bytes it arrived as.
    expect(Buffer.compare(store.stored.get('pair-3')!.bytes, values[1]!)).toBe(0);
    routing.dispose();
  });

  test('an unrouted record whose embedding is not of the epoch\'s space is dead-lettered, not mis-routed or a crash', async () => {
    // A router with another embedder published it before the first epoch: its vector cannot be routed here.
    const { store, sink, run } = setup();
    const foreign = { ...record(5, false), id: 'foreign', embedding: new Float32Array(48).fill(0.1) };
    const shorter = { ...record(6, false), id: 'shorter', embedding: new Float32Array(8).fill(0.3) };
    const chunk = chunkOf([encodeRouted(record(4, false)), encodeRouted(foreign), encodeRouted(shorter)], 70);
    expect(await run(chunk)).toEqual({ messages: 3, nextOffset: 73, written: 1, duplicates: 0, deadLettered: 2 });
    expect(store.stored.get('pair-4')!.record.route).toEqual(routes[4]);
    const dead = sink.messagesTo(DLQ);
    expect(dead.map((m) => m.value)).toEqual([chunk[1]!.value, chunk[2]!.value]);
    expect(headerText(dead[0]!, DLQ_HEADERS.detail)).toBe('embedding of dimension 48; the current centroid epoch routes dimension 32');
    expect(headerText(dead[1]!, DLQ_HEADERS.detail)).toBe('embedding of dimension 8; the current centroid epoch routes dimension 32');
  });

  test('a redelivered chunk (after a crash between the append and the commit) yields duplicates, not writes', async () => {
    const { store, run } = setup();
    const chunk = chunkOf([0, 1, 2].map((i) => encodeRouted(record(i, true))), 10);
    expect(await run(chunk)).toMatchObject({ written: 3, duplicates: 0, nextOffset: 13 });
    expect(await run(chunk)).toEqual({ messages: 3, nextOffset: 13, written: 0, duplicates: 3, deadLettered: 0 });
    // Overlapping redelivery: only the new record is written.
    expect(await run(chunkOf([2, 3].map((i) => encodeRouted(record(i, true))), 12))).toMatchObject({ written: 1, duplicates: 1, nextOffset: 14 });
    expect([...store.stored.keys()].sort()).toEqual(['pair-0', 'pair-1', 'pair-2', 'pair-3']);
    expect(store.nextOffset(ROUTED, 2)).toBe(14);
  });
});
