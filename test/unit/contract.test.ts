import { crc32, deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG, type ColorType } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LimitsConfig, type Limits } from '../../src/config.js';
import {
  encodePairMessage,
  PairMessageSchema,
  parsePair,
  type ParseResult,
  type RejectReason,
  type ValidPair,
} from '../../src/contract/pair.js';

const limits: Limits = LimitsConfig.parse({});

function grey28(): Uint8Array {
  return Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 13) % 256);
}

function baseMessage(): Record<string, unknown> {
  return {
    id: 'pair-1',
    caption: 'a red cotton t-shirt for men',
    image: { pixels: Buffer.from(grey28()).toString('base64'), width: 28, height: 28, channels: 1 },
  };
}

function parseJson(value: unknown, key: string | null = null, lim: Limits = limits): ParseResult {
  return parsePair({ key: key === null ? null : Buffer.from(key), value: Buffer.from(JSON.stringify(value)) }, lim);
}

function parseRaw(text: string | Buffer, lim: Limits = limits): ParseResult {
  return parsePair({ key: null, value: typeof text === 'string' ? Buffer.from(text) : text }, lim);
}

function accepted(result: ParseResult): ValidPair {
  if (!result.ok) throw new Error(`expected acceptance, got ${result.rejection.reason}: ${result.rejection.detail}`);
  return result.pair;
}

function rejected(result: ParseResult): { reason: RejectReason; detail: string } {
  if (result.ok) throw new Error(`expected a rejection, got pair ${result.pair.id}`);
  return result.rejection;
}

function withImage(image: unknown): Record<string, unknown> {
  return { ...baseMessage(), image };
}

/** RGBA pixels -> PNG of the given colour type (pngjs converts on write). */
function png(width: number, height: number, rgba: (i: number) => [number, number, number, number], colorType: ColorType): Buffer {
  const img = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) img.data.set(rgba(i), i * 4);
  return PNG.sync.write(img, { colorType });
}

function jpegOf(width: number, height: number, rgb: (i: number) => [number, number, number]): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([...rgb(i), 255], i * 4);
  return jpeg.encode({ width, height, data }, 95).data;
}

const encoded = (bytes: Uint8Array) => withImage({ encoded: Buffer.from(bytes).toString('base64') });


function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A hand-made PNG: IHDR for width x height 8-bit grey, `interlace`, and the given IDAT payload. */
function rawPng(width: number, height: number, idat: Buffer, interlace = 0): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, interlace], 8);
  const magic = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([magic, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

describe('parsePair: valid messages', () => {
  it('accepts raw pixels with all optional fields', () => {
    const meta = { url: 'https://example.com/a.jpg', tags: ['tops'], score: 0.5 };
    const pair = accepted(
      parseJson({ ...baseMessage(), source: 'crawler-eu', ts: '2024-05-01T12:00:00.250+02:00', meta }, 'pair-1'),
    );
    expect(pair).toMatchObject({ id: 'pair-1', caption: 'a red cotton t-shirt for men', source: 'crawler-eu', meta });
    expect(pair.ts).toBe(Date.UTC(2024, 4, 1, 10, 0, 0, 250));
    expect(pair.image).toMatchObject({ kind: 'pixels', width: 28, height: 28, channels: 1 });
    if (pair.image.kind !== 'pixels') throw new Error('unreachable');
    expect(Array.from(pair.image.data)).toEqual(Array.from(grey28()));
  });

  it('accepts a null or empty key, and a key equal to the id', () => {
    expect(parseJson(baseMessage()).ok).toBe(true);
    expect(parsePair({ key: Buffer.alloc(0), value: Buffer.from(JSON.stringify(baseMessage())) }, limits).ok).toBe(true);
    expect(parseJson(baseMessage(), 'pair-1').ok).toBe(true);
  });

  it('accepts an RGB pixel image and an embedding', () => {
    const rgb = Buffer.from(Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => i * 10));
    const pair = accepted(parseJson(withImage({ pixels: rgb.toString('base64'), width: 2, height: 3, channels: 3 })));
    expect(pair.image).toMatchObject({ kind: 'pixels', width: 2, height: 3, channels: 3 });

    const emb = accepted(parseJson(withImage({ embedding: [0.5, -1, 2e-3] })));
    expect(emb.image.kind).toBe('embedding');
    if (emb.image.kind !== 'embedding') throw new Error('unreachable');
    expect(emb.image.values).toBeInstanceOf(Float32Array);
    expect(Array.from(emb.image.values)).toEqual([0.5, -1, Math.fround(2e-3)]);
  });

  it('checks encoded files by their headers only: format and size read, the file kept as sent for ingestion to decode', () => {
    const file = png(5, 4, (i) => [i, i, i, 255], 6);
    const pair = accepted(parseJson(encoded(file)));
    expect(pair.image).toMatchObject({ kind: 'encoded', format: 'png', width: 5, height: 4 });
    if (pair.image.kind !== 'encoded') throw new Error('unreachable');
    expect(Buffer.compare(Buffer.from(pair.image.bytes), file)).toBe(0);

    expect(accepted(parseJson(encoded(jpegOf(16, 8, () => [220, 30, 30])))).image).toMatchObject({ kind: 'encoded', format: 'jpeg', width: 16, height: 8 });
  });

  it('round-trips through encodePairMessage', () => {
    const original = accepted(parseJson({ ...baseMessage(), source: 's', ts: '2024-01-02T03:04:05.678Z', meta: { a: [1, { b: null }] } }));
    expect(accepted(parsePair({ key: Buffer.from(original.id), value: encodePairMessage(original) }, limits))).toEqual(original);

    const emb = accepted(parseJson(withImage({ embedding: [0.1, 0.2] })));
    expect(accepted(parsePair({ key: null, value: encodePairMessage(emb) }, limits))).toEqual(emb);

    const bytes = png(4, 4, () => [1, 2, 3, 255], 2);
    const viaEncoded = encodePairMessage({ id: 'e', caption: 'c', image: { kind: 'encoded', bytes } });
    expect(accepted(parsePair({ key: null, value: viaEncoded }, limits)).image).toMatchObject({ kind: 'encoded', format: 'png', width: 4, height: 4 });
  });

  it('documents the raw contract as one zod schema', () => {
    expect(PairMessageSchema.safeParse(baseMessage()).success).toBe(true);
    const json = JSON.stringify(z.toJSONSchema(PairMessageSchema));
    for (const field of ['caption', 'pixels', 'encoded', 'embedding', 'meta']) expect(json).toContain(`"${field}"`);
  });
});

describe('parsePair: rejections', () => {
  const cases: Array<[string, () => ParseResult, RejectReason, RegExp]> = [
    ['null value', () => parsePair({ key: null, value: null }, limits), 'invalid-json', /^value: empty/],
    ['empty value', () => parseRaw(''), 'invalid-json', /^value: empty/],
    ['bad JSON', () => parseRaw('{"id": "x",'), 'invalid-json', /^value: invalid JSON \(/],
    ['invalid UTF-8', () => parseRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 'invalid-json', /^value: not valid UTF-8$/],
    ['not an object', () => parseRaw('[1,2]'), 'invalid-schema', /^value: expected object, got array$/],
    ['missing caption', () => parseJson({ ...baseMessage(), caption: undefined }), 'invalid-schema', /^caption: is required$/],
    ['mistyped id', () => parseJson({ ...baseMessage(), id: 42 }), 'invalid-schema', /^id: expected string, got number$/],
    ['unknown top-level key', () => parseJson({ ...baseMessage(), url: 'x' }), 'invalid-schema', /^value: unknown key "url" \(extra fields belong in "meta"\)$/],
    ['empty caption', () => parseJson({ ...baseMessage(), caption: '' }), 'invalid-schema', /^caption: must not be empty or whitespace only$/],
    ['blank caption', () => parseJson({ ...baseMessage(), caption: ' \t\n ' }), 'invalid-schema', /^caption: must not be empty or whitespace only$/],
    ['long caption', () => parseJson({ ...baseMessage(), caption: 'x'.repeat(4097) }), 'invalid-schema', /^caption: must be at most 4096 characters, got 4097$/],
    ['empty id', () => parseJson({ ...baseMessage(), id: '' }), 'invalid-schema', /^id: must not be empty$/],
    ['long id', () => parseJson({ ...baseMessage(), id: 'i'.repeat(257) }), 'invalid-schema', /^id: must be at most 256 characters, got 257$/],
    ['control char in id', () => parseJson({ ...baseMessage(), id: 'a\u0000b' }), 'invalid-schema', /^id: must be printable/],
    ['padded id', () => parseJson({ ...baseMessage(), id: ' a' }), 'invalid-schema', /^id: must be printable/],
    ['ts without offset', () => parseJson({ ...baseMessage(), ts: '2024-05-01T12:00:00' }), 'invalid-schema', /^ts: must be an ISO-8601 date-time with Z or an offset/],
    ['ts not a date', () => parseJson({ ...baseMessage(), ts: 'yesterday' }), 'invalid-schema', /^ts: must be an ISO-8601/],
    ['ts impossible day', () => parseJson({ ...baseMessage(), ts: '2024-02-30T00:00:00Z' }), 'invalid-schema', /^ts: must be an ISO-8601/],
    ['meta not an object', () => parseJson({ ...baseMessage(), meta: [1] }), 'invalid-schema', /^meta: expected object, got array$/],
    ['meta too large', () => parseJson({ ...baseMessage(), meta: { blob: 'x'.repeat(20_000) } }), 'invalid-schema', /^meta: is 20011 bytes as JSON, over maxMetaBytes 16384$/],
    ['key mismatch', () => parseJson(baseMessage(), 'pair-2'), 'key-mismatch', /^key: "pair-2" differs from id "pair-1"$/],
    ['missing image', () => parseJson({ ...baseMessage(), image: undefined }), 'invalid-schema', /^image: is required$/],
    ['image not an object', () => parseJson(withImage('abc')), 'invalid-image', /^image: expected an object with exactly one of pixels, encoded, embedding, got string$/],
    ['no image variant', () => parseJson(withImage({ width: 1 })), 'invalid-image', /^image: expected an object .* got none$/],
    ['two image variants', () => parseJson(withImage({ embedding: [1], encoded: 'AAAA' })), 'invalid-image', /^image: expected an object .* got encoded and embedding$/],
    ['unknown image key', () => parseJson(withImage({ embedding: [1], format: 'f32' })), 'invalid-image', /^image: unknown key "format"$/],
    ['bad base64 (whitespace)', () => parseJson(withImage({ encoded: 'AAAA\nAAAA' })), 'invalid-image', /^image\.encoded: must be standard base64/],
    ['bad base64 (url alphabet)', () => parseJson(withImage({ encoded: 'ab-_' })), 'invalid-image', /^image\.encoded: must be standard base64/],
    ['bad base64 (missing padding)', () => parseJson(withImage({ encoded: 'AAA' })), 'invalid-image', /^image\.encoded: must be standard base64/],
    ['wrong pixel count', () => parseJson(withImage({ pixels: Buffer.alloc(780).toString('base64'), width: 28, height: 28, channels: 1 })), 'invalid-image', /^image\.pixels: expected 784 bytes for 28x28x1, got 780$/],
    ['bad channels', () => parseJson(withImage({ pixels: 'AAAA', width: 1, height: 1, channels: 4 })), 'invalid-image', /^image\.channels: must be one of 1, 3, got 4$/],
    ['fractional width', () => parseJson(withImage({ pixels: 'AAAA', width: 1.5, height: 2, channels: 1 })), 'invalid-image', /^image\.width: must be an integer, got 1.5$/],
    ['side over limit', () => parseJson(withImage({ pixels: 'AAAA', width: 5000, height: 1, channels: 1 })), 'invalid-image', /^image\.width: must be at most 4096, got 5000$/],
    ['pixels over limit', () => parseJson(withImage({ pixels: 'AAAA', width: 4096, height: 4096, channels: 1 }), null, { ...limits, maxImagePixels: 1000 }), 'invalid-image', /^image: 4096x4096 is 16777216 pixels, over maxImagePixels 1000$/],
    ['empty embedding', () => parseJson(withImage({ embedding: [] })), 'invalid-image', /^image\.embedding: must have at least 1 values, got 0$/],
    ['long embedding', () => parseJson(withImage({ embedding: [1, 2, 3] }), null, { ...limits, maxEmbeddingDim: 2 }), 'invalid-image', /^image\.embedding: must have at most 2 values, got 3$/],
    ['infinite embedding value', () => parseRaw(JSON.stringify(withImage({ embedding: [1, 2] })).replace('[1,2]', '[1,1e999]')), 'invalid-image', /^image\.embedding\[1\]: must be a finite number, got Infinity$/],
    ['float32 overflow', () => parseJson(withImage({ embedding: [1, -1e39] })), 'invalid-image', /^image\.embedding\[1\]: must fit in float32/],
    ['string embedding value', () => parseJson(withImage({ embedding: [1, '2'] })), 'invalid-image', /^image\.embedding\[1\]: expected number, got string$/],
    ['encoded not an image', () => parseJson(encoded(Buffer.from('%PDF-1.7 ....'))), 'invalid-image', /^image\.encoded: not a JPEG, PNG, WebP, GIF or AVIF/],
    ['encoded GIF cut short', () => parseJson(encoded(Buffer.from('GIF89a....'))), 'invalid-image', /^image\.encoded: GIF header truncated/],
    ['encoded empty', () => parseJson(withImage({ encoded: '' })), 'invalid-image', /^image\.encoded: must not be empty$/],
  ];

  it.each(cases)('%s', (_name, run, reason, detail) => {
    const rejection = rejected(run());
    expect(rejection.reason).toBe(reason);
    expect(rejection.detail).toMatch(detail);
  });

  it('rejects a value over maxMessageBytes before parsing it', () => {
    const rejection = rejected(parseRaw('{'.repeat(2000), { ...limits, maxMessageBytes: 1000 }));
    expect(rejection).toEqual({ reason: 'oversized', detail: 'value: 2000 bytes, over maxMessageBytes 1000' });
  });

  it('counts every schema problem but reports the first', () => {
    const rejection = rejected(parseJson({ id: '', caption: '' , image: { embedding: [1] } }));
    expect(rejection.detail).toBe('id: must not be empty (+1 more)');
  });

  it('checks PNG dimensions from the header before decoding', () => {
    // 60000 x 60000 declared, a tiny IDAT: decoding would try to allocate gigabytes.
    const bomb = rawPng(60_000, 60_000, deflateSync(Buffer.alloc(10)));
    const rejection = rejected(parseJson(encoded(bomb)));
    expect(rejection.reason).toBe('invalid-image');
    expect(rejection.detail).toBe('image.encoded: PNG is 60000x60000, a side exceeds maxImageSide 4096');

    const manyPixels = rejected(parseJson(encoded(png(40, 30, () => [0, 0, 0, 255], 0)), null, { ...limits, maxImagePixels: 1000 }));
    expect(manyPixels.detail).toBe('image.encoded: PNG is 40x30 = 1200 pixels, over maxImagePixels 1000');
  });

  it('checks JPEG dimensions from the frame header before decoding', () => {
    const small = jpegOf(64, 32, () => [10, 20, 30]);
    expect(rejected(parseJson(encoded(small), null, { ...limits, maxImageSide: 48 })).detail).toBe(
      'image.encoded: JPEG is 64x32, a side exceeds maxImageSide 48',
    );
    // Patch the SOF0 dimensions to 65535 x 65535.
    const patched = Buffer.from(small);
    const sof = patched.indexOf(Buffer.from([0xff, 0xc0]));
    patched.writeUInt16BE(65_535, sof + 5);
    patched.writeUInt16BE(65_535, sof + 7);
    expect(rejected(parseJson(encoded(patched))).detail).toBe('image.encoded: JPEG is 65535x65535, a side exceeds maxImageSide 4096');
  });

  it('rejects truncated files by their headers, before any decoding', () => {
    const good = png(8, 8, (i) => [i, 0, 0, 255], 6);
    expect(rejected(parseJson(encoded(good.subarray(0, 20))))).toEqual({ reason: 'invalid-image', detail: 'image.encoded: PNG header truncated (no complete IHDR chunk)' });
    expect(rejected(parseJson(encoded(good.subarray(0, good.length - 6)))).detail).toMatch(/^image\.encoded: PNG truncated/);

    const jpg = jpegOf(64, 64, (i) => [i % 256, (2 * i) % 256, (3 * i) % 256]);
    const truncated = rejected(parseJson(encoded(jpg.subarray(0, jpg.length - 40))));
    expect(truncated.reason).toBe('invalid-image');
    expect(truncated.detail).toMatch(/^image\.encoded: JPEG truncated/);
    expect(rejected(parseJson(encoded(jpg.subarray(0, 4)))).detail).toMatch(/^image\.encoded: JPEG header truncated/);
  });
});

describe('parsePair: fuzz', () => {
  const reasons = new Set<RejectReason>(['oversized', 'invalid-json', 'invalid-schema', 'invalid-image', 'key-mismatch']);

  function random(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
  }

  function checkWellFormed(result: ParseResult): void {
    if (result.ok) return;
    expect(reasons.has(result.rejection.reason)).toBe(true);
    expect(result.rejection.detail.length).toBeGreaterThan(0);
    expect(result.rejection.detail).not.toMatch(/[\n\r]/);
    expect(result.rejection.detail).not.toMatch(/could not be validated/); // the catch-all is for bugs
  }

  const samples = [
    JSON.stringify({ ...baseMessage(), source: 's', ts: '2024-05-01T12:00:00Z', meta: { k: [1, 2] } }),
    JSON.stringify(encoded(png(6, 5, (i) => [i * 9, 3, 4, 200], 6))),
    JSON.stringify(encoded(jpegOf(8, 8, (i) => [i, 40, 80]))),
    JSON.stringify(withImage({ embedding: [0.25, -1, 3] })),
  ];

  it('never throws on random bytes', () => {
    const rnd = random(7);
    for (let n = 0; n < 2000; n++) {
      const bytes = Buffer.from(Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)));
      const key = rnd() < 0.5 ? null : bytes.subarray(0, 3);
      checkWellFormed(parsePair({ key, value: bytes }, limits));
    }
  });

  it('never throws on truncated or byte-flipped valid messages', () => {
    const rnd = random(11);
    for (const sample of samples) {
      const bytes = Buffer.from(sample);
      expect(parseRaw(bytes).ok).toBe(true);
      for (let cut = 0; cut < bytes.length; cut += Math.max(1, Math.floor(bytes.length / 150))) {
        checkWellFormed(parseRaw(bytes.subarray(0, cut)));
      }
      for (let n = 0; n < 300; n++) {
        const mutated = Buffer.from(bytes);
        for (let k = 0; k < 3; k++) mutated[Math.floor(rnd() * mutated.length)] = Math.floor(rnd() * 256);
        checkWellFormed(parseRaw(mutated));
      }
    }
  });

  it('never throws on hostile JSON values', () => {
    const hostile = [
      '1e999',
      '{"id":"a","caption":"c","image":{"pixels":"AAAA","width":1e999,"height":1,"channels":1}}',
      '{"id":"a","caption":"c","image":{"pixels":"AAAA","width":-1,"height":1e308,"channels":1}}',
      '{"id":"a","caption":"c","image":{"embedding":[-1e999]}}',
      `{"id":"a","caption":"c","image":{"embedding":[1]},"meta":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`,
      `{"id":"a","caption":"c","image":{"embedding":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`,
      '{"id":"a","caption":"c","image":{"embedding":[1]},"meta":{"__proto__":{"polluted":true}}}',
      '{"__proto__":{"x":1},"id":"a","caption":"c","image":{"embedding":[1]}}',
      '{"id":"\\ud800","caption":"\\udfff","image":{"embedding":[1]}}',
      'null',
      '"just a string"',
    ];
    for (const text of hostile) checkWellFormed(parseRaw(text));
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(rejected(parseRaw(hostile[7]!)).detail).toMatch(/unknown key "__proto__"/);
  });
});
