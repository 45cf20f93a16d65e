/**
 * The router topology on chunks of pairs, with the real hashed embedder and real routing over a small
 * bootstrapped epoch, and a producer that only records: valid pairs reach the routed topic on their
 * expert's partition, invalid ones reach the DLQ as they arrived, with the reason in headers.
 */
import { crc32 } from 'node:zlib';
import { lastValueFrom, of } from 'rxjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createRouting } from '../../src/cluster/routing.js';
import type { CentroidModel } from '../../src/cluster/model.js';
import { LimitsConfig } from '../../src/config.js';
import { encodePairMessage } from '../../src/contract/pair.js';
import { createHashedEmbedder } from '../../src/embed/hashed.js';
import { createSharpDecoder } from '../../src/image/decode.js';
import type { CaptionEmbedder } from '../../src/embed/embedder.js';
import { initBackend } from '../../src/tensor/backend.js';
import { DLQ_HEADERS, type InputMessage } from '../../streams/messages.js';
import { createRecentIds } from '../../streams/recent-ids.js';
import { routerTopology } from '../../streams/router.js';
import type { ChunkOutcome } from '../../streams/stage.js';
import type { ChunkOffset, ChunkTransactions } from '../../streams/transactions.js';
import { bootstrapModel, capturingProducer, decodedOrThrow, fashionCaptions, fixedRoutingSource, headerText, inputMessage } from './stream-fakes.js';

const limits = LimitsConfig.parse({});
const ROUTED = 'modestream.routed';
const DLQ = 'modestream.pairs.dlq';
const PARTITIONS = 3;
const grey = Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 13) % 256);
const images = { decoder: createSharpDecoder({ limits, concurrency: 2 }), target: { width: 28, height: 28, channels: 1 } as const };

let embedder: CaptionEmbedder;
let model: CentroidModel;

beforeAll(async () => {
  await initBackend('wasm');
  embedder = createHashedEmbedder({ kind: 'hashed', dim: 32, seed: 0, wordNgrams: 2, charNgrams: [3, 4] });
  model = await bootstrapModel(embedder, 200);
});

afterAll(() => embedder.dispose());

function pair(id: string, caption: string): Buffer {
  return encodePairMessage({ id, caption, image: { kind: 'pixels', width: 28, height: 28, channels: 1, data: grey } });
}

function run(chunk: InputMessage[], routing = fixedRoutingSource(model), imageOptions: { keepOriginal?: boolean } = {}) {
  const sink = capturingProducer();
  const topology = routerTopology({ limits, images: { ...images, ...imageOptions }, embedder, routing, producer: sink.producer, routedTopic: ROUTED, dlqTopic: DLQ, routedPartitions: PARTITIONS });
  return { sink, outcome: lastValueFrom(of(chunk).pipe(topology)) as Promise<ChunkOutcome> };
}

// Six different items: their routes cover more than one expert, so the partition check means something.
const captions = fashionCaptions(48).filter((_, i) => i % 8 === 0);

describe('routerTopology', () => {
  test('valid pairs go to the routed topic on partition expert mod P, decodable and routed as routing says', async () => {
    const chunk = captions.map((caption, i) => inputMessage({ topic: 'pairs', partition: 1, offset: 40 + i, key: Buffer.from(`p${i}`), value: pair(`p${i}`, caption) }));
    const { sink, outcome } = run(chunk);
    expect(await outcome).toEqual({ messages: 6, nextOffset: 46, routed: 6, unrouted: 0, deadLettered: 0 });

    // One acknowledged batch per chunk (acks=-1), and nothing for the DLQ when nothing was rejected.
    expect(sink.sends).toEqual([]);
    expect(sink.batches).toHaveLength(1);
    expect(sink.batches[0]!.acks).toBe(-1);
    expect(sink.batches[0]!.topicMessages!.map((t) => t.topic)).toEqual([ROUTED]);

    const routing = createRouting(model);
    const expected = await routing.route(await embedder.embed(captions));
    routing.dispose();
    const routed = sink.messagesTo(ROUTED);
    expect(routed).toHaveLength(6);
    routed.forEach((message, i) => {
      const record = decodedOrThrow(message.value as Buffer);
      expect(record).toMatchObject({ id: `p${i}`, caption: captions[i], origin: { topic: 'pairs', partition: 1, offset: String(40 + i) } });
      expect(record.route).toEqual(expected[i]);
      expect(record.route!.epoch).toBe(1);
      expect(message.key).toBe(String(record.route!.expert));
      expect(message.partition).toBe(record.route!.expert % PARTITIONS);
      expect(record.embedding).toHaveLength(32);
    });
    expect(new Set(expected.map((r) => r.expert)).size).toBeGreaterThan(1);
  });

  test('invalid messages go to the DLQ with their original bytes and the reason in headers; counts add up', async () => {
    const bad: { value: Buffer; key?: Buffer; reason: string }[] = [
      { value: Buffer.from('{"id": "broken", "caption": '), reason: 'invalid-json' },
      // Unknown top-level key: a typo must not silently drop data.
      { value: Buffer.from(JSON.stringify({ id: 'x1', caption: 'a red shirt', colour: 'red', image: { embedding: [0.5] } })), reason: 'invalid-schema' },
      { value: Buffer.from(JSON.stringify({ id: 'x2', caption: '   ', image: { embedding: [0.5] } })), reason: 'invalid-schema' },
      { value: pair('x3', 'a blue boot'), key: Buffer.from('not-x3'), reason: 'key-mismatch' },
    ];
    const chunk: InputMessage[] = [
      inputMessage({ topic: 'pairs', partition: 0, offset: 7, value: pair('ok-1', captions[0]!) }),
      ...bad.map(({ value, key }, i) => inputMessage({ topic: 'pairs', partition: 0, offset: 8 + i, value, key: key ?? null, headers: { trace: 'abc' } })),
      inputMessage({ topic: 'pairs', partition: 0, offset: 12, value: pair('ok-2', captions[1]!) }),
    ];
    const { sink, outcome } = run(chunk);
    const result = await outcome;
    expect(result).toEqual({ messages: 6, nextOffset: 13, routed: 2, unrouted: 0, deadLettered: 4 });
    expect(result.routed! + result.unrouted! + result.deadLettered!).toBe(result.messages);

    expect(sink.messagesTo(ROUTED).map((m) => decodedOrThrow(m.value as Buffer).id)).toEqual(['ok-1', 'ok-2']);
    const dead = sink.messagesTo(DLQ);
    expect(dead).toHaveLength(4);
    dead.forEach((message, i) => {
      expect(Buffer.compare(message.value as Buffer, bad[i]!.value)).toBe(0);
      expect(message.key).toEqual(bad[i]!.key ?? null);
      expect(headerText(message, DLQ_HEADERS.reason)).toBe(bad[i]!.reason);
      expect(headerText(message, DLQ_HEADERS.detail)?.length).toBeGreaterThan(0);
      expect(headerText(message, DLQ_HEADERS.topic)).toBe('pairs');
      expect(headerText(message, DLQ_HEADERS.partition)).toBe('0');
      expect(headerText(message, DLQ_HEADERS.offset)).toBe(String(8 + i));
      // The producer's own headers survive.
      expect(headerText(message, 'trace')).toBe('abc');
    });
    expect(headerText(dead[1]!, DLQ_HEADERS.detail)).toContain('colour');
    expect(headerText(dead[2]!, DLQ_HEADERS.detail)).toContain('caption');
  });

  test('encoded images are decoded once, at ingestion: model-size pixels plus the file as received; a broken one is dead-lettered', async () => {
    // A red left half, so the decoded pixels can be checked (grey 28x28: left darker than the white right).
    const half = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#ffffff' } })
      .composite([{ input: { create: { width: 160, height: 240, channels: 3, background: '#ff0000' } }, left: 0, top: 0 }])
      .jpeg({ quality: 90 })
      .toBuffer();
    const png = await sharp({ create: { width: 64, height: 48, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const encodedPair = (id: string, bytes: Uint8Array) => encodePairMessage({ id, caption: captions[0]!, image: { kind: 'encoded', bytes } });
    const chunk = [
      inputMessage({ offset: 0, value: encodedPair('jpeg', half) }),
      inputMessage({ offset: 1, value: encodedPair('png', png) }),
      inputMessage({ offset: 2, value: encodedPair('cut', half.subarray(0, half.length - 200)) }),
      inputMessage({ offset: 3, value: pair('raw', captions[1]!) }),
    ];
    const { sink, outcome } = run(chunk);
    const result = await outcome;
    expect(result).toMatchObject({ messages: 4, routed: 3, deadLettered: 1, images: { decoded: 2, failed: 0 } });
    expect(result.images!.ms).toBeGreaterThan(0);

    const records = sink.messagesTo(ROUTED).map((m) => decodedOrThrow(m.value as Buffer));
    const [jpeg, transparent, raw] = records;
    expect(jpeg).toMatchObject({ id: 'jpeg', image: { kind: 'pixels', width: 28, height: 28, channels: 1 }, original: { format: 'jpeg' } });
    expect(Buffer.compare(Buffer.from(jpeg!.original!.bytes), half)).toBe(0);
    const pixels = jpeg!.image.kind === 'pixels' ? jpeg!.image.data : new Uint8Array();
    expect(pixels[14 * 28 + 3]!).toBeLessThan(pixels[14 * 28 + 24]! - 60);
    // Transparent pixels flattened onto white.
    expect(transparent).toMatchObject({ id: 'png', original: { format: 'png' } });
    expect(transparent!.image.kind === 'pixels' && Math.min(...transparent!.image.data)).toBeGreaterThan(240);
    // A pixel image passes through as sent, with no file attached.
    expect(raw).toMatchObject({ id: 'raw', image: { kind: 'pixels', width: 28, height: 28 } });
    expect(raw!.original).toBeUndefined();

    const dead = sink.messagesTo(DLQ);
    expect(dead.map((m) => headerText(m, DLQ_HEADERS.reason))).toEqual(['invalid-image']);
    expect(headerText(dead[0]!, DLQ_HEADERS.detail)).toMatch(/^image\.encoded: JPEG/);
  });

  test('without originals (pipeline.keepOriginalImages false) only the decoded pixels travel', async () => {
    const jpeg = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#cc3300' } }).jpeg().toBuffer();
    const { sink, outcome } = run([inputMessage({ offset: 0, value: encodePairMessage({ id: 'j', caption: 'an orange scarf', image: { kind: 'encoded', bytes: jpeg } }) })], fixedRoutingSource(model), { keepOriginal: false });
    expect(await outcome).toMatchObject({ routed: 1, images: { decoded: 1, failed: 0 } });
    const [record] = sink.messagesTo(ROUTED).map((m) => decodedOrThrow(m.value as Buffer));
    expect(record).toMatchObject({ id: 'j', image: { kind: 'pixels', width: 28, height: 28, channels: 1 } });
    expect(record!.original).toBeUndefined();
  });

  test('an image whose header passes but whose data does not decode is dead-lettered by the decoder', async () => {
    const good = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#3366cc' } }).png().toBuffer();
    // Corrupt the compressed pixel data and fix the chunk's CRC, so only a real decode can tell.
    const broken = Buffer.from(good);
    const idat = broken.indexOf('IDAT');
    const length = broken.readUInt32BE(idat - 4);
    broken.fill(0xff, idat + 4 + 2, idat + 4 + length);
    broken.writeUInt32BE(crc32(broken.subarray(idat, idat + 4 + length)), idat + 4 + length);
    const { sink, outcome } = run([inputMessage({ offset: 0, value: encodePairMessage({ id: 'b', caption: 'a blue shirt', image: { kind: 'encoded', bytes: broken } }) })]);
    expect(await outcome).toMatchObject({ messages: 1, routed: 0, deadLettered: 1, images: { decoded: 0, failed: 1 } });
    const [dead] = sink.messagesTo(DLQ);
    expect(Buffer.compare(dead!.value as Buffer, encodePairMessage({ id: 'b', caption: 'a blue shirt', image: { kind: 'encoded', bytes: broken } }))).toBe(0);
    expect(headerText(dead!, DLQ_HEADERS.detail)).toMatch(/^image\.encoded: undecodable PNG/);
  });

  test('a chunk of rejects only sends to the DLQ', async () => {
    const { sink, outcome } = run([inputMessage({ offset: 0, value: null }), inputMessage({ offset: 1, value: Buffer.from('not json') })]);
    expect(await outcome).toEqual({ messages: 2, nextOffset: 2, routed: 0, unrouted: 0, deadLettered: 2 });
    expect(sink.batches[0]!.topicMessages!.map((t) => t.topic)).toEqual([DLQ]);
    expect(sink.messagesTo(DLQ).map((m) => headerText(m, DLQ_HEADERS.reason))).toEqual(['invalid-json', 'invalid-json']);
  });

  test('before the first epoch pairs are published unrouted, spread over the partitions by id', async () => {
    const chunk = fashionCaptions(30).map((caption, i) => inputMessage({ offset: i, value: pair(`u${i}`, caption) }));
    const { sink, outcome } = run(chunk, fixedRoutingSource());
    expect(await outcome).toEqual({ messages: 30, nextOffset: 30, routed: 0, unrouted: 30, deadLettered: 0 });
    const routed = sink.messagesTo(ROUTED);
    expect(routed).toHaveLength(30);
    for (const message of routed) {
      expect(decodedOrThrow(message.value as Buffer).route).toBeNull();
      expect(message.key).toBe('unrouted');
      expect(message.partition).toBeGreaterThanOrEqual(0);
      expect(message.partition).toBeLessThan(PARTITIONS);
    }
    // No partition takes them all.
    expect(new Set(routed.map((m) => m.partition)).size).toBeGreaterThan(1);
  });

  test('with transactions, the routed messages and the next input offset go to one transaction; dead letters are sent before it', async () => {
    const sink = capturingProducer();
    const runs: { topics: string[]; count: number; offset: ChunkOffset }[] = [];
    const transactions: ChunkTransactions = {
      resumeFrom: async () => undefined,
      close: async () => {},
      run: async (topicMessages, offset) => void runs.push({ topics: topicMessages.map((t) => t.topic), count: topicMessages.reduce((n, t) => n + t.messages.length, 0), offset }),
    };
    const topology = routerTopology({ limits, images, embedder, routing: fixedRoutingSource(model), producer: sink.producer, routedTopic: ROUTED, dlqTopic: DLQ, routedPartitions: PARTITIONS, transactions });
    const chunk = [
      inputMessage({ topic: 'pairs', partition: 2, offset: 20, value: pair('t1', captions[0]!) }),
      inputMessage({ topic: 'pairs', partition: 2, offset: 21, value: Buffer.from('not json') }),
    ];
    const outcome = await lastValueFrom(of(chunk).pipe(topology));
    expect(outcome).toEqual({ messages: 2, nextOffset: 22, routed: 1, unrouted: 0, deadLettered: 1, offsetsCommitted: true });
    expect(runs).toEqual([{ topics: [ROUTED], count: 1, offset: { topic: 'pairs', partition: 2, offset: 22 } }]);
    expect(sink.batches.map((b) => b.topicMessages!.map((t) => t.topic))).toEqual([[DLQ]]);
  });

  test('a repeated pair id (a producer resend) is published once: across chunks and within one; counted as duplicates', async () => {
    const sink = capturingProducer();
    const recentIds = createRecentIds({ capacity: 1000, readIds: async () => [] });
    const topology = routerTopology({ limits, images, embedder, routing: fixedRoutingSource(model), producer: sink.producer, routedTopic: ROUTED, dlqTopic: DLQ, routedPartitions: PARTITIONS, recentIds });
    const at = (offset: number, id: string, caption = captions[0]!) => inputMessage({ topic: 'pairs', partition: 0, offset, value: pair(id, caption) });
    expect(await lastValueFrom(of([at(0, 'a'), at(1, 'b'), at(2, 'a')]).pipe(topology))).toEqual({ messages: 3, nextOffset: 3, routed: 2, unrouted: 0, deadLettered: 0, duplicates: 1 });
    // Sent again later, even with another caption (routed elsewhere if it were routed): dropped.
    expect(await lastValueFrom(of([at(3, 'b', captions[3]!), at(4, 'c')]).pipe(topology))).toEqual({ messages: 2, nextOffset: 5, routed: 1, unrouted: 0, deadLettered: 0, duplicates: 1 });
    const published = sink.batches.flatMap((b) => b.topicMessages!.flatMap((t) => t.messages.map((m) => decodedOrThrow(m.value as Buffer).id)));
    expect(published).toEqual(['a', 'b', 'c']);
  });

  test('the ids of an aborted chunk, and of a dead-lettered pair, are not taken as repeats', async () => {
    const recentIds = createRecentIds({ capacity: 1000, readIds: async () => [] });
    let fail = true;
    const transactions: ChunkTransactions = {
      resumeFrom: async () => undefined,
      close: async () => {},
      run: async () => {
        if (fail) throw new Error('aborted');
      },
    };
    const topology = routerTopology({ limits, images, embedder, routing: fixedRoutingSource(model), producer: capturingProducer().producer, routedTopic: ROUTED, dlqTopic: DLQ, routedPartitions: PARTITIONS, transactions, recentIds });
    const chunk = [inputMessage({ topic: 'pairs', partition: 0, offset: 0, value: pair('x', captions[0]!) })];
    await expect(lastValueFrom(of(chunk).pipe(topology))).rejects.toThrow('aborted');
    fail = false;
    expect(await lastValueFrom(of(chunk).pipe(topology))).toMatchObject({ routed: 1 });
    // A pair rejected (empty caption), then sent again corrected: routed.
    const bad = encodePairMessage({ id: 'y', caption: '', image: { kind: 'pixels', width: 28, height: 28, channels: 1, data: grey } });
    expect(await lastValueFrom(of([inputMessage({ topic: 'pairs', partition: 0, offset: 1, value: bad })]).pipe(topology))).toMatchObject({ deadLettered: 1 });
    expect(await lastValueFrom(of([inputMessage({ topic: 'pairs', partition: 0, offset: 2, value: pair('y', captions[1]!) })]).pipe(topology))).toMatchObject({ routed: 1 });
  });

  test('a failed transaction fails the chunk (the stage restarts from the committed offset)', async () => {
    const transactions: ChunkTransactions = {
      resumeFrom: async () => undefined,
      close: async () => {},
      run: async () => {
        throw Object.assign(new Error('fenced'), { type: 'INVALID_PRODUCER_EPOCH' });
      },
    };
    const topology = routerTopology({ limits, images, embedder, routing: fixedRoutingSource(model), producer: capturingProducer().producer, routedTopic: ROUTED, dlqTopic: DLQ, routedPartitions: PARTITIONS, transactions });
    await expect(lastValueFrom(of([inputMessage({ offset: 0, value: pair('t2', captions[1]!) })]).pipe(topology))).rejects.toThrow('fenced');
  });
});
