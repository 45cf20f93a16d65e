import { describe, expect, test } from 'vitest';
import { parsePair } from '../../src/contract/pair.js';
import { LimitsConfig } from '../../src/config.js';
import { samplePair, splitMemberName, type WebDatasetSample } from '../../src/contract/webdataset.js';

const limits = LimitsConfig.parse({});
const options = { captionField: 'caption', maxMessageBytes: limits.maxMessageBytes, source: 'shard-00000.tar' };
// A 1x1 PNG's header is all the contract's check needs here; decoding is the router's.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

const sample = (key: string, members: Record<string, string | Buffer>): WebDatasetSample => ({
  key,
  members: new Map(Object.entries(members).map(([ext, v]) => [ext, Buffer.isBuffer(v) ? v : Buffer.from(v)])),
});

describe('WebDataset members', () => {
  test('the key is the path up to the first dot of the file name; the extension the rest, lower-cased', () => {
    expect(splitMemberName('000123.jpg')).toEqual({ key: '000123', ext: 'jpg' });
    expect(splitMemberName('part.1/000123.Seg.JSON')).toEqual({ key: 'part.1/000123', ext: 'seg.json' });
    expect(splitMemberName('README')).toBeUndefined();
    expect(splitMemberName('dir/.hidden')).toBeUndefined();
    expect(splitMemberName('trailing.')).toBeUndefined();
  });
});

describe('samplePair', () => {
  test('image + .txt caption + .json meta make a pair the router accepts, keyed by the sample key', () => {
    const result = samplePair(sample('000001', { png: PNG, txt: ' a red dress \n', json: '{"url": "https://example.com/1.png", "caption": "ignored"}' }), options);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.id).toBe('000001');
    const parsed = parsePair({ key: Buffer.from(result.id), value: result.value }, limits);
    expect(parsed.ok && parsed.pair).toMatchObject({ id: '000001', caption: 'a red dress', source: 'shard-00000.tar', meta: { url: 'https://example.com/1.png' }, image: { kind: 'encoded', format: 'png', width: 1, height: 1 } });
  });

  test('without a .txt the caption comes from the configured .json field', () => {
    const result = samplePair(sample('k', { png: PNG, json: '{"alt": "blue jeans"}' }), { ...options, captionField: 'alt' });
    expect(result.ok && JSON.parse(result.value.toString()).caption).toBe('blue jeans');
  });

  test('each kind of unusable sample is skipped with its reason', () => {
    expect(samplePair(sample('a', { png: PNG }), options)).toMatchObject({ ok: false, reason: 'missing-caption' });
    expect(samplePair(sample('b', { png: PNG, txt: '   ', json: 'not json' }), options)).toMatchObject({ ok: false, reason: 'missing-caption' });
    expect(samplePair(sample('c', { bmp: 'BM...', txt: 'a shirt' }), options)).toMatchObject({ ok: false, reason: 'unknown-image-type', detail: expect.stringContaining('.bmp') });
    expect(samplePair(sample('d', { txt: 'a shirt' }), options)).toMatchObject({ ok: false, reason: 'no-image' });
    expect(samplePair(sample('e', { png: PNG, txt: 'a shirt' }), { ...options, maxMessageBytes: 100 })).toMatchObject({ ok: false, reason: 'oversized' });
  });
});
